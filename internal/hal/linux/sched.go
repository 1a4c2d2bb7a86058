package linux

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
)

var policyNames = map[uint32]string{
	unix.SCHED_NORMAL:   "other",
	unix.SCHED_FIFO:     "fifo",
	unix.SCHED_RR:       "rr",
	unix.SCHED_BATCH:    "batch",
	unix.SCHED_IDLE:     "idle",
	unix.SCHED_DEADLINE: "deadline",
}

func policyNumber(name string) (uint32, bool) {
	for n, s := range policyNames {
		if s == name {
			return n, true
		}
	}
	return 0, false
}

// threadSched reads one thread's policy, real-time priority and nice
// (sched_getattr(2), Linux 3.14+).
func threadSched(tid int) (hal.ThreadSched, error) {
	attr, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		return hal.ThreadSched{}, err
	}
	name, ok := policyNames[attr.Policy]
	if !ok {
		name = fmt.Sprintf("policy-%d", attr.Policy)
	}
	return hal.ThreadSched{Policy: name, Priority: int(attr.Priority), Nice: int(attr.Nice)}, nil
}

// setThreadSched sets one thread's policy, priority and nice with one
// sched_setattr(2) call.
func setThreadSched(pid, tid int, s hal.ThreadSched) error {
	pol, ok := policyNumber(s.Policy)
	if !ok || pol == unix.SCHED_DEADLINE {
		return fmt.Errorf("sched_setattr tid %d of pid %d: cannot set policy %q", tid, pid, s.Policy)
	}
	attr := unix.SchedAttr{Policy: pol, Nice: int32(s.Nice), Priority: uint32(s.Priority)}
	if err := unix.SchedSetAttr(tid, &attr, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return err
		}
		return fmt.Errorf("sched_setattr tid %d of pid %d to policy %s priority %d nice %d: %w", tid, pid, s.Policy, s.Priority, s.Nice, err)
	}
	return nil
}

// prepareSched reads every thread's scheduling and plans the change.
func (b *Backend) prepareSched(a hal.SetSched) (plan, error) {
	tids, err := b.listTasks(a.PID)
	if err != nil {
		return plan{}, err
	}
	orig := map[int]hal.ThreadSched{}
	for _, tid := range tids {
		s, err := threadSched(tid)
		if errors.Is(err, unix.ESRCH) {
			continue
		}
		if err != nil {
			return plan{}, fmt.Errorf("sched_getattr tid %d of pid %d: %w", tid, a.PID, err)
		}
		orig[tid] = s
	}
	if len(orig) == 0 {
		return plan{}, fmt.Errorf("pid %d: %w", a.PID, hal.ErrGone)
	}
	undo := hal.SetSched{PID: a.PID, Threads: orig}
	return plan{undo: undo, do: func(context.Context) error {
		changed, err := b.schedThreads(a)
		if err == nil || len(changed) == 0 {
			return err
		}
		back := hal.SetSched{PID: a.PID, Threads: map[int]hal.ThreadSched{}}
		for _, tid := range changed {
			if s, ok := orig[tid]; ok {
				back.Threads[tid] = s
			} else {
				back.Threads[tid] = hal.ThreadSched{Policy: hal.PolicyOther}
			}
		}
		if _, rb := b.schedThreads(back); rb != nil && !errors.Is(rb, hal.ErrGone) {
			return &partialError{err: err, rollback: rb}
		}
		return err
	}}, nil
}

// schedThreads applies a to every thread: a thread named in a.Threads gets
// its own; any other gets a.Policy with a.Nice, or its current nice when
// a.Nice is nil (a thread not named and no policy: left). It returns the
// threads it changed.
func (b *Backend) schedThreads(a hal.SetSched) ([]int, error) {
	var changed []int
	err := b.forEachThread(a.PID, func(tid int) error {
		s, ok := a.Threads[tid]
		if !ok {
			if a.Policy == "" {
				return nil
			}
			s = hal.ThreadSched{Policy: a.Policy}
			if a.Nice != nil {
				s.Nice = *a.Nice
			} else {
				cur, err := threadSched(tid)
				if err != nil {
					if errors.Is(err, unix.ESRCH) {
						return err
					}
					return fmt.Errorf("sched_getattr tid %d of pid %d: %w", tid, a.PID, err)
				}
				s.Nice = cur.Nice
			}
		}
		if err := setThreadSched(a.PID, tid, s); err != nil {
			return err
		}
		changed = append(changed, tid)
		return nil
	})
	if err == nil && len(changed) == 0 {
		return nil, fmt.Errorf("pid %d: no thread left: %w", a.PID, hal.ErrGone)
	}
	return changed, err
}
