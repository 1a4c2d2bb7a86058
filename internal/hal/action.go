package hal

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sculpt/internal/hal/topology"
)

// Action is one change to the machine. The set is sealed: only this package
// defines actions, so a backend and the journal know every kind there is.
//
// Every action marshals to JSON with a "kind" discriminator and comes back
// with UnmarshalAction; String says what it does in words a person reads;
// Validate checks what can be checked without the machine (the backend
// checks the rest, e.g. that CPUs are online).
type Action interface {
	Kind() string
	Validate() error
	String() string
	isAction()
}

var (
	_ Action = PinThreads{}
	_ Action = SetSched{}
	_ Action = SetCgroupCPU{}
	_ Action = SetCpuset{}
	_ Action = MoveToCgroup{}
	_ Action = CreateCgroup{}
	_ Action = RemoveCgroup{}
	_ Action = BlkioWeight{}
	_ Action = BlkioLimit{}
	_ Action = MemMigrate{}
	_ Action = MemBind{}
	_ Action = IRQAffinity{}
	_ Action = QueueMask{}
	_ Action = Channels{}
	_ Action = SetVFs{}
	_ Action = CreateVNIC{}
	_ Action = DeleteVNIC{}
	_ Action = Steps{}
)

// InvalidError says an action's field holds a bad value. The CLI turns it
// into a usage error (exit 2) naming the flag of the same name.
type InvalidError struct {
	Kind   string // the action kind
	Field  string // e.g. "cpus", "pid", "policy"
	Value  string
	Reason string
	// Err is the condition behind it, if any (ErrGone for a PID that no
	// longer exists).
	Err error
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("%s: %s %q: %s", e.Kind, e.Field, e.Value, e.Reason)
}

func (e *InvalidError) Unwrap() error { return e.Err }

func invalid(kind, field string, value any, format string, args ...any) error {
	return &InvalidError{Kind: kind, Field: field, Value: fmt.Sprint(value), Reason: fmt.Sprintf(format, args...)}
}

// maxCPU bounds CPU and node numbers (the kernel's NR_CPUS tops out at 8192).
const maxCPU = 1 << 16

func checkPID(kind string, pid int) error {
	if pid <= 0 {
		return invalid(kind, "pid", pid, "want a positive process ID")
	}
	return nil
}

func checkCPUs(kind, field string, cpus []int) error {
	if len(cpus) == 0 {
		return invalid(kind, field, "", "want at least one CPU")
	}
	for _, c := range cpus {
		if c < 0 || c >= maxCPU {
			return invalid(kind, field, FormatList(cpus), "CPU %d out of range", c)
		}
	}
	return nil
}

func checkNodes(kind, field string, nodes []int) error {
	if len(nodes) == 0 {
		return invalid(kind, field, "", "want at least one NUMA node")
	}
	for _, n := range nodes {
		if n < 0 || n >= maxCPU {
			return invalid(kind, field, FormatList(nodes), "node %d out of range", n)
		}
	}
	return nil
}

func checkCgroup(kind, cg string) error {
	if cg == "" || !strings.HasPrefix(cg, "/") {
		return invalid(kind, "cgroup", cg, "want an absolute cgroup path such as /sculpt/web")
	}
	for _, el := range strings.Split(cg, "/") {
		if el == ".." || el == "." {
			return invalid(kind, "cgroup", cg, "path may not contain %q", el)
		}
	}
	return nil
}

// PinThreads sets the CPU affinity of every thread of PID to CPUs.
//
// When Threads is set (an undo restoring each thread's own mask), a thread
// named there gets its own mask and any other thread gets CPUs. When Threads
// is empty the pin is uniform and, if the process is in a non-root cpuset
// cgroup that holds no other process, the backend also sets that cgroup's
// cpuset.cpus so threads created later stay inside; a cgroup shared with
// other processes is never narrowed for one of them.
type PinThreads struct {
	PID     int           `json:"pid"`
	CPUs    []int         `json:"cpus"`
	Threads map[int][]int `json:"threads,omitempty"`
}

