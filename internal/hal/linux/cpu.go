package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
)

var errESRCH = unix.ESRCH

// listTasks returns the thread IDs of pid from /proc/PID/task; a process
// that is gone gives an error matching hal.ErrGone.
func (b *Backend) listTasks(pid int) ([]int, error) {
	dir := b.roots.ProcPath(strconv.Itoa(pid), "task")
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return nil, fmt.Errorf("pid %d: %w", pid, hal.ErrGone)
		}
		return nil, fmt.Errorf("list threads in %s: %w", dir, err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

func cpuSet(cpus []int) *unix.CPUSet {
	var s unix.CPUSet
	for _, c := range cpus {
		s.Set(c)
	}
	return &s
}

func setCPUs(s *unix.CPUSet) []int {
	var out []int
	for c := 0; c < len(s)*64; c++ {
		if s.IsSet(c) {
			out = append(out, c)
		}
	}
	return out
}

// threadAffinity reads one thread's allowed CPUs (sched_getaffinity).
func threadAffinity(tid int) ([]int, error) {
	var s unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &s); err != nil {
		return nil, err
	}
	return setCPUs(&s), nil
}

// maxTaskRounds bounds how often the thread list is re-read while threads
// keep appearing during a pin.
const maxTaskRounds = 5

// forEachThread calls f for every thread of pid, re-reading /proc/PID/task
// until a round finds no new thread (at most maxTaskRounds), so threads
// created during the loop are covered. f returning ESRCH (the thread
// exited) is skipped. A process gone before the first round is hal.ErrGone.
func (b *Backend) forEachThread(pid int, f func(tid int) error) error {
	seen := map[int]bool{}
	for round := 0; round < maxTaskRounds; round++ {
		tids, err := b.listTasks(pid)
		if err != nil {
			return err
		}
		fresh := 0
		for _, tid := range tids {
			if seen[tid] {
				continue
			}
			seen[tid] = true
			fresh++
			if err := f(tid); err != nil && !errors.Is(err, unix.ESRCH) {
				return err
			}
		}
		if fresh == 0 {
			return nil
		}
	}
	return nil
}

// preparePin reads every thread's affinity (and the process's cpuset cgroup
// when the pin will set it) and plans the pin. See hal.PinThreads for the
// cgroup rule.
//
// A thread whose mask equals its cpuset's effective CPUs was never
// restricted by anyone: its undo mask is every online CPU, which the kernel
// intersects with the cpuset, so the thread keeps following its cpuset
// after a revert (since Linux 6.2 the kernel remembers a mask set by
// sched_setaffinity across cpuset changes).
func (b *Backend) preparePin(a hal.PinThreads) (plan, error) {
	orig := map[int][]int{}
	tids, err := b.listTasks(a.PID)
	if err != nil {
		return plan{}, err
	}
	unrestricted := b.cpusetEffective(a.PID)
	all := keys(b.online)
	slices.Sort(all)
	for _, tid := range tids {
		cpus, err := threadAffinity(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return plan{}, fmt.Errorf("sched_getaffinity tid %d of pid %d: %w", tid, a.PID, err)
		}
		if unrestricted != nil && slices.Equal(cpus, unrestricted) {
			cpus = all
		}
		orig[tid] = cpus
	}
	if len(orig) == 0 {
		return plan{}, fmt.Errorf("pid %d: %w", a.PID, hal.ErrGone)
	}
	main := orig[a.PID]
	if main == nil {
		for _, c := range orig {
			main = c
			break
		}
	}
	threadUndo := hal.PinThreads{PID: a.PID, CPUs: main, Threads: orig}

	// The cpuset cgroup rule: a uniform pin also narrows the process's own
	// non-root cpuset cgroup when no other process is in it.
	var cg string
	var cgOld []int
	if len(a.Threads) == 0 {
		if c, ok := b.soleCpuset(a.PID); ok {
			old, err := b.readCpusetList(c, "cpuset.cpus")
			if err != nil {
				return plan{}, err
			}
			if !slices.Equal(old, a.CPUs) {
				cg, cgOld = c, old
			}
		}
	}
	var undo hal.Action = threadUndo
	if cg != "" {
		undo = hal.Steps{Steps: []hal.Action{hal.SetCpuset{Cgroup: cg, CPUs: cgOld}, threadUndo}}
	}
	return plan{undo: undo, do: func(context.Context) error {
		if cg != "" {
			if err := b.writeCpuset(cg, "cpuset.cpus", hal.FormatList(a.CPUs)); err != nil {
				return err
			}
		}
		changed, err := b.pinThreads(a)
		if err == nil {
			return nil
		}
		// Roll back: the cgroup first (on v1 it resets every thread's
		// mask), then the threads that were changed.
		var rb []error
		if cg != "" {
			if e := b.writeCpuset(cg, "cpuset.cpus", hal.FormatList(cgOld)); e != nil {
				rb = append(rb, e)
			}
		}
		if len(changed) > 0 {
			back := hal.PinThreads{PID: a.PID, Threads: map[int][]int{}}
			for _, tid := range changed {
				if m, ok := orig[tid]; ok {
					back.Threads[tid] = m
				} else {
					back.Threads[tid] = main
				}
			}
			if _, e := b.pinThreads(back); e != nil && !errors.Is(e, hal.ErrGone) {
				rb = append(rb, e)
			}
		}
		if len(rb) > 0 {
			return &partialError{err: err, rollback: errors.Join(rb...)}
		}
		return err
	}}, nil
}

// cpusetEffective reads the effective CPUs of pid's cpuset cgroup
// (cpuset.effective_cpus on v1, cpuset.cpus.effective on v2); nil when
// there is no cpuset hierarchy or it cannot be read.
func (b *Backend) cpusetEffective(pid int) []int {
	cg, err := b.procCgroup(pid, "cpuset")
	if err != nil {
		return nil
	}
	file := "cpuset.effective_cpus"
	if b.hier["cpuset"].v2 {
		file = "cpuset.cpus.effective"
	}
	l, err := b.readCpusetList(cg, file)
	if err != nil || len(l) == 0 {
		return nil
	}
	return l
}

// pinThreads sets every thread's affinity: its own from a.Threads when
// named there, a.CPUs otherwise (a thread not named and no CPUs: left).
// It returns the threads it changed.
func (b *Backend) pinThreads(a hal.PinThreads) ([]int, error) {
	uniform := cpuSet(a.CPUs)
	var changed []int
	err := b.forEachThread(a.PID, func(tid int) error {
		set := uniform
		if cpus, ok := a.Threads[tid]; ok {
			set = cpuSet(cpus)
		} else if len(a.CPUs) == 0 {
			return nil
		}
		if err := unix.SchedSetaffinity(tid, set); err != nil {
			if errors.Is(err, unix.ESRCH) {
				return err
			}
			return fmt.Errorf("sched_setaffinity tid %d of pid %d to CPUs %s: %w", tid, a.PID, hal.FormatList(setCPUs(set)), err)
		}
		changed = append(changed, tid)
		return nil
	})
	if err == nil && len(changed) == 0 {
		return nil, fmt.Errorf("pid %d: no thread left to pin: %w", a.PID, hal.ErrGone)
	}
	return changed, err
}
