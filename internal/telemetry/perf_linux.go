package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// PerfOptions configure the perf collector.
type PerfOptions struct {
	Roots host.Roots // Roots.Proc lists each process's threads (its PIDs must be the caller's PID namespace's)
	// MaxFDs caps the perf file descriptors held open (default 4096). A
	// process whose threads would exceed it is not opened: its perf metrics
	// stay absent, and Stats says how many were skipped.
	MaxFDs int
	// Software counts the software events too (task clock, context
	// switches, CPU migrations, page faults). Off by default: procfs gives
	// the same figures at no cost to the watched threads, while a perf
	// event on a thread adds work to each of its context switches (in the
	// co-location benchmark, together with the eBPF hooks, about a tenth of
	// a busy service's p99).
	Software bool
}

// PerfStats says what the perf collector holds after its last sweep.
type PerfStats struct {
	OpenFDs          int      `json:"open_fds"`
	Processes        int      `json:"processes"`         // processes with counters open
	Threads          int      `json:"threads"`           // threads with counters open
	SkippedProcesses int      `json:"skipped_processes"` // processes left without counters by MaxFDs in the last sweep
	SkippedThreads   int      `json:"skipped_threads"`   // new threads of counted processes left out by MaxFDs
	Idle             int      `json:"idle"`              // processes not read in the last sweep because they did not run
	Events           []string `json:"events"`            // the events counted
}

// PerfCollector counts perf events per thread of every sampled process and
// reports per-process sums in Sample.Procs: PerfTaskClockSec,
// PerfCtxSwitches, PerfCPUMigrations, PerfPageFaults and, only where the
// machine has a PMU, the hardware counters. It counts only (no sampling, no
// ring buffers). Values are cumulative since sculpt opened the counters, so
// a process's first sample is a baseline.
//
// Threads are tracked across sweeps: counters are opened on new TIDs and a
// thread that exited is read one last time (the kernel keeps the final count
// on its fd) and closed, so its counts stay in its process's total. A thread
// that both starts and exits between two sweeps is never counted, and a TID
// reused within the same process between two sweeps keeps the old, stopped
// counter. A thread counts from the sweep that first sees it, so what a new
// thread does before that sweep is lost. It holds file descriptors: Close
// them.
//
// Idle skip: a process whose RunTimeSec in the sample (set by the procfs
// collector, which runs first in NewDefaultSampler) equals the one it had
// when its counters were last read did not run in between, and its counters
// are not read again: the last sums are re-emitted, and its thread list is
// not listed either. This holds because every event counted here is counted
// for the task it happens in and only while that task runs: task-clock, page
// faults (taken in the context of the faulting task), context switches (at
// the task's switch-out) and the hardware events only advance while the
// task is on a CPU; a CPU migration of a task that does not run is counted
// when it next runs (the kernel marks the task and counts at its sched-in);
// a per-task event's enabled and running times stop while the task is off
// CPU, so a multiplexed count's scaling does not move either. A new or
// exiting thread runs (in the parent's clone, in its own exit), which moves
// the process's run time. As with the procfs collector's idle skip, what a
// task runs before the scheduler next updates its run time (at most one
// scheduler tick) is deferred to the next read, never lost. Without
// RunTimeSec in the sample every process is read every sweep.
type PerfCollector struct {
	opts   PerfOptions
	sw     []perfEventKind // software events counted (PerfOptions.Software)
	hw     []perfEventKind // hardware events still believed to work
	procs  map[ProcKey]*perfProc
	nfds   int
	stats  PerfStats
	closed bool
}

var (
	_ Collector = (*PerfCollector)(nil)
	_ Closer    = (*PerfCollector)(nil)
)

type perfProc struct {
	threads map[int]*perfThread
	exited  [NumMetrics]float64 // final counts of exited threads
	seen    bool
	// runTime is the sample's RunTimeSec when the counters were last read
	// (valid when hasRun); out is what that read emitted.
	runTime float64
	hasRun  bool
	out     []perfOut
}

// perfOut is one metric a process's last read emitted.
type perfOut struct {
	m Metric
	v float64
}

type perfThread struct {
	leader  int   // software group leader (task-clock), -1 if none
	members []int // the rest of the software group
	hw      []perfHWFD
	seen    bool
}

type perfHWFD struct {
	kind int // index into perfHardwareEvents
	fd   int
}