func (PinThreads) Kind() string { return "pin" }
func (PinThreads) isAction()    {}
func (a PinThreads) Validate() error {
	if err := checkPID(a.Kind(), a.PID); err != nil {
		return err
	}
	for tid, cpus := range a.Threads {
		if err := checkCPUs(a.Kind(), "threads["+strconv.Itoa(tid)+"]", cpus); err != nil {
			return err
		}
	}
	if len(a.Threads) > 0 && len(a.CPUs) == 0 {
		return nil
	}
	return checkCPUs(a.Kind(), "cpus", a.CPUs)
}
func (a PinThreads) String() string {
	if len(a.Threads) > 0 {
		return fmt.Sprintf("restore the CPU affinity of %s of pid %d", threadCount(len(a.Threads)), a.PID)
	}
	return fmt.Sprintf("pin every thread of pid %d to CPUs %s", a.PID, FormatList(a.CPUs))
}

func threadCount(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return strconv.Itoa(n) + " threads"
}

// Scheduling policies that SetSched sets. Fifo and rr (real-time) appear
// only in a snapshot or when an undo restores them.
const (
	PolicyOther = "other"
	PolicyBatch = "batch"
	PolicyIdle  = "idle"
)

// ThreadSched is one thread's scheduling policy, real-time priority and nice.
type ThreadSched struct {
	Policy   string `json:"policy"`
	Priority int    `json:"priority,omitempty"`
	Nice     int    `json:"nice"`
}

// SetSched sets the scheduling policy (and nice, when Nice is set) of every
// thread of PID. Threads, when set (an undo), restores each thread's own.
type SetSched struct {
	PID     int                 `json:"pid"`
	Policy  string              `json:"policy,omitempty"`
	Nice    *int                `json:"nice,omitempty"`
	Threads map[int]ThreadSched `json:"threads,omitempty"`
}

func (SetSched) Kind() string { return "sched" }
func (SetSched) isAction()    {}
func (a SetSched) Validate() error {
	if err := checkPID(a.Kind(), a.PID); err != nil {
		return err
	}
	if len(a.Threads) > 0 && a.Policy == "" {
		return nil
	}
	switch a.Policy {
	case PolicyOther, PolicyBatch, PolicyIdle:
	default:
		return invalid(a.Kind(), "policy", a.Policy, "want other, batch or idle")
	}
	if a.Nice != nil && (*a.Nice < -20 || *a.Nice > 19) {
		return invalid(a.Kind(), "nice", *a.Nice, "want -20..19")
	}
	return nil
}
func (a SetSched) String() string {
	if len(a.Threads) > 0 && a.Policy == "" {
		return fmt.Sprintf("restore the scheduling of %s of pid %d", threadCount(len(a.Threads)), a.PID)
	}
	s := fmt.Sprintf("set scheduling policy %s", a.Policy)
	if a.Nice != nil {
		s += fmt.Sprintf(", nice %d", *a.Nice)
	}
	return s + fmt.Sprintf(" on every thread of pid %d", a.PID)
}

// SetCgroupCPU sets a cgroup's CPU weight and/or bandwidth quota. Shares is
// the v1 cpu.shares (2..262144), Weight the v2 cpu.weight (1..10000); either
// is converted for the hierarchy in use. QuotaUS -1 means no limit.
type SetCgroupCPU struct {
	Cgroup   string  `json:"cgroup"`
	Shares   *uint64 `json:"shares,omitempty"`
	Weight   *uint64 `json:"weight,omitempty"`
	QuotaUS  *int64  `json:"quota_us,omitempty"`
	PeriodUS *uint64 `json:"period_us,omitempty"`
	// Idle sets cpu.idle (Linux 5.15+, v1 and v2): the group competes with
	// its siblings as SCHED_IDLE tasks do, so a SCHED_IDLE workload moved
	// into a cgroup of its own keeps giving way on every wake-up of others.
	Idle *bool `json:"idle,omitempty"`
}

