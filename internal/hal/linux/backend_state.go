package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/host"
)

// probeCapabilities decides, from files under the roots, what this machine
// can change. It runs once, in New.
func (b *Backend) probeCapabilities() hal.Capabilities {
	c := hal.Capabilities{
		Pin:       hal.Yes("sched_setaffinity per thread"),
		Sched:     hal.Yes("sched_setattr per thread: other, batch, idle; nice"),
		PCIeLanes: hal.No("Linux offers no interface to reallocate PCIe lanes; link widths are fixed by the platform at boot"),
		Channels:  hal.Yes("ethtool channels (per device: only drivers that report channels)"),
		VNICs:     map[string]hal.Capability{},
	}
	desc := func(ctrl string) (hierarchy, string, bool) {
		h, ok := b.hier[ctrl]
		if !ok {
			return h, "", false
		}
		if h.v2 {
			return h, "cgroup v2 at " + h.dir, true
		}
		return h, "cgroup v1 at " + h.dir, true
	}
	if _, d, ok := desc("cpuset"); ok {
		c.Cpuset = hal.Yes(d)
		c.MemBind = hal.Yes(d + " (cpuset.mems)")
	} else {
		c.Cpuset = hal.No("no cpuset controller: neither a v1 cpuset hierarchy nor cpuset in the v2 cgroup.controllers under " + b.roots.Cgroup)
		c.MemBind = c.Cpuset
	}
	if _, d, ok := desc("cpu"); ok {
		c.CPUWeight, c.CPUQuota = hal.Yes(d), hal.Yes(d)
	} else {
		c.CPUWeight = hal.No("no cpu controller: neither a v1 cpu hierarchy nor cpu in the v2 cgroup.controllers under " + b.roots.Cgroup)
		c.CPUQuota = c.CPUWeight
	}
	if c.Cpuset.Supported || c.CPUWeight.Supported {
		c.Cgroups = hal.Yes("create, remove and move processes between cgroups")
	} else {
		c.Cgroups = hal.No("no cpuset or cpu cgroup hierarchy under " + b.roots.Cgroup)
	}
	if h, d, ok := desc("blkio"); ok {
		if h.v2 {
			c.BlkioWeight = hal.Yes(d + " io.weight / io.bfq.weight")
		} else if fileExists(filepath.Join(h.dir, "blkio.weight")) {
			c.BlkioWeight = hal.Yes(d + " blkio.weight (CFQ)")
		} else if m, _ := filepath.Glob(filepath.Join(h.dir, "blkio.bfq.*")); len(m) > 0 {
			c.BlkioWeight = hal.Yes(d + " blkio.bfq.weight (BFQ: only devices using the bfq scheduler honour it; not settable on the root cgroup)")
		} else {
			c.BlkioWeight = hal.No("the blkio controller has no weight file: the kernel has neither CFQ (removed in 5.0) nor BFQ")
		}
		switch {
		case h.v2:
			c.BlkioLimit = hal.Yes(d + " io.max (buffered writes included)")
		case fileExists(filepath.Join(h.dir, "blkio.throttle.write_bps_device")):
			c.BlkioLimit = hal.Yes(d + " blkio.throttle.*_bps_device (cgroup v1 caps direct I/O only: buffered writeback is charged to the root)")
		default:
			c.BlkioLimit = hal.No("the blkio controller has no throttle files: a kernel without CONFIG_BLK_DEV_THROTTLING")
		}
	} else {
		c.BlkioWeight = hal.No("no blkio (v1) or io (v2) controller under " + b.roots.Cgroup)
		c.BlkioLimit = c.BlkioWeight
	}
	if n := NodeCount(b.roots); n < 2 {
		c.MemMigrate = hal.No("this machine has one NUMA node: there is no other node to move pages to")
	} else if err := probeMovePages(); err != nil {
		c.MemMigrate = hal.No("move_pages(2) unavailable: " + err.Error())
	} else {
		c.MemMigrate = hal.Yes(fmt.Sprintf("migrate_pages/move_pages across %d nodes", n))
	}
	c.NUMABalancing = NUMABalancing(b.roots)
	if fileExists(b.roots.ProcPath("irq")) {
		c.IRQAffinity = hal.Yes("/proc/irq/N/smp_affinity_list; managed IRQs cannot be moved and are reported as such")
	} else {
		c.IRQAffinity = hal.No(b.roots.ProcPath("irq") + " is missing")
	}
	if m, _ := filepath.Glob(b.roots.SysPath("class/net/*/queues/rx-*/rps_cpus")); len(m) > 0 {
		c.QueueMasks = hal.Yes("rps_cpus / xps_cpus under /sys/class/net/*/queues")
	} else {
		c.QueueMasks = hal.No("no rps_cpus under " + b.roots.SysPath("class/net") + " (kernel without CONFIG_RPS, or no network device)")
	}
	if m, _ := filepath.Glob(b.roots.SysPath("bus/pci/devices/*/sriov_totalvfs")); len(m) > 0 {
		c.SRIOV = hal.Yes(fmt.Sprintf("%d PCI functions offer SR-IOV", len(m)))
	} else {
		c.SRIOV = hal.No("no PCI device here offers SR-IOV (no sriov_totalvfs under " + b.roots.SysPath("bus/pci/devices") + ")")
	}
	for _, k := range []string{hal.VNICVeth, hal.VNICBridge, hal.VNICMacvlan, hal.VNICIpvlan} {
		c.VNICs[k] = hal.Yes("netlink; the driver loads on first use where the kernel has it")
	}
	if fileExists("/dev/net/tun") {
		c.VNICs[hal.VNICTap] = hal.Yes("netlink + /dev/net/tun")
	} else {
		c.VNICs[hal.VNICTap] = hal.No("/dev/net/tun is missing")
	}
	return c
}

