package linux

// Linux copies a thread's CPU affinity, scheduling policy and nice to every
// thread and process it creates. A pin or scheduling change on pid P is
// therefore inherited by the processes P forks after the change (and by
// theirs), which P's own undo does not reach. This file finds those
// descendants at revert time and puts them back.

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/host"
)

// userHZ is the unit of /proc/PID/stat starttime (USER_HZ, 100 on every
// Linux architecture sculpt runs on; prometheus/procfs assumes it too).
const userHZ = 100

// bootTicks is CLOCK_BOOTTIME in USER_HZ ticks: the clock, and the
// rounding down, that the kernel uses for /proc/PID/stat starttime, so a
// process forked after this call has a start time >= its result.
func bootTicks() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0 // no descendant tracking for this entry; never seen in practice
	}
	return uint64(ts.Nano()) / (1e9 / userHZ)
}

// procInfo is what the HAL reads of a process from /proc/PID/stat: its
// identity (comm, start time) and what the descendant walk needs.
type procInfo struct {
	Comm                string
	State               byte // field 3: R, S, D, Z (zombie), X (dead), ...
	PPid, Pgrp, Session int
	Start               uint64 // field 22, USER_HZ ticks after boot
}

// procTable maps every live PID to its procInfo.
type procTable map[int]procInfo

// parseProcInfo reads comm (field 2), state (3), ppid (4), pgrp (5),
// session (6) and starttime (22) from a /proc/PID/stat. The comm may itself
// hold spaces and parentheses, so it runs to the last ')'.
func parseProcInfo(data []byte) (procInfo, error) {
	s := string(data)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return procInfo{}, errors.New("no (comm) field")
	}
	f := strings.Fields(s[close+1:])
	// f[0] is field 3 (state); start time is field 22.
	if len(f) < 20 {
		return procInfo{}, fmt.Errorf("%d fields after comm, want at least 20", len(f))
	}
	p := procInfo{Comm: s[open+1 : close], State: f[0][0]}
	var err error
	for i, dst := range []*int{&p.PPid, &p.Pgrp, &p.Session} {
		if *dst, err = strconv.Atoi(f[1+i]); err != nil {
			return procInfo{}, fmt.Errorf("field %d %q: %w", 4+i, f[1+i], err)
		}
	}
	if p.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procInfo{}, fmt.Errorf("start time %q: %w", f[19], err)
	}
	return p, nil
}

// scanProcs reads /proc/PID/stat of every process under roots.Proc once. A
// process that exits during the scan is left out; only a /proc that cannot
// be listed is an error.
func scanProcs(roots host.Roots) (procTable, error) {
	dir := roots.ProcPath()
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", dir, err)
	}
	t := make(procTable, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(roots.ProcPath(e.Name(), "stat"))
		if err != nil {
			continue // gone (ENOENT/ESRCH); a stat we cannot read is no inheritor we can fix
		}
		p, err := parseProcInfo(data)
		if err != nil {
			continue
		}
		t[pid] = p
	}
	return t, nil
}

// procKey is a process identity that survives PID reuse.
type procKey struct {
	pid   int
	start uint64
}