func (SetCgroupCPU) Kind() string { return "cgroup-cpu" }
func (SetCgroupCPU) isAction()    {}
func (a SetCgroupCPU) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.Shares == nil && a.Weight == nil && a.QuotaUS == nil && a.PeriodUS == nil && a.Idle == nil {
		return invalid(a.Kind(), "weight", "", "set at least one of shares, weight, quota, period, idle")
	}
	if a.Shares != nil && a.Weight != nil {
		return invalid(a.Kind(), "weight", *a.Weight, "set shares or weight, not both")
	}
	if a.Shares != nil && (*a.Shares < 2 || *a.Shares > 262144) {
		return invalid(a.Kind(), "shares", *a.Shares, "want 2..262144")
	}
	if a.Weight != nil && (*a.Weight < 1 || *a.Weight > 10000) {
		return invalid(a.Kind(), "weight", *a.Weight, "want 1..10000")
	}
	if a.QuotaUS != nil && *a.QuotaUS != -1 && *a.QuotaUS < 1000 {
		return invalid(a.Kind(), "quota", *a.QuotaUS, "want at least 1000 µs, or -1 for no limit")
	}
	if a.PeriodUS != nil && (*a.PeriodUS < 1000 || *a.PeriodUS > 1000000) {
		return invalid(a.Kind(), "period", *a.PeriodUS, "want 1000..1000000 µs")
	}
	return nil
}
func (a SetCgroupCPU) String() string {
	var parts []string
	if a.Shares != nil {
		parts = append(parts, fmt.Sprintf("cpu shares %d", *a.Shares))
	}
	if a.Weight != nil {
		parts = append(parts, fmt.Sprintf("cpu weight %d", *a.Weight))
	}
	if a.QuotaUS != nil {
		if *a.QuotaUS < 0 {
			parts = append(parts, "no cpu quota")
		} else {
			parts = append(parts, fmt.Sprintf("cpu quota %dµs", *a.QuotaUS))
		}
	}
	if a.PeriodUS != nil {
		parts = append(parts, fmt.Sprintf("period %dµs", *a.PeriodUS))
	}
	if a.Idle != nil {
		if *a.Idle {
			parts = append(parts, "cpu idle")
		} else {
			parts = append(parts, "cpu not idle")
		}
	}
	return fmt.Sprintf("set %s on cgroup %s", strings.Join(parts, ", "), a.Cgroup)
}

// SetCpuset sets a cpuset cgroup's cpus and/or mems (nil leaves one as is).
type SetCpuset struct {
	Cgroup string `json:"cgroup"`
	CPUs   []int  `json:"cpus,omitempty"`
	Mems   []int  `json:"mems,omitempty"`
}

func (SetCpuset) Kind() string { return "cpuset" }
func (SetCpuset) isAction()    {}
func (a SetCpuset) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.CPUs == nil && a.Mems == nil {
		return invalid(a.Kind(), "cpus", "", "set cpus, mems or both")
	}
	if a.CPUs != nil {
		if err := checkCPUs(a.Kind(), "cpus", a.CPUs); err != nil {
			return err
		}
	}
	if a.Mems != nil {
		return checkNodes(a.Kind(), "mems", a.Mems)
	}
	return nil
}
func (a SetCpuset) String() string {
	var parts []string
	if a.CPUs != nil {
		parts = append(parts, "cpus "+FormatList(a.CPUs))
	}
	if a.Mems != nil {
		parts = append(parts, "mems "+FormatList(a.Mems))
	}
	return fmt.Sprintf("set cpuset %s of cgroup %s", strings.Join(parts, ", "), a.Cgroup)
}

// MoveToCgroup moves every thread of PID into Cgroup in the given
// controllers' hierarchies ("" is the v2 unified hierarchy; empty means
// cpuset and cpu).
type MoveToCgroup struct {
	PID         int      `json:"pid"`
	Cgroup      string   `json:"cgroup"`
	Controllers []string `json:"controllers,omitempty"`
}

func (MoveToCgroup) Kind() string { return "cgroup-move" }
func (MoveToCgroup) isAction()    {}
func (a MoveToCgroup) Validate() error {
	if err := checkPID(a.Kind(), a.PID); err != nil {
		return err
	}
	return checkCgroup(a.Kind(), a.Cgroup)
}
func (a MoveToCgroup) String() string {
	return fmt.Sprintf("move pid %d to cgroup %s (%s)", a.PID, a.Cgroup, controllerList(a.Controllers))
}

// CreateCgroup makes Cgroup in the given controllers' hierarchies (empty
// means cpuset and cpu). A new v1 cpuset cgroup gets its parent's cpus and
// mems so that processes can join it.
type CreateCgroup struct {
	Cgroup      string   `json:"cgroup"`
	Controllers []string `json:"controllers,omitempty"`
}

