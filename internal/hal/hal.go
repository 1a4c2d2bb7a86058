// Package hal is sculpt's hardware abstraction: what this machine can change
// (Capabilities), the current arrangement of given workloads (Snapshot), and
// small typed actions that change it (Apply), each returning the action that
// undoes it.
//
// The interface lives here; the Linux backend, the only code that writes to
// the machine, lives in internal/hal/linux, and the crash-safe journal that
// records every applied action with its undo lives in internal/hal/journal.
// This package knows nothing of workload DNA, rules or the engine.
package hal

import (
	"context"
	"errors"
	"fmt"
)

// HAL is one machine (real or simulated) as the engine sees it.
type HAL interface {
	// Capabilities says, per action family, whether this machine can do it
	// and why not where it cannot. Plan only what it allows.
	Capabilities() Capabilities
	// Snapshot reads the current arrangement of the given processes. A pid
	// that is gone is left out, not an error.
	Snapshot(ctx context.Context, pids []int) (*Arrangement, error)
	// Apply validates a, reads the value it is about to change, makes the
	// change and returns the action that restores the value read. On an
	// error nothing stays changed: what was changed half way is restored.
	Apply(ctx context.Context, a Action) (undo Action, err error)
}

// ErrNotSupported matches every *NotSupportedError with errors.Is.
var ErrNotSupported = errors.New("not supported")

// NotSupportedError says an action family cannot be used on this machine,
// and why.
type NotSupportedError struct {
	What   string // e.g. "cpuset", "SR-IOV", "memory migration"
	Reason string
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("%s not supported: %s", e.What, e.Reason)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }

// ErrGone is returned (wrapped) when the target process exited before or
// while an action was applied to it.
var ErrGone = errors.New("process is gone")

// Arrangement is the current state of some workloads' processes.
type Arrangement struct {
	Processes []ProcessState `json:"processes"`
}

// Process returns the state of pid, or nil when it is not in a.
func (a *Arrangement) Process(pid int) *ProcessState {
	for i := range a.Processes {
		if a.Processes[i].PID == pid {
			return &a.Processes[i]
		}
	}
	return nil
}

// ProcessState is how one process is arranged now.
type ProcessState struct {
	PID       int               `json:"pid"`
	Comm      string            `json:"comm"`
	StartTime uint64            `json:"start_time"` // clock ticks after boot, /proc/PID/stat field 22
	Threads   []ThreadState     `json:"threads"`
	Cgroups   map[string]string `json:"cgroups"` // controller ("" for the v2 unified hierarchy) -> path
	Cpuset    *CpusetState      `json:"cpuset,omitempty"`
	CPU       *CPULimits        `json:"cpu,omitempty"`
	Blkio     *BlkioLimits      `json:"blkio,omitempty"`
	// PageNodes counts resident pages per NUMA node; nil when no memory
	// reader is available.
	PageNodes map[int]int `json:"page_nodes,omitempty"`
}

// ThreadState is one thread's CPU affinity and scheduling.
type ThreadState struct {
	TID      int    `json:"tid"`
	CPUs     []int  `json:"cpus"`
	Policy   string `json:"policy"`   // other, batch, idle, fifo, rr, deadline
	Priority int    `json:"priority"` // real-time priority (0 for other/batch/idle)
	Nice     int    `json:"nice"`
}

// CpusetState is the cpuset cgroup a process is in.
type CpusetState struct {
	Cgroup string `json:"cgroup"`
	CPUs   []int  `json:"cpus"`
	Mems   []int  `json:"mems"`
}

// BlkioLimits are the block I/O caps of the cgroup a process is in, per
// device (MAJOR:MINOR); a device without a cap is absent.
type BlkioLimits struct {
	Cgroup string               `json:"cgroup"`
	Caps   map[string]BlkioRate `json:"caps,omitempty"`
}

// BlkioRate is one device's cap in bytes per second (0: none).
type BlkioRate struct {
	ReadBPS  uint64 `json:"read_bps"`
	WriteBPS uint64 `json:"write_bps"`
}

// CPULimits are the CPU controller settings of the cgroup a process is in.
// Shares is cgroup v1 cpu.shares, Weight cgroup v2 cpu.weight; only the one
// of the hierarchy in use is set. QuotaUS is -1 for no limit.
type CPULimits struct {
	Cgroup   string `json:"cgroup"`
	Shares   uint64 `json:"shares,omitempty"`
	Weight   uint64 `json:"weight,omitempty"`
	QuotaUS  int64  `json:"quota_us"`
	PeriodUS uint64 `json:"period_us"`
	// Idle is cpu.idle (false where the kernel has none).
	Idle bool `json:"idle,omitempty"`
}
