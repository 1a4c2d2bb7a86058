package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
)

// VNICSpec describes a virtual network interface sculpt creates, lists or
// deletes. Netns and PeerNetns are "" for the caller's network namespace, a
// name under /var/run/netns (as `ip netns add` makes), or a path to a
// namespace file such as /proc/PID/ns/net.
type VNICSpec struct {
	Kind      string // veth, tap, bridge, macvlan or ipvlan
	Name      string // 1 to 15 bytes, no '/', ':' or white space
	Peer      string // veth: the other end's name
	PeerNetns string // veth: the other end's namespace; "" is the caller's, like Netns
	Parent    string // macvlan, ipvlan: the lower device, looked up in Netns
	// Queues is the number of rx and tx queues of each veth end, or the
	// number of queues a tap is created with (more than one makes it a
	// multi-queue tap); 0 means one.
	Queues int
	Netns  string
	Mode   string // macvlan: bridge (default), private, vepa, passthru; ipvlan: l2 (default), l3, l3s
	MTU    int    // 0 keeps the kernel's default
}

// vnicMaxQueues is the kernel's limit for a tap (MAX_TAP_QUEUES) and a
// sane one for veth.
const vnicMaxQueues = 256

// vnicNetnsDir is where `ip netns add` binds named namespaces.
const vnicNetnsDir = "/var/run/netns"

var vnicMacvlanModes = map[string]netlink.MacvlanMode{
	"": netlink.MACVLAN_MODE_BRIDGE, "bridge": netlink.MACVLAN_MODE_BRIDGE,
	"private": netlink.MACVLAN_MODE_PRIVATE, "vepa": netlink.MACVLAN_MODE_VEPA,
	"passthru": netlink.MACVLAN_MODE_PASSTHRU,
}

var vnicIPVlanModes = map[string]netlink.IPVlanMode{
	"": netlink.IPVLAN_MODE_L2, "l2": netlink.IPVLAN_MODE_L2,
	"l3": netlink.IPVLAN_MODE_L3, "l3s": netlink.IPVLAN_MODE_L3S,
}

// Validate checks a spec without touching the machine: a known kind, valid
// names, the fields the kind needs, queues 0..256, a mode the kind knows and
// a non-negative MTU. Errors wrap EINVAL and say which field is wrong.
func (s VNICSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("vnic %q: %s: %w", s.Name, fmt.Sprintf(format, a...), unix.EINVAL)
	}
	if err := validIfName(s.Name); err != nil {
		return fmt.Errorf("vnic: %w", err)
	}
	if s.Queues < 0 || s.Queues > vnicMaxQueues {
		return bad("queues %d out of range 1..%d", s.Queues, vnicMaxQueues)
	}
	if s.MTU < 0 {
		return bad("negative MTU %d", s.MTU)
	}
	if err := vnicValidNetns(s.Netns); err != nil {
		return bad("%v", err)
	}
	switch s.Kind {
	case "veth":
		if err := validIfName(s.Peer); err != nil {
			return bad("peer: %v", err)
		}
		if s.Peer == s.Name && s.PeerNetns == s.Netns {
			return bad("peer has the same name in the same namespace")
		}
		if err := vnicValidNetns(s.PeerNetns); err != nil {
			return bad("peer %v", err)
		}
	case "macvlan", "ipvlan":
		if err := validIfName(s.Parent); err != nil {
			return bad("parent: %v", err)
		}
	case "tap", "bridge":
	default:
		return bad("unknown kind %q (want veth, tap, bridge, macvlan or ipvlan)", s.Kind)
	}
	if s.Kind != "veth" && (s.Peer != "" || s.PeerNetns != "") {
		return bad("peer is only for veth")
	}
	if s.Kind != "macvlan" && s.Kind != "ipvlan" && s.Parent != "" {
		return bad("parent is only for macvlan and ipvlan")
	}
	switch s.Kind {
	case "macvlan":
		if _, ok := vnicMacvlanModes[s.Mode]; !ok {
			return bad("macvlan mode %q (want bridge, private, vepa or passthru)", s.Mode)
		}
	case "ipvlan":
		if _, ok := vnicIPVlanModes[s.Mode]; !ok {
			return bad("ipvlan mode %q (want l2, l3 or l3s)", s.Mode)
		}
	default:
		if s.Mode != "" {
			return bad("mode is only for macvlan and ipvlan")
		}
	}
	if (s.Kind == "bridge" || s.Kind == "macvlan" || s.Kind == "ipvlan") && s.Queues > 1 {
		return bad("%s takes no queue count", s.Kind)
	}
	return nil
}