func (CreateCgroup) Kind() string { return "cgroup-create" }
func (CreateCgroup) isAction()    {}
func (a CreateCgroup) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.Cgroup == "/" {
		return invalid(a.Kind(), "cgroup", a.Cgroup, "the root cgroup always exists")
	}
	return nil
}
func (a CreateCgroup) String() string {
	return fmt.Sprintf("create cgroup %s (%s)", a.Cgroup, controllerList(a.Controllers))
}

// RemoveCgroup removes an empty Cgroup from the given controllers'
// hierarchies; a cgroup already gone counts as removed.
type RemoveCgroup struct {
	Cgroup      string   `json:"cgroup"`
	Controllers []string `json:"controllers,omitempty"`
}

func (RemoveCgroup) Kind() string { return "cgroup-remove" }
func (RemoveCgroup) isAction()    {}
func (a RemoveCgroup) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.Cgroup == "/" {
		return invalid(a.Kind(), "cgroup", a.Cgroup, "the root cgroup cannot be removed")
	}
	return nil
}
func (a RemoveCgroup) String() string {
	return fmt.Sprintf("remove cgroup %s (%s)", a.Cgroup, controllerList(a.Controllers))
}

func controllerList(c []string) string {
	if len(c) == 0 {
		return "cpuset, cpu"
	}
	out := make([]string, len(c))
	for i, s := range c {
		if s == "" {
			s = "unified"
		}
		out[i] = s
	}
	return strings.Join(out, ", ")
}

// BlkioWeight sets a cgroup's proportional block I/O weight (v1 blkio.weight
// or blkio.bfq.weight, v2 io.weight or io.bfq.weight), 1..1000.
type BlkioWeight struct {
	Cgroup string `json:"cgroup"`
	Weight uint64 `json:"weight"`
}

func (BlkioWeight) Kind() string { return "blkio-weight" }
func (BlkioWeight) isAction()    {}
func (a BlkioWeight) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.Weight < 1 || a.Weight > 1000 {
		return invalid(a.Kind(), "weight", a.Weight, "want 1..1000")
	}
	return nil
}
func (a BlkioWeight) String() string {
	return fmt.Sprintf("set block I/O weight %d on cgroup %s", a.Weight, a.Cgroup)
}

// BlkioLimit caps a cgroup's block I/O bandwidth on one device, in bytes
// per second (v1 blkio.throttle.read_bps_device / write_bps_device, v2
// io.max rbps / wbps); 0 is no cap. In cgroup v1 only direct I/O is
// capped: buffered writes reach the disk through writeback, which the
// kernel charges to the root cgroup.
type BlkioLimit struct {
	Cgroup   string `json:"cgroup"`
	Device   string `json:"device"` // MAJOR:MINOR of a whole block device
	ReadBPS  uint64 `json:"read_bps"`
	WriteBPS uint64 `json:"write_bps"`
}

var devNumber = regexp.MustCompile(`^[0-9]{1,4}:[0-9]{1,7}$`)

func (BlkioLimit) Kind() string { return "blkio-limit" }
func (BlkioLimit) isAction()    {}
func (a BlkioLimit) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	if a.Cgroup == "/" {
		return invalid(a.Kind(), "cgroup", a.Cgroup, "the root cgroup holds every process: cap a cgroup of its own")
	}
	if !devNumber.MatchString(a.Device) {
		return invalid(a.Kind(), "device", a.Device, "want MAJOR:MINOR of a block device, such as 254:0 (lsblk -o NAME,MAJ:MIN)")
	}
	return nil
}
func (a BlkioLimit) String() string {
	return fmt.Sprintf("cap block I/O of cgroup %s on device %s to read %s, write %s", a.Cgroup, a.Device, bpsText(a.ReadBPS), bpsText(a.WriteBPS))
}

func bpsText(v uint64) string {
	if v == 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%.1f MB/s", float64(v)/1e6)
}

