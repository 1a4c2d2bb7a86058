package linux

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

func TestVNICSpecValidate(t *testing.T) {
	long := strings.Repeat("x", 16)
	cases := []struct {
		name string
		spec VNICSpec
		want string // substring of the error; "" means valid
	}{
		{"veth", VNICSpec{Kind: "veth", Name: "a0", Peer: "b0", Queues: 4}, ""},
		{"tap", VNICSpec{Kind: "tap", Name: "tap0", Queues: 256}, ""},
		{"bridge", VNICSpec{Kind: "bridge", Name: "br0", MTU: 9000}, ""},
		{"macvlan", VNICSpec{Kind: "macvlan", Name: "mv0", Parent: "eth0", Mode: "vepa"}, ""},
		{"ipvlan", VNICSpec{Kind: "ipvlan", Name: "iv0", Parent: "eth0", Mode: "l3"}, ""},
		{"15 bytes", VNICSpec{Kind: "bridge", Name: long[:15]}, ""},
		{"16 bytes", VNICSpec{Kind: "bridge", Name: long}, "longer than 15"},
		{"empty name", VNICSpec{Kind: "bridge"}, "empty"},
		{"slash", VNICSpec{Kind: "bridge", Name: "a/b"}, "contains '/'"},
		{"space", VNICSpec{Kind: "bridge", Name: "a b"}, "white space"},
		{"dotdot", VNICSpec{Kind: "bridge", Name: ".."}, "not allowed"},
		{"unknown kind", VNICSpec{Kind: "vxlan", Name: "v0"}, `unknown kind "vxlan"`},
		{"too many queues", VNICSpec{Kind: "tap", Name: "t0", Queues: 257}, "queues 257 out of range"},
		{"negative queues", VNICSpec{Kind: "veth", Name: "a", Peer: "b", Queues: -1}, "queues -1"},
		{"veth without peer", VNICSpec{Kind: "veth", Name: "a"}, "peer"},
		{"veth bad peer", VNICSpec{Kind: "veth", Name: "a", Peer: long}, "peer"},
		{"veth peer same name", VNICSpec{Kind: "veth", Name: "a", Peer: "a"}, "same name"},
		{"macvlan without parent", VNICSpec{Kind: "macvlan", Name: "m"}, "parent"},
		{"macvlan bad mode", VNICSpec{Kind: "macvlan", Name: "m", Parent: "eth0", Mode: "l2"}, `macvlan mode "l2"`},
		{"ipvlan bad mode", VNICSpec{Kind: "ipvlan", Name: "i", Parent: "eth0", Mode: "vepa"}, `ipvlan mode "vepa"`},
		{"mode on bridge", VNICSpec{Kind: "bridge", Name: "b", Mode: "l2"}, "mode is only"},
		{"peer on tap", VNICSpec{Kind: "tap", Name: "t", Peer: "p"}, "peer is only"},
		{"queues on bridge", VNICSpec{Kind: "bridge", Name: "b", Queues: 4}, "no queue count"},
		{"negative mtu", VNICSpec{Kind: "bridge", Name: "b", MTU: -1}, "negative MTU"},
		{"bad netns", VNICSpec{Kind: "bridge", Name: "b", Netns: ".."}, "netns"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("Validate(%+v) = %v, want nil", c.spec, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, unix.EINVAL) {
				t.Fatalf("Validate(%+v) = %v, want EINVAL mentioning %q", c.spec, err, c.want)
			}
			// CreateVNIC refuses the same spec before touching the machine.
			if err := CreateVNIC(c.spec); err == nil || !errors.Is(err, unix.EINVAL) {
				t.Fatalf("CreateVNIC(%+v) = %v, want EINVAL", c.spec, err)
			}
		})
	}
}

func netRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
}

// uniqueName returns prefix plus random hex, at most 15 bytes.
func netUniqueName(prefix string) string {
	return fmt.Sprintf("%s%06x", prefix, rand.Uint32()&0xffffff)
}

// throwawayNetns creates a named network namespace and deletes it when the
// test ends (taking every interface in it along).
func throwawayNetns(t *testing.T) string {
	t.Helper()
	netRequireRoot(t)
	name := netUniqueName("sculpt-test-")
	errc := make(chan error, 1)
	go func() {
		// NewNamed moves this thread into the new namespace; the thread
		// stays locked and is discarded when the goroutine returns.
		runtime.LockOSThread()
		h, err := netns.NewNamed(name)
		if err == nil {
			_ = h.Close()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("create netns %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("delete netns %s: %v", name, err)
		}
	})
	return name
}