// inheritors returns, sorted, the live processes that may have inherited a
// change made to root at boot tick since: those whose parent chain reaches
// root through processes that all started at or after since (a process
// forked before the change inherited nothing from it, nor did its
// children). When root has exited (rootAlive false) its children were
// reparented, so a process in root's process group or session (IDs the
// kernel keeps reserved while a member lives, so they cannot name a newer
// process) whose parent is outside both (init, or a subreaper elsewhere)
// also counts, with its descendants; one whose parent is inside too is
// judged by its parent chain. Children reparented to a subreaper inside
// root's session are missed. A zombie has nothing left to
// restore and is left out; so is a process for which skip is true (its
// descendants are still considered).
func inheritors(t procTable, root int, rootAlive bool, since uint64, skip func(procKey) bool) []int {
	const (
		unknown = iota
		walking // a cycle in a torn read: no
		yes
		no
	)
	inRoots := func(p procInfo) bool { return p.Pgrp == root || p.Session == root }
	memo := map[int]uint8{}
	var reaches func(pid int) bool
	reaches = func(pid int) bool {
		switch memo[pid] {
		case yes:
			return true
		case no, walking:
			return false
		}
		p, ok := t[pid]
		if !ok || pid <= 1 || pid == root || p.Start < since || p.State == 'Z' || p.State == 'X' {
			memo[pid] = no
			return false
		}
		memo[pid] = walking
		r := p.PPid == root || reaches(p.PPid)
		if !r && !rootAlive && inRoots(p) {
			// In root's group or session: a descendant of root, unless
			// its parent is in there too, whose chain then decides.
			parent, ok := t[p.PPid]
			r = !ok || !inRoots(parent)
		}
		memo[pid] = no
		if r {
			memo[pid] = yes
		}
		return r
	}
	var out []int
	for pid, p := range t {
		if skip != nil && skip(procKey{pid, p.Start}) {
			continue
		}
		if reaches(pid) {
			out = append(out, pid)
		}
	}
	slices.Sort(out)
	return out
}

// inheritance is what a journaled pin or scheduling change set process-wide
// and what the undo restores in its place (the target's main thread's
// original value).
type inheritance struct {
	what string // "pin", "scheduling"
	// pin
	cpus, origCPUs []int
	// scheduling
	sched     hal.ThreadSched
	withNice  bool // the action set nice; otherwise only the policy is compared and restored
	origSched hal.ThreadSched
}

// inheritanceOf says what e's action made descendants inherit; false for
// an action whose effect is not inherited by fork (or not uniform).
func inheritanceOf(e journal.Entry) (inheritance, bool) {
	switch a := e.Action.(type) {
	case hal.PinThreads:
		if len(a.Threads) > 0 || len(a.CPUs) == 0 {
			return inheritance{}, false
		}
		u, ok := findUndo[hal.PinThreads](e.Undo, a.PID)
		if !ok || len(u.CPUs) == 0 {
			return inheritance{}, false
		}
		return inheritance{what: "pin", cpus: a.CPUs, origCPUs: u.CPUs}, true
	case hal.SetSched:
		if len(a.Threads) > 0 || a.Policy == "" {
			return inheritance{}, false
		}
		u, ok := findUndo[hal.SetSched](e.Undo, a.PID)
		if !ok || len(u.Threads) == 0 {
			return inheritance{}, false
		}
		orig, ok := u.Threads[a.PID]
		if !ok { // the main thread had exited: the lowest TID stands in
			tids := make([]int, 0, len(u.Threads))
			for tid := range u.Threads {
				tids = append(tids, tid)
			}
			orig = u.Threads[slices.Min(tids)]
		}
		in := inheritance{what: "scheduling", sched: hal.ThreadSched{Policy: a.Policy}, origSched: orig}
		if a.Nice != nil {
			in.withNice, in.sched.Nice = true, *a.Nice
		}
		return in, true
	}
	return inheritance{}, false
}

// findUndo finds the step of type T for pid in an undo (itself or inside
// Steps).
func findUndo[T hal.Action](a hal.Action, pid int) (T, bool) {
	if s, ok := a.(hal.Steps); ok {
		for _, st := range s.Steps {
			if u, ok := findUndo[T](st, pid); ok {
				return u, true
			}
		}
	}
	u, ok := a.(T)
	if ok && hal.TargetPID(u) == pid {
		return u, true
	}
	var zero T
	return zero, false
}

// restoreThreads puts back every thread of pid (except those in skip) that
// still holds exactly what the change set; a thread holding anything else
// was changed by someone since and is left. It reports how many threads it
// restored and how many it left. A process or thread that exits meanwhile
// is skipped silently.
func (b *Backend) restoreThreads(pid int, in inheritance, skip map[int]bool) (restored, left int, err error) {
	tids, err := b.listTasks(pid)
	if err != nil {
		if errors.Is(err, hal.ErrGone) {
			return 0, 0, nil
		}
		return 0, 0, err
	}
	for _, tid := range tids {
		if skip[tid] {
			continue
		}
		var ok bool
		var err error
		switch in.what {
		case "pin":
			ok, err = restoreThreadPin(pid, tid, in)
		default:
			ok, err = restoreThreadSched(pid, tid, in)
		}
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return restored, left, err
		}
		if ok {
			restored++
		} else {
			left++
		}
	}
	return restored, left, nil
}