func vnicValidNetns(ns string) error {
	if ns == "" || strings.Contains(ns, "/") {
		return nil
	}
	if ns == "." || ns == ".." || strings.ContainsAny(ns, " \t\n") {
		return fmt.Errorf("netns name %q is not valid", ns)
	}
	return nil
}

// vnicNetnsPath resolves a Netns field to a namespace file path; "" stays "".
func vnicNetnsPath(ns string) string {
	if ns == "" || strings.Contains(ns, "/") {
		return ns
	}
	return filepath.Join(vnicNetnsDir, ns)
}

func vnicNetnsLabel(ns string) string {
	if ns == "" {
		return "the current netns"
	}
	return "netns " + ns
}

// vnicOpenNetns opens a namespace handle; the caller closes it.
func vnicOpenNetns(ns string) (netns.NsHandle, error) {
	if ns == "" {
		// The calling thread's namespace, not /proc/self's: the main thread
		// may have been left in another namespace by a locked goroutine
		// that exited on it.
		h, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("open the current netns: %w", err)
		}
		return h, nil
	}
	path := vnicNetnsPath(ns)
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("open netns %s: %w", path, err)
	}
	return h, nil
}

// vnicHandle opens a netlink handle whose sockets live in ns; the caller
// closes it. The calling thread's namespace is not changed.
func vnicHandle(ns string) (*netlink.Handle, error) {
	if ns == "" {
		h, err := netlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("netlink socket: %w", err)
		}
		return h, nil
	}
	nsh, err := vnicOpenNetns(ns)
	if err != nil {
		return nil, err
	}
	defer func() { _ = nsh.Close() }()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return nil, fmt.Errorf("netlink socket in netns %s: %w", ns, err)
	}
	return h, nil
}

func vnicLinkExists(h *netlink.Handle, name string) (bool, error) {
	_, err := h.LinkByName(name)
	if err == nil {
		return true, nil
	}
	if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok || errors.Is(err, unix.ENODEV) {
		return false, nil
	}
	return false, err
}

// CreateVNIC creates the interface spec describes with RTM_NEWLINK (a tap
// with TUNSETIFF on /dev/net/tun, made persistent with TUNSETPERSIST, in a
// short-lived thread that enters the namespace and is then discarded) and
// sets it (and a veth's peer) up. A name already in use gives an error
// wrapping EEXIST and changes nothing; a kind the kernel lacks (ipvlan
// without CONFIG_IPVLAN) a *hal.NotSupportedError that also wraps
// the errno. If bringing the link up fails, it is deleted again. Needs
// CAP_NET_ADMIN in the namespace.
func CreateVNIC(spec VNICSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	where := vnicNetnsLabel(spec.Netns)
	what := fmt.Sprintf("create %s %s in %s", spec.Kind, spec.Name, where)
	h, err := vnicHandle(spec.Netns)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer h.Close()
	if ok, err := vnicLinkExists(h, spec.Name); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	} else if ok {
		return fmt.Errorf("%s: an interface named %s already exists: %w", what, spec.Name, unix.EEXIST)
	}
	q := max(spec.Queues, 1)
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Name
	attrs.MTU = spec.MTU

	var link netlink.Link
	var peerHandle *netlink.Handle
	switch spec.Kind {
	case "tap":
		if err := vnicAddTap(spec, q); err != nil {
			return fmt.Errorf("%s: %w", what, vnicKindError(spec.Kind, err))
		}
		return nil
	case "bridge":
		link = &netlink.Bridge{LinkAttrs: attrs}
	case "macvlan", "ipvlan":
		parent, err := h.LinkByName(spec.Parent)
		if err != nil {
			return fmt.Errorf("%s: parent %s: %w", what, spec.Parent, err)
		}
		attrs.ParentIndex = parent.Attrs().Index
		if spec.Kind == "macvlan" {
			link = &netlink.Macvlan{LinkAttrs: attrs, Mode: vnicMacvlanModes[spec.Mode]}
		} else {
			link = &netlink.IPVlan{LinkAttrs: attrs, Mode: vnicIPVlanModes[spec.Mode]}
		}
	case "veth":
		attrs.NumTxQueues, attrs.NumRxQueues = q, q
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: spec.Peer,
			PeerNumTxQueues: uint32(q), PeerNumRxQueues: uint32(q), PeerMTU: uint32(spec.MTU)}
		peerHandle = h
		if spec.PeerNetns != spec.Netns {
			if peerHandle, err = vnicHandle(spec.PeerNetns); err != nil {
				return fmt.Errorf("%s: peer: %w", what, err)
			}
			defer peerHandle.Close()
			nsh, err := vnicOpenNetns(spec.PeerNetns)
			if err != nil {
				return fmt.Errorf("%s: peer: %w", what, err)
			}
			defer func() { _ = nsh.Close() }()
			veth.PeerNamespace = netlink.NsFd(int(nsh))
		}
		if ok, err := vnicLinkExists(peerHandle, spec.Peer); err != nil {
			return fmt.Errorf("%s: peer: %w", what, err)
		} else if ok {
			return fmt.Errorf("%s: the peer name %s already exists in %s: %w", what, spec.Peer, vnicNetnsLabel(spec.PeerNetns), unix.EEXIST)
		}
		link = veth
	}
	if err := h.LinkAdd(link); err != nil {
		return fmt.Errorf("%s: %w", what, vnicKindError(spec.Kind, err))
	}
	up := h.LinkSetUp(link)
	if up == nil && peerHandle != nil {
		var peer netlink.Link
		if peer, up = peerHandle.LinkByName(spec.Peer); up == nil {
			up = peerHandle.LinkSetUp(peer)
		}
	}
	if up != nil {
		derr := h.LinkDel(link)
		return fmt.Errorf("%s: set up: %w%s", what, up, vnicRollbackNote(derr))
	}
	return nil
}