// probeMovePages calls move_pages(2) on no pages of this process: ENOSYS
// means the kernel was built without NUMA migration.
func probeMovePages() error {
	_, _, e := unix.Syscall6(unix.SYS_MOVE_PAGES, 0, 0, 0, 0, 0, 0)
	if e == unix.ENOSYS {
		return e
	}
	return nil
}

// Snapshot implements hal.HAL: per process, every thread's affinity and
// scheduling (sched_getaffinity, sched_getattr), its cgroups
// (/proc/PID/cgroup), its cpuset and CPU limits, and its pages per node
// (/proc/PID/numa_maps). A process gone before or during the read is left
// out; a thread that exits mid-read is skipped.
func (b *Backend) Snapshot(ctx context.Context, pids []int) (*hal.Arrangement, error) {
	arr := &hal.Arrangement{Processes: []hal.ProcessState{}}
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ps, err := b.snapshotProcess(pid)
		if errors.Is(err, hal.ErrGone) {
			continue
		}
		if err != nil {
			return nil, err
		}
		arr.Processes = append(arr.Processes, ps)
	}
	return arr, nil
}

func (b *Backend) snapshotProcess(pid int) (hal.ProcessState, error) {
	id, err := processIdentity(b.roots, pid)
	if err != nil {
		return hal.ProcessState{}, err
	}
	ps := hal.ProcessState{PID: pid, Comm: id.Comm, StartTime: id.StartTime}
	tids, err := b.listTasks(pid)
	if err != nil {
		return ps, err
	}
	for _, tid := range tids {
		cpus, err := threadAffinity(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return ps, fmt.Errorf("sched_getaffinity tid %d of pid %d: %w", tid, pid, err)
		}
		s, err := threadSched(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return ps, fmt.Errorf("sched_getattr tid %d of pid %d: %w", tid, pid, err)
		}
		ps.Threads = append(ps.Threads, hal.ThreadState{TID: tid, CPUs: cpus, Policy: s.Policy, Priority: s.Priority, Nice: s.Nice})
	}
	if len(ps.Threads) == 0 {
		return ps, fmt.Errorf("pid %d: %w", pid, hal.ErrGone)
	}
	sort.Slice(ps.Threads, func(i, j int) bool { return ps.Threads[i].TID < ps.Threads[j].TID })
	if ps.Cgroups, err = b.procCgroups(pid); err != nil {
		return ps, err
	}
	if cg, err := b.procCgroup(pid, "cpuset"); err == nil {
		cpus, err1 := b.readCpusetList(cg, "cpuset.cpus")
		mems, err2 := b.readCpusetList(cg, "cpuset.mems")
		if err1 == nil && err2 == nil {
			ps.Cpuset = &hal.CpusetState{Cgroup: cg, CPUs: cpus, Mems: mems}
		}
	}
	if cg, err := b.procCgroup(pid, "cpu"); err == nil {
		if dir, h, err := b.cgroupDir("cpu", cg); err == nil {
			if l, err := readCPULimits(dir, h.v2); err == nil {
				l.Cgroup = cg
				ps.CPU = &l
			}
		}
	}
	if cg, err := b.procCgroup(pid, "blkio"); err == nil {
		if dir, h, err := b.cgroupDir("blkio", cg); err == nil {
			if caps, err := readBlkioCaps(dir, h.v2); err == nil {
				ps.Blkio = &hal.BlkioLimits{Cgroup: cg, Caps: caps}
			}
		}
	}
	if pn, err := PageNodes(pid, b.roots); err == nil {
		ps.PageNodes = pn
	}
	return ps, nil
}