// nsQueueCount counts queues/rx-* and tx-* of iface inside ns, through a
// sysfs mounted from within that namespace.
func nsQueueCount(t *testing.T, ns, iface string) (rx, tx int) {
	t.Helper()
	type res struct {
		rx, tx int
		err    error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread changes namespaces
		r := res{}
		defer func() { ch <- r }()
		nsh, err := netns.GetFromPath(vnicNetnsPath(ns))
		if err != nil {
			r.err = err
			return
		}
		defer func() { _ = nsh.Close() }()
		if r.err = unix.Unshare(unix.CLONE_NEWNS); r.err != nil {
			return
		}
		if r.err = netns.Set(nsh); r.err != nil {
			return
		}
		if r.err = unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); r.err != nil {
			return
		}
		dir, err := os.MkdirTemp("", "sculpt-sysfs-")
		if err != nil {
			r.err = err
			return
		}
		defer func() { _ = os.Remove(dir) }()
		if r.err = unix.Mount("sysfs", dir, "sysfs", 0, ""); r.err != nil {
			return
		}
		defer func() { _ = unix.Unmount(dir, unix.MNT_DETACH) }()
		r.rx, r.tx, r.err = QueueCount(host.Roots{Sys: dir}, iface)
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("queue count of %s in %s: %v", iface, ns, r.err)
	}
	return r.rx, r.tx
}