func restoreThreadPin(pid, tid int, in inheritance) (bool, error) {
	cur, err := threadAffinity(tid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, err
		}
		return false, fmt.Errorf("sched_getaffinity tid %d of pid %d: %w", tid, pid, err)
	}
	if !slices.Equal(cur, in.cpus) {
		return false, nil
	}
	if err := unix.SchedSetaffinity(tid, cpuSet(in.origCPUs)); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, err
		}
		return false, fmt.Errorf("sched_setaffinity tid %d of pid %d to CPUs %s: %w", tid, pid, hal.FormatList(in.origCPUs), err)
	}
	return true, nil
}

func restoreThreadSched(pid, tid int, in inheritance) (bool, error) {
	cur, err := threadSched(tid)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return false, err
		}
		return false, fmt.Errorf("sched_getattr tid %d of pid %d: %w", tid, pid, err)
	}
	if cur.Policy != in.sched.Policy || (in.withNice && cur.Nice != in.sched.Nice) {
		return false, nil
	}
	want := in.origSched
	if !in.withNice {
		want.Nice = cur.Nice // the change kept nice: so does its undo
	}
	return true, setThreadSched(pid, tid, want)
}

// inheritedResult is what restoreInherited did for one journal entry.
type inheritedResult struct {
	restored []int // descendants put back
	left     []int // descendants whose value someone else changed since
}

// note renders r for a RevertStep ("" when there is nothing to say).
func (r inheritedResult) note(what string) string {
	var parts []string
	if n := len(r.restored); n > 0 {
		parts = append(parts, fmt.Sprintf("also restored %s (%s) that inherited the %s", processCount(n), pidList(r.restored), what))
	}
	if n := len(r.left); n > 0 {
		parts = append(parts, fmt.Sprintf("left %s (%s) that inherited the %s alone: changed by someone else since", processCount(n), pidList(r.left), what))
	}
	return strings.Join(parts, "; ")
}

func processCount(n int) string {
	if n == 1 {
		return "1 descendant process"
	}
	return strconv.Itoa(n) + " descendant processes"
}

func pidList(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = strconv.Itoa(p)
	}
	return "pid " + strings.Join(s, ", ")
}

// restoreInherited restores what e's change left in processes created
// after it: descendants of e's process started at or after e.BootTicks
// (see inheritors) whose threads still hold exactly the value the change
// set get the undo's process-wide value. When the target itself is alive,
// its threads that the undo does not name (started after the change) are
// treated the same way for a scheduling change (a pin's undo already
// covers them). A process for which pending is true is left to its own
// journal entry. An entry from before BootTicks existed, or whose PID now
// belongs to another process, restores no descendants.
func (b *Backend) restoreInherited(t procTable, e journal.Entry, rootAlive bool, pending func(procKey) bool) (inheritedResult, error) {
	var r inheritedResult
	in, ok := inheritanceOf(e)
	if !ok || e.Process == nil || e.BootTicks == 0 {
		return r, nil
	}
	root := e.Process.PID
	if rootAlive && in.what == "scheduling" {
		u, _ := findUndo[hal.SetSched](e.Undo, root)
		known := make(map[int]bool, len(u.Threads))
		for tid := range u.Threads {
			known[tid] = true
		}
		if _, _, err := b.restoreThreads(root, in, known); err != nil {
			return r, err
		}
	}
	var errs []error
	for _, pid := range inheritors(t, root, rootAlive, e.BootTicks, pending) {
		n, left, err := b.restoreThreads(pid, in, nil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("restore the %s inherited by pid %d: %w", in.what, pid, err))
		case n > 0:
			r.restored = append(r.restored, pid)
		case left > 0:
			r.left = append(r.left, pid)
		}
	}
	return r, errors.Join(errs...)
}