// MemMigrate moves the pages of PID to ToNodes: with Chunked, in bounded,
// paced move_pages chunks (the target never stalls long); without, one
// migrate_pages call from FromNodes (all nodes when empty).
//
// A chunked move takes only the pages the process maps alone unless Shared
// is set: page cache, shared libraries and text that other processes map
// too stay where they are, so moving one workload never drags another's
// memory. With Shared (root) they move too (MPOL_MF_MOVE_ALL). The one-call
// migrate_pages path has no such choice: the kernel moves shared pages
// whenever the caller has CAP_SYS_NICE.
//
// Pages that cannot move (busy, pinned, mapped elsewhere) do not fail the
// action when others moved: a page move is best effort, and how many pages
// moved is read back from numa_maps.
type MemMigrate struct {
	PID       int   `json:"pid"`
	FromNodes []int `json:"from_nodes,omitempty"`
	ToNodes   []int `json:"to_nodes"`
	Chunked   bool  `json:"chunked,omitempty"`
	Shared    bool  `json:"shared,omitempty"`
}

func (MemMigrate) Kind() string { return "mem-migrate" }
func (MemMigrate) isAction()    {}
func (a MemMigrate) Validate() error {
	if err := checkPID(a.Kind(), a.PID); err != nil {
		return err
	}
	if a.FromNodes != nil {
		if err := checkNodes(a.Kind(), "from", a.FromNodes); err != nil {
			return err
		}
	}
	if err := checkNodes(a.Kind(), "to", a.ToNodes); err != nil {
		return err
	}
	if a.Chunked && len(a.ToNodes) != 1 {
		return invalid(a.Kind(), "to", FormatList(a.ToNodes), "a chunked migration moves to exactly one node")
	}
	return nil
}
func (a MemMigrate) String() string {
	how := "in one call"
	if a.Chunked {
		how = "in paced chunks"
	}
	from := "all nodes"
	if len(a.FromNodes) > 0 {
		from = "nodes " + FormatList(a.FromNodes)
	}
	if a.Chunked && a.Shared {
		how += ", shared pages too"
	}
	return fmt.Sprintf("migrate the memory of pid %d from %s to nodes %s %s", a.PID, from, FormatList(a.ToNodes), how)
}

// MemBind confines a cpuset cgroup's memory to Nodes (cpuset.mems); with
// Migrate it also sets cpuset.memory_migrate so pages already placed move.
type MemBind struct {
	Cgroup  string `json:"cgroup"`
	Nodes   []int  `json:"nodes"`
	Migrate bool   `json:"migrate,omitempty"`
}

func (MemBind) Kind() string { return "mem-bind" }
func (MemBind) isAction()    {}
func (a MemBind) Validate() error {
	if err := checkCgroup(a.Kind(), a.Cgroup); err != nil {
		return err
	}
	return checkNodes(a.Kind(), "nodes", a.Nodes)
}
func (a MemBind) String() string {
	s := fmt.Sprintf("bind the memory of cgroup %s to nodes %s", a.Cgroup, FormatList(a.Nodes))
	if a.Migrate {
		s += ", migrating pages already placed"
	}
	return s
}

// IRQAffinity sets the CPUs that may service a device interrupt.
type IRQAffinity struct {
	IRQ  int   `json:"irq"`
	CPUs []int `json:"cpus"`
}

func (IRQAffinity) Kind() string { return "irq" }
func (IRQAffinity) isAction()    {}
func (a IRQAffinity) Validate() error {
	if a.IRQ < 0 {
		return invalid(a.Kind(), "irq", a.IRQ, "want an IRQ number >= 0")
	}
	return checkCPUs(a.Kind(), "cpus", a.CPUs)
}
func (a IRQAffinity) String() string {
	return fmt.Sprintf("route IRQ %d to CPUs %s", a.IRQ, FormatList(a.CPUs))
}

// Queue mask kinds.
const (
	QueueRPS = "rps"
	QueueXPS = "xps"
)

var ifaceName = regexp.MustCompile(`^[^/\s:]{1,15}$`)

func checkIface(kind, iface string) error {
	if !ifaceName.MatchString(iface) || iface == "." || iface == ".." {
		return invalid(kind, "iface", iface, "want a network interface name (1-15 characters, no '/', ':' or spaces)")
	}
	return nil
}