// NewPerfCollector returns a collector, or a *NotSupportedError when
// perf_event_open does not work here (the probe's reason). Hardware events
// are counted only when the "perf-hardware" probe succeeded.
func NewPerfCollector(opts PerfOptions) (*PerfCollector, error) {
	if opts.MaxFDs <= 0 {
		opts.MaxFDs = 4096
	}
	if opts.Roots.Proc == "" {
		opts.Roots = host.DefaultRoots()
	}
	if st := probeStatus(opts.Roots, SourcePerfSoftware); !st.Available {
		return nil, &NotSupportedError{Source: "perf", Reason: st.Reason}
	}
	c := &PerfCollector{opts: opts, procs: make(map[ProcKey]*perfProc)}
	if opts.Software {
		c.sw = perfSoftwareEvents
	}
	hw := probeStatus(opts.Roots, SourcePerfHardware)
	if hw.Available {
		c.hw = append([]perfEventKind(nil), perfHardwareEvents...)
	}
	if len(c.sw) == 0 && len(c.hw) == 0 {
		return nil, &NotSupportedError{Source: "perf", Reason: "software events off (procfs gives them) and no hardware counters: " + hw.Reason}
	}
	return c, nil
}

// Name returns "perf".
func (c *PerfCollector) Name() string { return "perf" }

// Stats returns what the collector holds after its last sweep.
func (c *PerfCollector) Stats() PerfStats {
	st := c.stats
	for _, k := range c.sw {
		st.Events = append(st.Events, k.name)
	}
	for _, k := range c.hw {
		st.Events = append(st.Events, k.name)
	}
	return st
}

// fdsPerThread is the number of fds one thread needs.
func (c *PerfCollector) fdsPerThread() int { return len(c.sw) + len(c.hw) }

// Collect lists roots.Proc/PID/task of every process in s, opens counters on
// threads it has not seen, reads all counters and closes those of threads
// and processes that are gone. A process that exits meanwhile is skipped. It
// returns an error only for failures other than a gone thread (e.g. EMFILE,
// EACCES), after reading everything else.
func (c *PerfCollector) Collect(ctx context.Context, s *Sample) error {
	if c.closed {
		return errors.New("perf collector used after Close")
	}
	for _, p := range c.procs {
		p.seen = false
	}
	c.stats.SkippedProcesses, c.stats.SkippedThreads, c.stats.Idle = 0, 0, 0
	var errs []error
	for wi := range s.Workloads {
		if ctx.Err() != nil {
			break
		}
		for _, pr := range s.Workloads[wi].Procs {
			key := ProcKey{pr.PID, pr.StartTime}
			ps := s.Procs[key]
			if ps == nil {
				continue
			}
			if err := c.collectProc(key, ps); err != nil && len(errs) < 8 {
				errs = append(errs, err)
			}
		}
	}
	for key, p := range c.procs {
		if !p.seen {
			c.closeProc(p)
			delete(c.procs, key)
		}
	}
	c.stats.Processes = len(c.procs)
	c.stats.OpenFDs = c.nfds
	c.stats.Threads = 0
	for _, p := range c.procs {
		c.stats.Threads += len(p.threads)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func (c *PerfCollector) collectProc(key ProcKey, ps *ProcSample) error {
	run, hasRun := ps.Get(RunTimeSec)
	if p := c.procs[key]; p != nil && hasRun && p.hasRun && run == p.runTime {
		// Did not run since the last read: its counters cannot have moved.
		p.seen = true
		for _, o := range p.out {
			ps.Set(o.m, o.v)
		}
		c.stats.Idle++
		return nil
	}
	taskDir := c.opts.Roots.ProcPath(strconv.Itoa(key.PID), "task")
	tids, err := listTIDs(taskDir)
	if err != nil {
		if isGone(err) {
			return nil // exited: its entry is closed at the end of the sweep
		}
		return fmt.Errorf("list %s: %w", taskDir, err)
	}
	p := c.procs[key]
	if p == nil {
		if c.nfds+len(tids)*c.fdsPerThread() > c.opts.MaxFDs {
			c.stats.SkippedProcesses++
			return nil
		}
		p = &perfProc{threads: make(map[int]*perfThread, len(tids))}
		c.procs[key] = p
	}
	p.seen = true
	for _, t := range p.threads {
		t.seen = false
	}
	var firstErr error
	complete := true // every thread has counters
	for _, tid := range tids {
		if t := p.threads[tid]; t != nil {
			t.seen = true
			continue
		}
		if c.nfds+c.fdsPerThread() > c.opts.MaxFDs {
			c.stats.SkippedThreads++
			complete = false
			continue
		}
		t, err := c.openThread(tid)
		if err != nil {
			if !isGone(err) && firstErr == nil {
				firstErr = fmt.Errorf("perf_event_open on pid %d tid %d: %w", key.PID, tid, err)
			}
			continue
		}
		t.seen = true
		p.threads[tid] = t
	}
	var sum [NumMetrics]float64
	var has [NumMetrics]bool
	for tid, t := range p.threads {
		if !t.seen {
			// Exited: its fd still holds the final count.
			c.readThread(t, &p.exited, nil)
			c.closeThread(t)
			delete(p.threads, tid)
			continue
		}
		c.readThread(t, &sum, &has)
	}
	p.out = p.out[:0]
	for _, ks := range [2][]perfEventKind{c.sw, c.hw} {
		for _, k := range ks {
			if has[k.metric] || p.exited[k.metric] > 0 {
				v := sum[k.metric] + p.exited[k.metric]
				ps.Set(k.metric, v)
				p.out = append(p.out, perfOut{k.metric, v})
			}
		}
	}
	// A read that left a thread without counters is not a baseline to skip
	// from: the next sweep tries again.
	p.runTime, p.hasRun = run, hasRun && complete && firstErr == nil
	return firstErr
}

// openThread opens the software group and the hardware counters on tid.
func (c *PerfCollector) openThread(tid int) (*perfThread, error) {
	t := &perfThread{leader: -1}
	for i, k := range c.sw {
		group := -1
		if i > 0 {
			group = t.leader
		}
		fd, err := openPerfEventGroup(k, tid, group)
		if err != nil {
			c.closeThread(t)
			return nil, err
		}
		c.nfds++
		if i == 0 {
			t.leader = fd
		} else {
			t.members = append(t.members, fd)
		}
	}
	for i := 0; i < len(c.hw); i++ {
		fd, err := openPerfEvent(c.hw[i], tid)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
				// This PMU lacks the event: stop asking for it.
				c.dropHW(i)
				i--
				continue
			}
			c.closeThread(t)
			return nil, err
		}
		c.nfds++
		t.hw = append(t.hw, perfHWFD{kind: i, fd: fd})
	}
	return t, nil
}

