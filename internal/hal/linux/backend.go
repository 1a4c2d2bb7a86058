// Package linux is sculpt's real HAL backend and the only package that
// changes the machine: it makes the syscalls (sched_setaffinity,
// sched_setattr, migrate_pages, move_pages), writes sysfs, procfs and
// cgroupfs, and talks netlink. Every change goes through Backend.Apply,
// which journals the action and its undo before making it.
package linux

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

var _ hal.HAL = (*Backend)(nil)

// Options configure a Backend.
type Options struct {
	// Journal, when set, receives every action with its undo before the
	// change is made. Without it Apply changes the machine unrecorded (for
	// tests and for applying undos).
	Journal *journal.Journal
	// Pause, when set, is called at "recorded" (journaled, not yet changed)
	// and "changed" (changed, not yet marked applied): a fault-injection
	// hook for crash tests, nil otherwise.
	Pause func(stage string)
}

// Backend is the Linux implementation of hal.HAL.
type Backend struct {
	roots   host.Roots
	journal *journal.Journal
	caps    hal.Capabilities
	hier    map[string]hierarchy // controller -> where it is mounted
	online  map[int]bool         // online CPUs
	nodes   []int                // NUMA nodes with memory

	pause func(stage string)
}

// New probes the machine under roots (cgroup layout, online CPUs, NUMA
// nodes, device features) and returns a backend for it. It fails only when
// the basic files (/sys/devices/system/cpu/online) cannot be read.
func New(roots host.Roots, opts Options) (*Backend, error) {
	b := &Backend{roots: roots, journal: opts.Journal, pause: opts.Pause}
	p := roots.SysPath("devices/system/cpu/online")
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read online CPUs: %w", err)
	}
	cpus, err := parseList(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", p, err)
	}
	b.online = make(map[int]bool, len(cpus))
	for _, c := range cpus {
		b.online[c] = true
	}
	b.nodes = readNodes(roots)
	b.hier = probeHierarchies(roots)
	b.caps = b.probeCapabilities()
	return b, nil
}

// Roots are the roots the backend reads the machine through.
func (b *Backend) Roots() host.Roots { return b.roots }

// Capabilities implements hal.HAL.
func (b *Backend) Capabilities() hal.Capabilities { return b.caps }

// SetJournal makes later Apply calls journal into j (nil: no journal).
func (b *Backend) SetJournal(j *journal.Journal) { b.journal = j }

// readNodes lists the NUMA nodes with memory from
// /sys/devices/system/node/has_memory (node 0 alone when it is missing).
func readNodes(roots host.Roots) []int {
	data, err := os.ReadFile(roots.SysPath("devices/system/node/has_memory"))
	if err != nil {
		return []int{0}
	}
	n, err := parseList(strings.TrimSpace(string(data)))
	if err != nil || len(n) == 0 {
		return []int{0}
	}
	return n
}

// plan is a prepared action: the undo read from the machine, and the change.
// do restores whatever it changed before returning an error; when even that
// fails it returns a *partialError.
type plan struct {
	undo hal.Action
	do   func(ctx context.Context) error
	// note, when set, says after do what the change left undone without
	// failing (pages a memory move could not take); "" for nothing.
	note func() string
}

// partialError says a change failed half way and could not be rolled back:
// the journal keeps its pending entry so that revert finishes the job.
type partialError struct {
	err, rollback error
}

func (e *partialError) Error() string {
	return fmt.Sprintf("%v (and restoring what was changed failed: %v; `sculpt revert` retries)", e.err, e.rollback)
}
func (e *partialError) Unwrap() error { return e.err }

// Apply implements hal.HAL: validate, check against this machine, read the
// current value (the undo), journal action and undo as pending, change,
// mark applied. When the change fails and was rolled back, the journal
// entry is dropped; when the rollback failed too, it stays pending.
func (b *Backend) Apply(ctx context.Context, a hal.Action) (hal.Action, error) {
	if a == nil {
		return nil, errors.New("apply: no action")
	}
	if err := b.Check(a); err != nil {
		return nil, err
	}
	p, err := b.prepare(ctx, a)
	if err != nil {
		return nil, err
	}
	var seq uint64
	if b.journal != nil {
		var proc *journal.Process
		if pid := hal.TargetPID(a); pid > 0 {
			id, err := processIdentity(b.roots, pid)
			if err != nil {
				return nil, err
			}
			proc = &id
		}
		if seq, err = b.journal.Record(journal.Entry{Action: a, Undo: p.undo, Process: proc, BootTicks: bootTicks()}); err != nil {
			return nil, fmt.Errorf("journal %s before applying: %w", a, err)
		}
	}
	if b.pause != nil {
		b.pause("recorded")
	}
	if err := p.do(ctx); err != nil {
		if b.journal != nil {
			var pe *partialError
			if !errors.As(err, &pe) {
				if derr := b.journal.Drop(seq); derr != nil {
					return nil, errors.Join(err, derr)
				}
			}
		}
		return nil, err
	}
	if b.pause != nil {
		b.pause("changed")
	}
	if b.journal != nil {
		if err := b.journal.MarkApplied(seq); err != nil {
			return p.undo, fmt.Errorf("applied %s but could not mark it in the journal: %w", a, err)
		}
	}
	return p.undo, nil
}