// QueueMask sets the RPS (receive) or XPS (transmit) CPU mask of one queue
// of a network interface; Mask is the kernel's hex mask, e.g. "3".
type QueueMask struct {
	Iface string `json:"iface"`
	Type  string `json:"type"` // rps or xps
	Queue int    `json:"queue"`
	Mask  string `json:"mask"`
}

var hexMask = regexp.MustCompile(`^[0-9a-fA-F]+(,[0-9a-fA-F]+)*$`)

func (QueueMask) Kind() string { return "queue-mask" }
func (QueueMask) isAction()    {}
func (a QueueMask) Validate() error {
	if err := checkIface(a.Kind(), a.Iface); err != nil {
		return err
	}
	if a.Type != QueueRPS && a.Type != QueueXPS {
		return invalid(a.Kind(), "queue kind", a.Type, "want rps or xps")
	}
	if a.Queue < 0 {
		return invalid(a.Kind(), "queue", a.Queue, "want a queue index >= 0")
	}
	if !hexMask.MatchString(a.Mask) {
		return invalid(a.Kind(), "mask", a.Mask, "want a hex CPU mask such as 3 or ff,00000000")
	}
	return nil
}
func (a QueueMask) String() string {
	dir := "rx"
	if a.Type == QueueXPS {
		dir = "tx"
	}
	return fmt.Sprintf("set %s mask of %s queue %s-%d to %s", strings.ToUpper(a.Type), a.Iface, dir, a.Queue, a.Mask)
}

// Channels sets a NIC's channel counts (ethtool -L); nil leaves one as is.
type Channels struct {
	Iface    string `json:"iface"`
	Combined *int   `json:"combined,omitempty"`
	RX       *int   `json:"rx,omitempty"`
	TX       *int   `json:"tx,omitempty"`
}

func (Channels) Kind() string { return "channels" }
func (Channels) isAction()    {}
func (a Channels) Validate() error {
	if err := checkIface(a.Kind(), a.Iface); err != nil {
		return err
	}
	if a.Combined == nil && a.RX == nil && a.TX == nil {
		return invalid(a.Kind(), "combined", "", "set at least one of combined, rx, tx")
	}
	for name, p := range map[string]*int{"combined": a.Combined, "rx": a.RX, "tx": a.TX} {
		if p != nil && *p < 0 {
			return invalid(a.Kind(), name, *p, "want a count >= 0")
		}
	}
	return nil
}
func (a Channels) String() string {
	var parts []string
	if a.Combined != nil {
		parts = append(parts, fmt.Sprintf("combined %d", *a.Combined))
	}
	if a.RX != nil {
		parts = append(parts, fmt.Sprintf("rx %d", *a.RX))
	}
	if a.TX != nil {
		parts = append(parts, fmt.Sprintf("tx %d", *a.TX))
	}
	return fmt.Sprintf("set channels of %s to %s", a.Iface, strings.Join(parts, ", "))
}

var pciAddr = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// SetVFs sets the number of SR-IOV virtual functions of a PCI device.
type SetVFs struct {
	PCIAddr string `json:"pci_addr"`
	Count   int    `json:"count"`
}

func (SetVFs) Kind() string { return "vfs" }
func (SetVFs) isAction()    {}
func (a SetVFs) Validate() error {
	if !pciAddr.MatchString(a.PCIAddr) {
		return invalid(a.Kind(), "pci", a.PCIAddr, "want a PCI address such as 0000:3b:00.0")
	}
	if a.Count < 0 {
		return invalid(a.Kind(), "count", a.Count, "want a count >= 0")
	}
	return nil
}
func (a SetVFs) String() string {
	return fmt.Sprintf("set %d SR-IOV virtual functions on %s", a.Count, a.PCIAddr)
}

// VNIC kinds.
const (
	VNICVeth    = "veth"
	VNICTap     = "tap"
	VNICBridge  = "bridge"
	VNICMacvlan = "macvlan"
	VNICIpvlan  = "ipvlan"
)