// vnicAddTap creates a tap in spec.Netns. /dev/net/tun makes the device in
// the namespace of the thread that opens it, so a goroutine locks a thread,
// enters the namespace and never unlocks it: the runtime discards the thread
// when the goroutine ends, and no other goroutine runs in that namespace.
func vnicAddTap(spec VNICSpec, queues int) error {
	if spec.Netns == "" {
		return vnicAddTapHere(spec, queues)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		nsh, err := vnicOpenNetns(spec.Netns)
		if err != nil {
			errc <- err
			return
		}
		err = netns.Set(nsh)
		_ = nsh.Close()
		if err != nil {
			errc <- fmt.Errorf("enter netns %s: %w", spec.Netns, err)
			return
		}
		errc <- vnicAddTapHere(spec, queues)
	}()
	return <-errc
}

func vnicAddTapHere(spec VNICSpec, queues int) error {
	h, err := netlink.NewHandle()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	defer h.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name = spec.Name
	tap := &netlink.Tuntap{LinkAttrs: attrs, Mode: netlink.TUNTAP_MODE_TAP, Queues: queues,
		Flags: netlink.TUNTAP_NO_PI}
	if queues > 1 {
		tap.Flags |= netlink.TUNTAP_MULTI_QUEUE_DEFAULTS
	}
	if err := h.LinkAdd(tap); err != nil {
		return err
	}
	// While the creating descriptors are open, the kernel counts one queue
	// per descriptor (IFLA_TUN_NUM_QUEUES, multi-queue taps only): check it
	// took them all.
	var err2 error
	if queues > 1 {
		err2 = vnicCheckTapQueues(h, spec.Name, queues)
	}
	// The device is persistent (NonPersist is false): it outlives the
	// queue file descriptors, which a VMM attaches again by name. Once they
	// are closed the kernel keeps no queue count (a multi-queue tap always
	// has room for 256), so the count asked for is kept in the alias.
	for _, f := range tap.Fds {
		_ = f.Close()
	}
	tap.Fds = nil
	if err2 == nil && queues > 1 {
		err2 = h.LinkSetAlias(tap, vnicTapAliasPrefix+strconv.Itoa(queues))
	}
	if err2 == nil && spec.MTU > 0 {
		err2 = h.LinkSetMTU(tap, spec.MTU)
	}
	if err2 == nil {
		err2 = h.LinkSetUp(tap)
	}
	if err2 != nil {
		derr := h.LinkDel(tap)
		return fmt.Errorf("configure tap: %w%s", err2, vnicRollbackNote(derr))
	}
	return nil
}