// Check validates a and checks it against this machine: CPUs online, nodes
// with memory, the target process alive, the family supported. Errors are
// *hal.InvalidError (bad input), hal.ErrGone or *hal.NotSupportedError.
func (b *Backend) Check(a hal.Action) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if cp := b.caps.For(a); !cp.Supported {
		return &hal.NotSupportedError{What: a.Kind(), Reason: cp.Reason}
	}
	switch a := a.(type) {
	case hal.PinThreads:
		if len(a.Threads) == 0 {
			if err := b.checkOnline(a.Kind(), "cpus", a.CPUs); err != nil {
				return err
			}
		}
	case hal.IRQAffinity:
		return b.checkOnline(a.Kind(), "cpus", a.CPUs)
	case hal.SetCpuset:
		if err := b.checkCgroupExists(a.Kind(), "cpuset", a.Cgroup); err != nil {
			return err
		}
		if a.CPUs != nil {
			if err := b.checkOnline(a.Kind(), "cpus", a.CPUs); err != nil {
				return err
			}
		}
		if a.Mems != nil {
			return b.checkNodes(a.Kind(), "mems", a.Mems)
		}
	case hal.MemBind:
		if err := b.checkCgroupExists(a.Kind(), "cpuset", a.Cgroup); err != nil {
			return err
		}
		return b.checkNodes(a.Kind(), "nodes", a.Nodes)
	case hal.SetCgroupCPU:
		return b.checkCgroupExists(a.Kind(), "cpu", a.Cgroup)
	case hal.BlkioWeight:
		return b.checkCgroupExists(a.Kind(), "blkio", a.Cgroup)
	case hal.BlkioLimit:
		if err := b.checkCgroupExists(a.Kind(), "blkio", a.Cgroup); err != nil {
			return err
		}
		return b.checkBlockDevice(a.Kind(), a.Device)
	case hal.MoveToCgroup:
		ctrls, err := b.controllers(a.Controllers)
		if err != nil {
			return err
		}
		for _, c := range ctrls {
			if err := b.checkCgroupExists(a.Kind(), c, a.Cgroup); err != nil {
				return err
			}
		}
	case hal.MemMigrate:
		if err := b.checkNodes(a.Kind(), "to", a.ToNodes); err != nil {
			return err
		}
	case hal.CreateVNIC:
		if ok, err := VNICExists(a.Spec.Netns, a.Spec.Name); err == nil && ok {
			return &hal.InvalidError{Kind: a.Kind(), Field: "name", Value: a.Spec.Name, Reason: "an interface of that name already exists in " + netnsLabel(a.Spec.Netns)}
		}
	case hal.DeleteVNIC:
		if ok, err := VNICExists(a.Netns, a.Name); err == nil && !ok {
			return &hal.InvalidError{Kind: a.Kind(), Field: "name", Value: a.Name, Reason: "no such interface in " + netnsLabel(a.Netns)}
		}
	case hal.Steps:
		for _, s := range a.Steps {
			if err := b.Check(s); err != nil {
				return err
			}
		}
		return nil
	}
	if pid := hal.TargetPID(a); pid > 0 {
		if _, err := os.Stat(b.roots.ProcPath(strconv.Itoa(pid))); errors.Is(err, fs.ErrNotExist) {
			return &hal.InvalidError{Kind: a.Kind(), Field: "pid", Value: strconv.Itoa(pid), Reason: "no such process", Err: hal.ErrGone}
		} else if err != nil {
			return fmt.Errorf("%s: pid %d: %w", a.Kind(), pid, err)
		}
	}
	return nil
}

// checkCgroupExists says whether cgroup cg exists in ctrl's hierarchy.
func (b *Backend) checkCgroupExists(kind, ctrl, cg string) error {
	dir, _, err := b.cgroupDir(ctrl, cg)
	if err != nil {
		return err
	}
	if !fileExists(dir) {
		return &hal.InvalidError{Kind: kind, Field: "cgroup", Value: cg, Reason: "no such cgroup (" + dir + " does not exist)"}
	}
	return nil
}