// RevertStep reports what Revert did with one journal entry.
type RevertStep struct {
	Seq    uint64 `json:"seq"`
	Action string `json:"action"` // what the entry had done
	Undo   string `json:"undo"`   // what was (or would have been) applied to undo it
	Status string `json:"status"` // restored, skipped, failed
	Note   string `json:"note,omitempty"`
	// Inherited lists the descendant processes (forked after the change,
	// so they inherited a pin or scheduling class) that were restored too.
	Inherited []int `json:"inherited,omitempty"`
}

// Revert statuses.
const (
	Restored = "restored"
	Skipped  = "skipped"
	Failed   = "failed"
)

// Revert undoes the journal's entries newest first, pending ones included
// (their undo restores values that may never have changed, which is
// harmless). An entry whose process has exited, or whose PID now belongs to
// another process (a different start time), is skipped with a note; the
// parts of its undo that concern no process (a cgroup's cpuset) still run.
//
// A pin or scheduling change is inherited by the processes its target
// forks afterwards; after the undo of such an entry (or its skip because
// the target exited), those descendants whose threads still hold exactly
// what the change set get the undo's process-wide value too, and the step
// lists them in Inherited and its Note (see restoreInherited). /proc is
// scanned once per revert for this, when the first such entry comes up.
// A descendant that an unhandled entry targets (an older one, or a newer
// one whose undo failed) is left to that entry.
//
// Handled entries are dropped from the journal in batches (one fsync per
// revertBatch entries, so that a slow disk cannot stall a revert of many
// entries); a crash during revert resumes from the last batch, re-undoing at
// most revertBatch entries, which is harmless. An entry whose undo failed
// stays, and the errors are joined; so does one whose descendants could
// not all be restored (other than by exiting). When every entry is handled
// the journal is cleared. A cancelled ctx stops between entries; what was
// handled is dropped first.
func (b *Backend) Revert(ctx context.Context, j *journal.Journal) ([]RevertStep, error) {
	entries := j.Entries()
	var steps []RevertStep
	var errs []error
	var handled []uint64
	flush := func() {
		if err := j.DropMany(handled...); err != nil {
			errs = append(errs, err)
		}
		handled = handled[:0]
	}
	// unhandled counts, per process, the entries that target it and are
	// not yet handled: their processes are left to them.
	unhandled := map[procKey]int{}
	for _, e := range entries {
		if e.Process != nil {
			unhandled[procKey{e.Process.PID, e.Process.StartTime}]++
		}
	}
	pending := func(k procKey) bool { return unhandled[k] > 0 }
	var procs procTable // scanned on first use
	for i := len(entries) - 1; i >= 0; i-- {
		if err := ctx.Err(); err != nil {
			flush()
			return steps, errors.Join(append(errs, err)...)
		}
		e := entries[i]
		st := RevertStep{Seq: e.Seq, Action: e.Action.String(), Undo: e.Undo.String(), Status: Restored}
		undo := e.Undo
		alive, reused := e.Process != nil, false
		if e.Process != nil {
			if note, gone, re := b.identityChanged(*e.Process); gone {
				st.Status, st.Note = Skipped, note
				undo = withoutProcess(undo)
				alive, reused = false, re
			}
		}
		if undo != nil {
			note, err := b.run(ctx, undo)
			st.Note = joinNotes(st.Note, note)
			if err != nil {
				if errors.Is(err, hal.ErrGone) {
					st.Status, st.Note = Skipped, fmt.Sprintf("pid %d exited during the revert", hal.TargetPID(e.Undo))
					alive = false
				} else {
					st.Status, st.Note = Failed, err.Error()
					errs = append(errs, fmt.Errorf("revert entry %d (%s): %w", e.Seq, e.Action, err))
					steps = append(steps, st)
					continue
				}
			}
		}
		if in, ok := inheritanceOf(e); ok && e.Process != nil && e.BootTicks != 0 && !reused {
			if procs == nil {
				var err error
				if procs, err = scanProcs(b.roots); err != nil {
					procs = procTable{} // no descendants found; the error is reported
					errs = append(errs, err)
				}
			}
			r, err := b.restoreInherited(procs, e, alive, pending)
			st.Inherited = r.restored
			st.Note = joinNotes(st.Note, r.note(in.what))
			if err != nil {
				st.Status, st.Note = Failed, joinNotes(st.Note, err.Error())
				errs = append(errs, fmt.Errorf("revert entry %d (%s): %w", e.Seq, e.Action, err))
				steps = append(steps, st)
				continue
			}
		}
		if e.Process != nil {
			unhandled[procKey{e.Process.PID, e.Process.StartTime}]--
		}
		handled = append(handled, e.Seq)
		if len(handled) >= revertBatch {
			flush()
		}
		steps = append(steps, st)
	}
	flush()
	if len(errs) == 0 {
		if err := j.Clear(); err != nil {
			errs = append(errs, err)
		}
	}
	return steps, errors.Join(errs...)
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// revertBatch is how many handled entries Revert drops per journal write.
const revertBatch = 32

// identityChanged says whether the process p recorded is gone or replaced
// (reused: its PID now belongs to another process).
func (b *Backend) identityChanged(p journal.Process) (note string, changed, reused bool) {
	id, err := processIdentity(b.roots, p.PID)
	if err != nil {
		return fmt.Sprintf("pid %d (%s) has exited; nothing to restore for it", p.PID, p.Comm), true, false
	}
	if id.StartTime != p.StartTime {
		return fmt.Sprintf("pid %d now belongs to another process (%s, started later); left alone", p.PID, id.Comm), true, true
	}
	return "", false, false
}

// withoutProcess keeps the steps of an undo that concern no process; nil
// when none is left.
func withoutProcess(a hal.Action) hal.Action {
	if s, ok := a.(hal.Steps); ok {
		var keep []hal.Action
		for _, st := range s.Steps {
			if k := withoutProcess(st); k != nil {
				keep = append(keep, k)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		return hal.Steps{Steps: keep}
	}
	if hal.TargetPID(a) != 0 {
		return nil
	}
	return a
}

// NUMABalancing reads /proc/sys/kernel/numa_balancing under roots: any
// value but 0 means the kernel migrates pages toward the threads that touch
// them, and then it, not sculpt, owns page placement (Supported).
func NUMABalancing(roots host.Roots) hal.Capability {
	path := roots.ProcPath("sys/kernel/numa_balancing")
	data, err := os.ReadFile(path)
	if err != nil {
		return hal.No(fmt.Sprintf("%s unreadable (kernel without CONFIG_NUMA_BALANCING?): sculpt owns page placement", path))
	}
	v := strings.TrimSpace(string(data))
	if v == "0" {
		return hal.No(fmt.Sprintf("%s is 0: sculpt owns page placement", path))
	}
	return hal.Yes(fmt.Sprintf("%s is %s: the kernel owns page placement, sculpt places threads only", path, v))
}