// vnicRollbackNote says whether a half-made link was deleted again.
func vnicRollbackNote(derr error) string {
	if derr != nil {
		return " (deleting it again failed: " + derr.Error() + ")"
	}
	return " (deleted again)"
}

// vnicTapAliasPrefix starts the alias (IFLA_IFALIAS) of a multi-queue tap
// sculpt made; the queue count follows.
const vnicTapAliasPrefix = "sculpt:queues="

func vnicCheckTapQueues(h *netlink.Handle, name string, want int) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	tap, ok := l.(*netlink.Tuntap)
	if !ok {
		return fmt.Errorf("%s is a %s, not a tap", name, l.Type())
	}
	if tap.Queues != want {
		return fmt.Errorf("tap %s attached %d queues, want %d", name, tap.Queues, want)
	}
	return nil
}

// vnicTapQueues is the queue count of a tap: 1 for a single-queue tap; for
// a multi-queue tap the count sculpt recorded in the alias, else the
// queues attached now, else the kernel's room for queues (256).
func vnicTapQueues(l *netlink.Tuntap) int {
	if l.Flags&netlink.TUNTAP_MULTI_QUEUE == 0 {
		return 1
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(l.Alias, vnicTapAliasPrefix)); err == nil && strings.HasPrefix(l.Alias, vnicTapAliasPrefix) && n > 1 {
		return n
	}
	if l.Queues > 1 {
		return l.Queues
	}
	return max(l.NumTxQueues, 2)
}

// vnicKindError turns the kernel's "no such link kind" answer into a typed
// not-supported error; a kernel without the driver (and without modules)
// answers RTM_NEWLINK with EOPNOTSUPP.
func vnicKindError(kind string, err error) error {
	if errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("%w: %w", &hal.NotSupportedError{
			What:   "vnic " + kind,
			Reason: "the kernel has no " + kind + " driver (CONFIG_" + strings.ToUpper(kind) + " not set or module not loadable)",
		}, err)
	}
	return err
}

// VNICExists says whether an interface named name exists in netns (of any
// kind). A namespace that cannot be opened is an error.
func VNICExists(ns, name string) (bool, error) {
	if err := validIfName(name); err != nil {
		return false, err
	}
	h, err := vnicHandle(ns)
	if err != nil {
		return false, err
	}
	defer h.Close()
	ok, err := vnicLinkExists(h, name)
	if err != nil {
		return false, fmt.Errorf("look up %s in %s: %w", name, vnicNetnsLabel(ns), err)
	}
	return ok, nil
}

// DeleteVNIC deletes the virtual interface name in netns with RTM_DELLINK
// and returns the spec of what it deleted, from which CreateVNIC makes it
// again (addresses, routes and bridge ports are not kept). Deleting one end
// of a veth deletes both. An interface that is not there gives an error
// wrapping ENODEV; one that is not a veth, tap, bridge, macvlan or ipvlan
// (a physical NIC, a tun, a vxlan) is refused with EPERM and left alone.
func DeleteVNIC(ns, name string) (VNICSpec, error) {
	if err := validIfName(name); err != nil {
		return VNICSpec{}, err
	}
	what := fmt.Sprintf("delete %s in %s", name, vnicNetnsLabel(ns))
	h, err := vnicHandle(ns)
	if err != nil {
		return VNICSpec{}, fmt.Errorf("%s: %w", what, err)
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		if _, ok := errors.AsType[netlink.LinkNotFoundError](err); ok {
			return VNICSpec{}, fmt.Errorf("%s: no such interface: %w", what, unix.ENODEV)
		}
		return VNICSpec{}, fmt.Errorf("%s: %w", what, err)
	}
	spec, ok := vnicSpecOf(h, ns, link)
	if !ok {
		return VNICSpec{}, fmt.Errorf("%s: it is a %s, not a virtual NIC sculpt manages: %w", what, link.Type(), unix.EPERM)
	}
	if err := h.LinkDel(link); err != nil {
		return VNICSpec{}, fmt.Errorf("%s: %w", what, err)
	}
	return spec, nil
}