// dropHW forgets hardware event i, closing its counters on every thread.
func (c *PerfCollector) dropHW(i int) {
	c.hw = append(c.hw[:i:i], c.hw[i+1:]...)
	for _, p := range c.procs {
		p.hasRun = false // its last sums hold the dropped event
		for _, t := range p.threads {
			kept := t.hw[:0]
			for _, h := range t.hw {
				switch {
				case h.kind == i:
					_ = unix.Close(h.fd) // see closeThread
					c.nfds--
				case h.kind > i:
					h.kind--
					kept = append(kept, h)
				default:
					kept = append(kept, h)
				}
			}
			t.hw = kept
		}
	}
}

// readThread adds t's counts to sum (marking has, when given). A counter
// that cannot be read is left out.
func (c *PerfCollector) readThread(t *perfThread, sum *[NumMetrics]float64, has *[NumMetrics]bool) {
	if t.leader >= 0 {
		var vals [8]float64 // >= len(perfSoftwareEvents)
		if n, err := readPerfGroup(t.leader, vals[:]); err == nil {
			for i := 0; i < n; i++ {
				k := c.sw[i]
				sum[k.metric] += vals[i] * k.scale
				if has != nil {
					has[k.metric] = true
				}
			}
		}
	}
	for _, h := range t.hw {
		if h.kind >= len(c.hw) {
			continue
		}
		k := c.hw[h.kind]
		if v, err := readPerfCounter(h.fd); err == nil {
			sum[k.metric] += v * k.scale
			if has != nil {
				has[k.metric] = true
			}
		}
	}
}

// closeThread closes t's perf descriptors. Their close errors are dropped:
// a perf event fd holds no written data, Linux frees the descriptor even when
// close fails, and a retry could close an fd reused by another goroutine.
func (c *PerfCollector) closeThread(t *perfThread) {
	for _, fd := range t.members {
		_ = unix.Close(fd)
		c.nfds--
	}
	if t.leader >= 0 {
		_ = unix.Close(t.leader)
		c.nfds--
	}
	for _, h := range t.hw {
		_ = unix.Close(h.fd)
		c.nfds--
	}
	t.leader, t.members, t.hw = -1, nil, nil
}

func (c *PerfCollector) closeProc(p *perfProc) {
	for _, t := range p.threads {
		c.closeThread(t)
	}
	p.threads = nil
}

// Close closes every perf file descriptor. The collector cannot be used
// afterwards.
func (c *PerfCollector) Close() error {
	for key, p := range c.procs {
		c.closeProc(p)
		delete(c.procs, key)
	}
	c.closed = true
	c.stats = PerfStats{}
	return nil
}

// listTIDs lists the numeric entries of a /proc/PID/task directory.
func listTIDs(dir string) ([]int, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // a directory opened to read: nothing lost on close
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, n := range names {
		if tid, err := strconv.Atoi(n); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}