func (b *Backend) checkOnline(kind, field string, cpus []int) error {
	for _, c := range cpus {
		if !b.online[c] {
			return &hal.InvalidError{Kind: kind, Field: field, Value: hal.FormatList(cpus),
				Reason: fmt.Sprintf("CPU %d is not online (online: %s)", c, hal.FormatList(keys(b.online)))}
		}
	}
	return nil
}

func (b *Backend) checkNodes(kind, field string, nodes []int) error {
	for _, n := range nodes {
		found := false
		for _, m := range b.nodes {
			found = found || m == n
		}
		if !found {
			return &hal.InvalidError{Kind: kind, Field: field, Value: hal.FormatList(nodes),
				Reason: fmt.Sprintf("node %d has no memory here (nodes with memory: %s)", n, hal.FormatList(b.nodes))}
		}
	}
	return nil
}

func netnsLabel(ns string) string {
	if ns == "" {
		return "the current namespace"
	}
	return "namespace " + ns
}

func keys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// prepare reads what a will change and returns the plan.
func (b *Backend) prepare(ctx context.Context, a hal.Action) (plan, error) {
	switch a := a.(type) {
	case hal.PinThreads:
		return b.preparePin(a)
	case hal.SetSched:
		return b.prepareSched(a)
	case hal.SetCpuset:
		return b.prepareCpuset(a)
	case hal.SetCgroupCPU:
		return b.prepareCgroupCPU(a)
	case hal.MoveToCgroup:
		return b.prepareMove(a)
	case hal.CreateCgroup:
		return b.prepareCreate(a)
	case hal.RemoveCgroup:
		return b.prepareRemove(a)
	case hal.MemBind:
		return b.prepareMemBind(a)
	case hal.BlkioWeight:
		return b.prepareBlkio(a)
	case hal.BlkioLimit:
		return b.prepareBlkioLimit(a)
	case hal.Steps:
		return b.prepareSteps(ctx, a)
	default:
		return b.prepareFamily(a)
	}
}

// prepareSteps reads every step's current value up front; do applies them
// in order and, when one fails, undoes the ones already made.
func (b *Backend) prepareSteps(ctx context.Context, s hal.Steps) (plan, error) {
	plans := make([]plan, len(s.Steps))
	undo := hal.Steps{Steps: make([]hal.Action, len(s.Steps))}
	for i, st := range s.Steps {
		p, err := b.prepare(ctx, st)
		if err != nil {
			return plan{}, err
		}
		plans[i] = p
		undo.Steps[len(s.Steps)-1-i] = p.undo
	}
	return plan{undo: undo, do: func(ctx context.Context) error {
		for i, p := range plans {
			if err := p.do(ctx); err != nil {
				var rb []error
				for j := i - 1; j >= 0; j-- {
					if rp, perr := b.prepare(ctx, plans[j].undo); perr != nil {
						rb = append(rb, perr)
					} else if derr := rp.do(ctx); derr != nil {
						rb = append(rb, derr)
					}
				}
				if len(rb) > 0 {
					return &partialError{err: err, rollback: errors.Join(rb...)}
				}
				return err
			}
		}
		return nil
	}}, nil
}

// run applies a without journaling it (reverts, rollbacks).
func (b *Backend) run(ctx context.Context, a hal.Action) (note string, err error) {
	if err := a.Validate(); err != nil {
		return "", err
	}
	p, err := b.prepare(ctx, a)
	if err != nil {
		return "", err
	}
	err = p.do(ctx)
	if p.note != nil {
		note = p.note()
	}
	return note, err
}

// processIdentity reads pid's comm and start time from /proc/PID/stat; a
// process that is gone gives an error matching hal.ErrGone.
func processIdentity(roots host.Roots, pid int) (journal.Process, error) {
	path := roots.ProcPath(strconv.Itoa(pid), "stat")
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errESRCH) {
			return journal.Process{}, fmt.Errorf("pid %d: %w", pid, hal.ErrGone)
		}
		return journal.Process{}, fmt.Errorf("read %s: %w", path, err)
	}
	comm, start, err := parseStat(data)
	if err != nil {
		return journal.Process{}, fmt.Errorf("parse %s: %w", path, err)
	}
	return journal.Process{PID: pid, StartTime: start, Comm: comm}, nil
}

// parseStat returns the comm and start time (field 22) of a /proc/PID/stat
// (parseProcInfo's).
func parseStat(data []byte) (string, uint64, error) {
	p, err := parseProcInfo(data)
	return p.Comm, p.Start, err
}

// parseList parses a kernel list ("0-3,8"): topology's parser, shared
// with sysfs discovery and the CLI.
func parseList(s string) ([]int, error) { return topology.ParseCPUList(s) }