// ListVNICs lists the veths, taps, bridges, macvlans and ipvlans in netns
// (RTM_GETLINK dump), in ifindex order.
func ListVNICs(ns string) ([]VNICSpec, error) {
	h, err := vnicHandle(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var links []netlink.Link
	for range 3 { // a dump interrupted by a concurrent change is retried
		if links, err = h.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list links in %s: %w", vnicNetnsLabel(ns), err)
	}
	var out []VNICSpec
	for _, l := range links {
		if spec, ok := vnicSpecOf(h, ns, l); ok {
			out = append(out, spec)
		}
	}
	return out, nil
}

// vnicSpecOf describes link as a VNICSpec; false for kinds sculpt does not
// manage.
func vnicSpecOf(h *netlink.Handle, ns string, link netlink.Link) (VNICSpec, bool) {
	a := link.Attrs()
	s := VNICSpec{Name: a.Name, Netns: ns, MTU: a.MTU}
	switch l := link.(type) {
	case *netlink.Veth:
		s.Kind = "veth"
		s.Queues = a.NumTxQueues
		s.Peer, s.PeerNetns = vnicPeerOf(h, ns, a)
	case *netlink.Tuntap:
		if l.Mode != netlink.TUNTAP_MODE_TAP {
			return VNICSpec{}, false
		}
		s.Kind = "tap"
		s.Queues = vnicTapQueues(l)
	case *netlink.Bridge:
		s.Kind = "bridge"
	case *netlink.Macvlan:
		s.Kind = "macvlan"
		s.Mode = vnicMacvlanModeName(l.Mode)
		s.Parent, _ = vnicIndexName(h, ns, a.NetNsID, a.ParentIndex)
	case *netlink.IPVlan:
		s.Kind = "ipvlan"
		s.Mode = vnicIPVlanModeName(l.Mode)
		s.Parent, _ = vnicIndexName(h, ns, a.NetNsID, a.ParentIndex)
	default:
		return VNICSpec{}, false
	}
	return s, true
}

// vnicPeerOf names a veth's other end and its namespace. The kernel reports
// the peer's ifindex (IFLA_LINK) and, when it lives elsewhere, the peer
// namespace's id as seen from ns (IFLA_LINK_NETNSID); the id is matched
// against the current namespace and those named under /var/run/netns.
func vnicPeerOf(h *netlink.Handle, ns string, a *netlink.LinkAttrs) (peer, peerNs string) {
	if a.ParentIndex == 0 {
		return "", ""
	}
	return vnicIndexName(h, ns, a.NetNsID, a.ParentIndex)
}

// vnicIndexName finds the name of ifindex index in the namespace whose id,
// seen from ns, is nsid (-1: ns itself).
func vnicIndexName(h *netlink.Handle, ns string, nsid, index int) (name, inNs string) {
	if index == 0 {
		return "", ""
	}
	if nsid < 0 {
		if l, err := h.LinkByIndex(index); err == nil {
			return l.Attrs().Name, ns
		}
		return "", ""
	}
	candidates := []string{""}
	if ents, err := os.ReadDir(vnicNetnsDir); err == nil {
		for _, e := range ents {
			candidates = append(candidates, e.Name())
		}
	}
	for _, c := range candidates {
		if c == ns {
			continue
		}
		nsh, err := vnicOpenNetns(c)
		if err != nil {
			continue
		}
		id, err := h.GetNetNsIdByFd(int(nsh))
		_ = nsh.Close()
		if err != nil || id != nsid {
			continue
		}
		ch, err := vnicHandle(c)
		if err != nil {
			return "", ""
		}
		defer ch.Close()
		if l, err := ch.LinkByIndex(index); err == nil {
			return l.Attrs().Name, c
		}
		return "", ""
	}
	return "", ""
}

func vnicMacvlanModeName(m netlink.MacvlanMode) string {
	switch m {
	case netlink.MACVLAN_MODE_PRIVATE:
		return "private"
	case netlink.MACVLAN_MODE_VEPA:
		return "vepa"
	case netlink.MACVLAN_MODE_PASSTHRU:
		return "passthru"
	}
	return "bridge"
}

func vnicIPVlanModeName(m netlink.IPVlanMode) string {
	switch m {
	case netlink.IPVLAN_MODE_L3:
		return "l3"
	case netlink.IPVLAN_MODE_L3S:
		return "l3s"
	}
	return "l2"
}