// VNICSpec describes a virtual NIC. Netns is the named network namespace
// (under /var/run/netns) it lives in, "" for the current one; Peer and
// PeerNetns are for veth; Parent for macvlan/ipvlan; Queues for a
// multiqueue tap; Mode for macvlan (bridge, private, vepa, passthru) and
// ipvlan (l2, l3, l3s).
type VNICSpec struct {
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Peer      string `json:"peer,omitempty"`
	PeerNetns string `json:"peer_netns,omitempty"`
	Parent    string `json:"parent,omitempty"`
	Queues    int    `json:"queues,omitempty"`
	Netns     string `json:"netns,omitempty"`
	Mode      string `json:"mode,omitempty"`
	MTU       int    `json:"mtu,omitempty"` // 0 keeps the kernel's default
}

// CreateVNIC creates a virtual NIC.
type CreateVNIC struct {
	Spec VNICSpec `json:"spec"`
}

func (CreateVNIC) Kind() string { return "vnic-create" }
func (CreateVNIC) isAction()    {}
func (a CreateVNIC) Validate() error {
	s := a.Spec
	switch s.Kind {
	case VNICVeth, VNICTap, VNICBridge, VNICMacvlan, VNICIpvlan:
	default:
		return invalid(a.Kind(), "kind", s.Kind, "want veth, tap, bridge, macvlan or ipvlan")
	}
	if err := checkIface(a.Kind(), s.Name); err != nil {
		return invalid(a.Kind(), "name", s.Name, "want a network interface name (1-15 characters, no '/', ':' or spaces)")
	}
	if s.Kind == VNICVeth {
		if err := checkIface(a.Kind(), s.Peer); err != nil {
			return invalid(a.Kind(), "peer", s.Peer, "a veth needs a peer name (1-15 characters)")
		}
	}
	if (s.Kind == VNICMacvlan || s.Kind == VNICIpvlan) && s.Parent == "" {
		return invalid(a.Kind(), "parent", s.Parent, "a %s needs a parent interface", s.Kind)
	}
	if s.Queues < 0 || s.Queues > 256 {
		return invalid(a.Kind(), "queues", s.Queues, "want 0..256")
	}
	if s.Netns != "" && strings.ContainsAny(s.Netns, "/") {
		return invalid(a.Kind(), "netns", s.Netns, "want a namespace name, not a path")
	}
	return nil
}
func (a CreateVNIC) String() string {
	s := a.Spec
	out := fmt.Sprintf("create %s %s", s.Kind, s.Name)
	if s.Peer != "" {
		out += " (peer " + s.Peer + ")"
	}
	if s.Queues > 1 {
		out += fmt.Sprintf(" with %d queues", s.Queues)
	}
	return out + " in " + netnsName(s.Netns)
}

// DeleteVNIC deletes a virtual NIC (a veth's peer goes with it).
type DeleteVNIC struct {
	Netns string `json:"netns,omitempty"`
	Name  string `json:"name"`
}

func (DeleteVNIC) Kind() string { return "vnic-delete" }
func (DeleteVNIC) isAction()    {}
func (a DeleteVNIC) Validate() error {
	if err := checkIface(a.Kind(), a.Name); err != nil {
		return invalid(a.Kind(), "name", a.Name, "want a network interface name")
	}
	return nil
}
func (a DeleteVNIC) String() string {
	return fmt.Sprintf("delete %s in %s", a.Name, netnsName(a.Netns))
}

func netnsName(ns string) string {
	if ns == "" {
		return "the host namespace"
	}
	return "namespace " + ns
}

// Steps applies several actions in order; an undo that restores more than
// one thing is a Steps.
type Steps struct {
	Steps []Action `json:"steps"`
}

func (Steps) Kind() string { return "steps" }
func (Steps) isAction()    {}
func (a Steps) Validate() error {
	for i, s := range a.Steps {
		if s == nil {
			return invalid(a.Kind(), "steps", i, "empty step")
		}
		if err := s.Validate(); err != nil {
			return fmt.Errorf("step %d: %w", i, err)
		}
	}
	return nil
}
func (a Steps) String() string {
	if len(a.Steps) == 0 {
		return "nothing (it was already so)"
	}
	parts := make([]string, len(a.Steps))
	for i, s := range a.Steps {
		parts[i] = s.String()
	}
	return strings.Join(parts, "; then ")
}

// FormatList writes CPU or node numbers in the kernel's list form
// ("0-3,8"); an empty list gives "".
func FormatList(l []int) string { return topology.FormatCPUList(l) }