func TestVNICLifecycleRoot(t *testing.T) {
	ns := throwawayNetns(t)
	other := throwawayNetns(t)

	specs := []VNICSpec{
		{Kind: "veth", Name: "sv0", Peer: "sv1", PeerNetns: ns, Queues: 4, Netns: ns, MTU: 1400},
		{Kind: "veth", Name: "sx0", Peer: "sx1", PeerNetns: other, Queues: 2, Netns: ns},
		{Kind: "tap", Name: "stap0", Queues: 4, Netns: ns},
		{Kind: "tap", Name: "stap1", Netns: ns},
		{Kind: "bridge", Name: "sbr0", Netns: ns},
		{Kind: "macvlan", Name: "smv0", Parent: "sv0", Mode: "private", Netns: ns},
		{Kind: "ipvlan", Name: "siv0", Parent: "sv0", Mode: "l2", Netns: ns},
	}
	created := map[string]VNICSpec{}
	for _, s := range specs {
		err := CreateVNIC(s)
		if s.Kind == "macvlan" || s.Kind == "ipvlan" {
			if errors.Is(err, hal.ErrNotSupported) {
				t.Logf("skip %s: %v", s.Kind, err)
				if !errors.Is(err, unix.EOPNOTSUPP) {
					t.Errorf("not-supported error for %s does not wrap EOPNOTSUPP: %v", s.Kind, err)
				}
				continue
			}
		}
		if err != nil {
			t.Fatalf("CreateVNIC(%+v): %v", s, err)
		}
		created[s.Name] = s
	}

	// A second create with a taken name fails and says so.
	err := CreateVNIC(VNICSpec{Kind: "bridge", Name: "sv0", Netns: ns})
	if !errors.Is(err, unix.EEXIST) || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CreateVNIC with a taken name = %v, want EEXIST saying it exists", err)
	}
	err = CreateVNIC(VNICSpec{Kind: "veth", Name: "snew0", Peer: "sv1", PeerNetns: ns, Netns: ns})
	if !errors.Is(err, unix.EEXIST) {
		t.Errorf("CreateVNIC with a taken peer name = %v, want EEXIST", err)
	}
	// Nothing leaked into the current namespace (the tap is made by a
	// thread that entered ns).
	for _, name := range []string{"sv0", "sv1", "stap0", "sbr0"} {
		if ok, err := VNICExists("", name); err != nil || ok {
			t.Errorf("VNICExists(current, %s) = %v, %v; it must live only in %s", name, ok, err, ns)
		}
	}

	list, err := ListVNICs(ns)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]VNICSpec{}
	for _, s := range list {
		got[s.Name] = s
	}
	for name, want := range created {
		g, ok := got[name]
		if !ok {
			t.Errorf("ListVNICs(%s) lacks %s: %+v", ns, name, list)
			continue
		}
		if g.Kind != want.Kind {
			t.Errorf("%s: kind %q, want %q", name, g.Kind, want.Kind)
		}
		if want.Kind == "veth" && (g.Peer != want.Peer || g.PeerNetns != want.PeerNetns || g.Queues != want.Queues) {
			t.Errorf("%s: listed %+v, want peer %s in %q with %d queues", name, g, want.Peer, want.PeerNetns, want.Queues)
		}
		if (want.Kind == "macvlan" || want.Kind == "ipvlan") && (g.Parent != want.Parent || g.Mode != want.Mode) {
			t.Errorf("%s: listed %+v, want parent %s mode %s", name, g, want.Parent, want.Mode)
		}
		if want.MTU != 0 && g.MTU != want.MTU {
			t.Errorf("%s: MTU %d, want %d", name, g.MTU, want.MTU)
		}
	}
	if g := got["stap0"]; g.Queues != 4 {
		t.Errorf("stap0 listed with %d queues, want 4: %+v", g.Queues, g)
	}
	if g := got["stap1"]; g.Queues != 1 {
		t.Errorf("stap1 listed with %d queues, want 1", g.Queues)
	}
	if g, ok := got["sv1"]; !ok || g.Peer != "sv0" {
		t.Errorf("peer end sv1 listed as %+v, want peer sv0", g)
	}

	// Queue counts seen in the namespace's own sysfs.
	if rx, tx := nsQueueCount(t, ns, "sv0"); rx != 4 || tx != 4 {
		t.Errorf("veth sv0 has %d rx / %d tx queues, want 4/4", rx, tx)
	}
	if rx, tx := nsQueueCount(t, ns, "sv1"); rx != 4 || tx != 4 {
		t.Errorf("veth peer sv1 has %d rx / %d tx queues, want 4/4", rx, tx)
	}
	if rx, tx := nsQueueCount(t, other, "sx1"); rx != 2 || tx != 2 {
		t.Errorf("veth peer sx1 in %s has %d rx / %d tx queues, want 2/2", other, rx, tx)
	}
	rx, tx := nsQueueCount(t, ns, "stap0")
	t.Logf("multi-queue tap stap0 with no queue attached: %d rx / %d tx queues in sysfs", rx, tx)

	// Delete each one, check it is gone and that the returned spec
	// recreates it.
	for _, name := range []string{"sv0", "sx0", "stap0", "sbr0"} {
		spec, err := DeleteVNIC(ns, name)
		if err != nil {
			t.Fatalf("DeleteVNIC(%s, %s): %v", ns, name, err)
		}
		if ok, err := VNICExists(ns, name); err != nil || ok {
			t.Errorf("after DeleteVNIC %s still exists: %v, %v", name, ok, err)
		}
		if spec.Kind == "veth" {
			if ok, _ := VNICExists(spec.PeerNetns, spec.Peer); ok {
				t.Errorf("veth peer %s in %q outlived %s", spec.Peer, spec.PeerNetns, name)
			}
		}
		if err := CreateVNIC(spec); err != nil {
			t.Errorf("recreate %s from the deleted spec %+v: %v", name, spec, err)
			continue
		}
		again, err := DeleteVNIC(ns, name)
		if err != nil {
			t.Fatalf("delete recreated %s: %v", name, err)
		}
		if again != spec {
			t.Errorf("recreated %s differs: %+v, first %+v", name, again, spec)
		}
	}
	if _, err := DeleteVNIC(ns, "sv0"); !errors.Is(err, unix.ENODEV) {
		t.Errorf("DeleteVNIC of a missing interface = %v, want ENODEV", err)
	}
	if _, err := DeleteVNIC(ns, "lo"); !errors.Is(err, unix.EPERM) {
		t.Errorf("DeleteVNIC(lo) = %v, want EPERM refusal", err)
	}
	if ok, err := VNICExists(ns, "lo"); err != nil || !ok {
		t.Errorf("lo in %s: %v, %v", ns, ok, err)
	}
}

func TestVNICMissingNetns(t *testing.T) {
	netRequireRoot(t)
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := ListVNICs(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("ListVNICs(%s) = %v, want an error naming it", missing, err)
	}
	if err := CreateVNIC(VNICSpec{Kind: "tap", Name: "t0", Netns: missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("CreateVNIC in %s = %v, want an error naming it", missing, err)
	}
}
