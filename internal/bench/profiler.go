// Package bench holds sculpt's benchmarks: each measures sculpt against a
// floor (the least work that could produce the same result) and a peer (the
// same result through a widely used library), interleaved in rounds so that
// all three see the same machine, and reports ratios rather than raw times.
//
// Benchmarks start real processes; they kill and reap every one of them
// before they return, also on error or cancellation.
package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// ProfilerOptions configure Profiler. The zero value is the default.
type ProfilerOptions struct {
	Roots host.Roots // the zero value means host.DefaultRoots()
	// Ns are the numbers of processes to sweep; default 100 and 1000.
	Ns []int
	// MinCPU is the CPU time sculpt's sweeps must have spent, per N, before
	// the measurement stops (the other methods, run as often, mostly spend
	// more); default 1 s.
	MinCPU time.Duration
	// MinRounds is the least number of rounds (of 10 sweeps per method);
	// default 5.
	MinRounds int
	// Command is the process started N times; default /bin/sleep 3600.
	Command []string
	// NoBusy skips the busy case: N/10 of the N processes replaced by busy
	// loops (BusyCommand, default nice -n 19 /bin/sh -c 'while :; do :; done').
	NoBusy      bool
	BusyCommand []string
	// Pace is the pause before each sweep of the busy case, so that every
	// busy loop runs between two sweeps as it would in a 1 s interval;
	// default 200 ms. It costs wall time, not CPU.
	Pace time.Duration
}

// The cadences of the slow files, as telemetry.DefaultProcOptions has them.
const (
	smapsEvery = 5
	numaEvery  = 10
	// sweepsPerRound is a multiple of both cadences, so every round of every
	// method reads the same share of the slow files.
	sweepsPerRound = 10
)

// Cost is what one method spent per sweep.
type Cost struct {
	CPUSecPerSweep  float64 `json:"cpu_seconds_per_sweep"`  // user+system CPU of this process (getrusage)
	WallSecPerSweep float64 `json:"wall_seconds_per_sweep"` // elapsed time
}

// ProfilerRun is the measurement for one N.
type ProfilerRun struct {
	N      int  `json:"n"`
	Sweeps int  `json:"sweeps"` // per method
	Floor  Cost `json:"floor"`  // reading the full file set into a reused buffer, no parsing
	// FloorRead reads only the files the collector read in the matching
	// sweep (telemetry.ProcStats.Reads), with the same system calls (pread of
	// a held schedstat, openat relative to a held /proc/PID for the rest),
	// parsing nothing: the floor of what sculpt actually read, given its
	// idle skip.
	FloorRead Cost `json:"floor_read"`
	Sculpt    Cost `json:"sculpt"` // telemetry.ProcCollector through a Sampler sweep
	Procfs    Cost `json:"procfs"` // github.com/prometheus/procfs's public API
	// Tick is one whole agent tick: workload discovery over all of /proc
	// (selecting the N processes, one workload each) and a sweep of every
	// default collector (telemetry.NewDefaultSampler).
	Tick Cost `json:"tick"`
	// SculptReadRatio is Sculpt over FloorRead, as SculptRatio.
	SculptReadRatio float64 `json:"sculpt_over_floor_read"`
	// TickCPUPercent is Tick's share of one core at a 1 s interval.
	TickCPUPercent float64 `json:"tick_cpu_percent_at_1s"`
	// Idle is the mean number of processes per sculpt sweep that had not
	// run since their last full read (only schedstat read).
	Idle float64 `json:"idle_per_sweep"`
	// ProcEntries is how many processes /proc listed (discovery reads them
	// all, whatever it selects).
	ProcEntries int `json:"proc_entries"`
	// TickParts is Tick's CPU milliseconds per sweep by part: "discovery"
	// and each collector's name (measured on the sweeping thread, so
	// without the garbage collector's background work).
	TickParts map[string]float64 `json:"tick_parts_ms"`
	// Busy is the same measurement with N/10 of the processes busy.
	Busy *BusyRun `json:"busy,omitempty"`
	// SculptRatio and ProcfsRatio are CPU per sweep over the floor's: the
	// median over rounds of the ratio within a round, which a burst of load
	// from elsewhere on the machine moves less than a ratio of totals.
	SculptRatio float64 `json:"sculpt_over_floor"`
	ProcfsRatio float64 `json:"procfs_over_floor"`
	// SculptCPUPercent is the share of one core sculpt's sweeps take at a
	// 1 s interval (CPU seconds per sweep * 100); ProcfsCPUPercent likewise.
	SculptCPUPercent float64 `json:"sculpt_cpu_percent_at_1s"`
	ProcfsCPUPercent float64 `json:"procfs_cpu_percent_at_1s"`
	// AgentRSSBytes is this process's VmRSS after the measurement.
	AgentRSSBytes uint64 `json:"agent_rss_bytes"`
}

// BusyRun measures N processes of which Busy spin (the rest sleep), with
// a pause (ProfilerOptions.Pace) before every sweep so that each spinning
// process runs between two sweeps.
type BusyRun struct {
	Busy            int     `json:"busy"`
	Sweeps          int     `json:"sweeps"`
	Floor           Cost    `json:"floor"`
	FloorRead       Cost    `json:"floor_read"`
	Sculpt          Cost    `json:"sculpt"`
	Tick            Cost    `json:"tick"`
	SculptRatio     float64 `json:"sculpt_over_floor"`
	SculptReadRatio float64 `json:"sculpt_over_floor_read"`
	SculptPercent   float64 `json:"sculpt_cpu_percent_at_1s"`
	TickCPUPercent  float64 `json:"tick_cpu_percent_at_1s"`
	Idle            float64 `json:"idle_per_sweep"`
	// TickParts is as in ProfilerRun.
	TickParts map[string]float64 `json:"tick_parts_ms"`
}

// perSweepMS turns CPU totals into milliseconds per sweep.
func perSweepMS(parts map[string]time.Duration, sweeps int) map[string]float64 {
	out := make(map[string]float64, len(parts))
	for k, v := range parts {
		out[k] = v.Seconds() * 1e3 / float64(max(sweeps, 1))
	}
	return out
}

// Machine describes where a benchmark ran.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
}

// ProfilerResult is the outcome of Profiler.
type ProfilerResult struct {
	Machine Machine       `json:"machine"`
	Command []string      `json:"command"`
	Runs    []ProfilerRun `json:"runs"`
}

// Profiler measures the CPU cost of one telemetry sweep over N processes
// (each its own workload) for sculpt's ProcCollector, the floor and
// prometheus/procfs; see ProfilerResult. It writes progress lines to
// progress. The processes it starts are killed and reaped before it returns.
func Profiler(ctx context.Context, opts ProfilerOptions, progress io.Writer) (*ProfilerResult, error) {
	if opts.Roots == (host.Roots{}) {
		opts.Roots = host.DefaultRoots()
	}
	if len(opts.Ns) == 0 {
		opts.Ns = []int{100, 1000}
	}
	if opts.MinCPU <= 0 {
		opts.MinCPU = time.Second
	}
	if opts.MinRounds <= 0 {
		opts.MinRounds = 5
	}
	if len(opts.Command) == 0 {
		opts.Command = []string{"/bin/sleep", "3600"}
	}
	if len(opts.BusyCommand) == 0 {
		opts.BusyCommand = []string{"/usr/bin/nice", "-n", "19", "/bin/sh", "-c", "while :; do :; done"}
	}
	if opts.Pace <= 0 {
		opts.Pace = 200 * time.Millisecond
	}
	for _, n := range opts.Ns {
		if n < 1 {
			return nil, fmt.Errorf("profiler benchmark: %d processes: want at least 1", n)
		}
	}
	res := &ProfilerResult{Machine: describeMachine(opts.Roots), Command: opts.Command}
	for _, n := range opts.Ns {
		run, err := profileN(ctx, opts, n, progress)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// method is one way of sweeping the processes.
type method struct {
	name  string
	sweep func(ctx context.Context, sweep int) error
	cost  *Cost
	cpu   time.Duration
	wall  time.Duration
	round []time.Duration // CPU per round
}

// sculptMethod sweeps ws with a ProcCollector through a Sampler and records
// what each sweep read in plan (indexed by sweep within a round) for a
// floorReplay, and the idle processes in idle.
func sculptMethod(roots host.Roots, ws []workload.Workload, plan []telemetry.ProcReads, idle *int) (func(context.Context, int) error, func()) {
	col := telemetry.NewProcCollector(roots, telemetry.DefaultProcOptions())
	sampler := telemetry.NewSampler(time.Time{}, telemetry.UserHZ, col)
	return func(ctx context.Context, sweep int) error {
		r, err := sampler.Sweep(ctx, ws)
		if err != nil {
			return err
		}
		for _, rep := range r.Reports {
			if rep.Err != nil {
				return fmt.Errorf("sculpt sweep: %s: %w", rep.Name, rep.Err)
			}
		}
		st := col.Stats()
		if st.Failed > 0 {
			return fmt.Errorf("sculpt sweep: %d of %d processes failed, last: %w", st.Failed, st.Processes, st.LastError)
		}
		if st.Gone > 0 {
			return fmt.Errorf("sculpt sweep: %d of %d processes gone", st.Gone, st.Processes)
		}
		plan[sweep%len(plan)] = st.Reads
		*idle += st.Idle
		return nil
	}, once(func() { _ = sampler.Close() })
}

// once returns a function that runs f the first time it is called.
func once(f func()) func() {
	done := false
	return func() {
		if !done {
			done = true
			f()
		}
	}
}

// tickMethod runs one agent tick: discovery of all of /proc selecting pids
// (a tree workload each) and a sweep of the default collectors. It adds the
// CPU time of each part (discovery and each collector, measured on the
// calling thread) to parts.
func tickMethod(roots host.Roots, pids []int, entries *int, parts map[string]time.Duration) (func(context.Context, int) error, func(), error) {
	disc := workload.NewDiscoverer(roots, workload.Options{})
	def, _, err := telemetry.NewDefaultSampler(roots, telemetry.DefaultOptions{})
	if err != nil {
		_ = disc.Close()
		return nil, nil, fmt.Errorf("default sampler: %w", err)
	}
	boot, _ := telemetry.ReadBootTime(roots) // as NewDefaultSampler: zero when unknown
	var cs []telemetry.Collector
	for _, c := range def.Collectors() {
		cs = append(cs, &timedCollector{Collector: c, parts: parts})
	}
	smp := telemetry.NewSampler(boot, telemetry.UserHZ, cs...)
	sel := workload.Selector{PIDs: pids}
	return func(ctx context.Context, _ int) error {
			runtime.LockOSThread() // so that RUSAGE_THREAD times each part
			defer runtime.UnlockOSThread()
			t0 := threadCPU()
			ws, err := disc.Discover(sel)
			if err != nil {
				return fmt.Errorf("tick: discover: %w", err)
			}
			parts["discovery"] += threadCPU() - t0
			n := 0
			for _, w := range ws {
				n += len(w.Procs)
			}
			if n != len(pids) {
				return fmt.Errorf("tick: discovered %d of the %d processes", n, len(pids))
			}
			if _, err := smp.Sweep(ctx, ws); err != nil {
				return fmt.Errorf("tick: sweep: %w", err)
			}
			*entries = disc.Listed()
			return nil
		}, once(func() {
			_ = def.Close() // closes the collectors smp wraps
			_ = disc.Close()
		}), nil
}

// timedCollector adds the CPU time of each Collect (of the calling thread)
// to parts[Name()].
type timedCollector struct {
	telemetry.Collector
	parts map[string]time.Duration
}

func (c *timedCollector) Collect(ctx context.Context, s *telemetry.Sample) error {
	t0 := threadCPU()
	err := c.Collector.Collect(ctx, s)
	c.parts[c.Name()] += threadCPU() - t0
	return err
}

// threadCPU returns the calling thread's user+system CPU time
// (getrusage RUSAGE_THREAD), 0 when it cannot be read.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs methods in interleaved rounds of sweepsPerRound sweeps
// (rotating which goes first) until the first has used minCPU and minRounds
// rounds are done, pausing pace before every sweep; it returns the number of
// sweeps per method and fills each method's cost.
func measure(ctx context.Context, methods []*method, minCPU time.Duration, minRounds int, pace time.Duration, progress io.Writer) (int, error) {
	sweep := 0
	for round := 0; ; round++ {
		for k := range methods {
			m := methods[(round+k)%len(methods)] // rotate who goes first
			var cpu time.Duration
			for s := 0; s < sweepsPerRound; s++ {
				if pace > 0 {
					select {
					case <-ctx.Done():
						return sweep, ctx.Err()
					case <-time.After(pace):
					}
				}
				cpu0, err := cpuTime()
				if err != nil {
					return sweep, err
				}
				t0 := time.Now()
				if err := m.sweep(ctx, sweep+s); err != nil {
					return sweep, err
				}
				m.wall += time.Since(t0)
				cpu1, err := cpuTime()
				if err != nil {
					return sweep, err
				}
				cpu += cpu1 - cpu0
			}
			m.cpu += cpu
			m.round = append(m.round, cpu)
		}
		sweep += sweepsPerRound
		if (methods[0].cpu >= minCPU && round+1 >= minRounds) || round >= 10000 {
			break
		}
		if round%10 == 9 {
			var parts []string
			for _, m := range methods {
				parts = append(parts, fmt.Sprintf("%s %v", m.name, m.cpu.Round(time.Millisecond)))
			}
			fmt.Fprintf(progress, "  %d sweeps: %s of CPU\n", sweep, strings.Join(parts, ", "))
		}
	}
	for _, m := range methods {
		m.cost.CPUSecPerSweep = m.cpu.Seconds() / float64(sweep)
		m.cost.WallSecPerSweep = m.wall.Seconds() / float64(sweep)
		fmt.Fprintf(progress, "  %-10s %8.3f ms CPU per sweep (%d sweeps)\n", m.name, m.cost.CPUSecPerSweep*1e3, sweep)
	}
	return sweep, nil
}

// warmUp runs one round of each method, not counted: first reads, cache
// fill, the idle skip's first full reads. Sculpt goes first so that the
// replaying floor has a plan.
func warmUp(ctx context.Context, methods []*method) error {
	for _, m := range methods {
		for s := 0; s < sweepsPerRound; s++ {
			if err := m.sweep(ctx, s); err != nil {
				return err
			}
		}
	}
	return nil
}

// workloadsOf makes one tree workload per process.
func workloadsOf(roots host.Roots, name string, pids []int) ([]workload.Workload, error) {
	ws := make([]workload.Workload, 0, len(pids))
	for i, pid := range pids {
		start, err := startTime(roots, pid)
		if err != nil {
			return nil, err
		}
		ws = append(ws, workload.Workload{
			ID: "bench:" + strconv.Itoa(i), Name: name, Kind: workload.KindTree,
			Procs: []workload.Proc{{PID: pid, StartTime: start}},
		})
	}
	return ws, nil
}

func profileN(ctx context.Context, opts ProfilerOptions, n int, progress io.Writer) (run ProfilerRun, err error) {
	fmt.Fprintf(progress, "starting %d processes (%s)\n", n, strings.Join(opts.Command, " "))
	procs, err := startProcesses(ctx, opts.Command, n)
	defer func() {
		stopErr := stopProcesses(procs)
		if err == nil && stopErr != nil {
			err = stopErr
		}
	}()
	if err != nil {
		return run, err
	}
	pids := make([]int, 0, n)
	for _, c := range procs {
		pids = append(pids, c.Process.Pid)
	}
	ws, err := workloadsOf(opts.Roots, opts.Command[0], pids)
	if err != nil {
		return run, err
	}

	run.N = n
	fs, err := procfs.NewFS(opts.Roots.Proc)
	if err != nil {
		return run, fmt.Errorf("procfs at %s: %w", opts.Roots.Proc, err)
	}
	floor := newFloorReader(opts.Roots, pids)
	plan := make([]telemetry.ProcReads, sweepsPerRound)
	replay := newFloorReplay(opts.Roots, pids, plan)
	defer replay.close()
	idle := 0
	sculpt, closeSculpt := sculptMethod(opts.Roots, ws, plan, &idle)
	defer closeSculpt()
	parts := make(map[string]time.Duration)
	tick, closeTick, err := tickMethod(opts.Roots, pids, &run.ProcEntries, parts)
	if err != nil {
		return run, err
	}
	defer closeTick()
	peer := &procfsPeer{fs: fs, roots: opts.Roots, pids: pids}
	methods := []*method{
		{name: "sculpt", sweep: sculpt, cost: &run.Sculpt},
		{name: "floor", sweep: floor.sweep, cost: &run.Floor},
		{name: "floor-read", sweep: replay.sweep, cost: &run.FloorRead},
		{name: "procfs", sweep: peer.sweep, cost: &run.Procfs},
		{name: "tick", sweep: tick, cost: &run.Tick},
	}
	if err := warmUp(ctx, methods); err != nil {
		return run, err
	}
	idle = 0
	clear(parts)
	fmt.Fprintf(progress, "measuring %d processes: sculpt, floor, floor-read, procfs, tick in interleaved rounds of %d sweeps until each has used %v of CPU\n",
		n, sweepsPerRound, opts.MinCPU)
	if run.Sweeps, err = measure(ctx, methods, opts.MinCPU, opts.MinRounds, 0, progress); err != nil {
		return run, err
	}
	run.SculptRatio = medianRatio(methods[0].round, methods[1].round)
	run.SculptReadRatio = medianRatio(methods[0].round, methods[2].round)
	run.ProcfsRatio = medianRatio(methods[3].round, methods[1].round)
	run.SculptCPUPercent = run.Sculpt.CPUSecPerSweep * 100
	run.ProcfsCPUPercent = run.Procfs.CPUSecPerSweep * 100
	run.TickCPUPercent = run.Tick.CPUSecPerSweep * 100
	run.Idle = float64(idle) / float64(run.Sweeps)
	run.TickParts = perSweepMS(parts, run.Sweeps)
	if run.AgentRSSBytes, err = selfRSS(opts.Roots); err != nil {
		return run, err
	}
	if opts.NoBusy {
		return run, nil
	}
	closeSculpt()
	closeTick()
	replay.close()
	run.Busy, err = profileBusy(ctx, opts, pids, progress)
	return run, err
}

// profileBusy replaces a tenth of the sleeping processes (at least one) by
// busy loops and measures sculpt, both floors and the tick again, pausing
// before every sweep.
func profileBusy(ctx context.Context, opts ProfilerOptions, sleepers []int, progress io.Writer) (busy *BusyRun, err error) {
	nb := max(1, len(sleepers)/10)
	fmt.Fprintf(progress, "starting %d busy processes (%s)\n", nb, strings.Join(opts.BusyCommand, " "))
	procs, err := startProcesses(ctx, opts.BusyCommand, nb)
	defer func() {
		stopErr := stopProcesses(procs)
		if err == nil && stopErr != nil {
			err = stopErr
		}
	}()
	if err != nil {
		return nil, err
	}
	pids := slices.Clone(sleepers[:len(sleepers)-nb])
	for _, c := range procs {
		pids = append(pids, c.Process.Pid)
	}
	// nice execs the shell in place: same PID, same start time.
	ws, err := workloadsOf(opts.Roots, "mixed", pids)
	if err != nil {
		return nil, err
	}
	b := &BusyRun{Busy: nb}
	floor := newFloorReader(opts.Roots, pids)
	plan := make([]telemetry.ProcReads, sweepsPerRound)
	replay := newFloorReplay(opts.Roots, pids, plan)
	defer replay.close()
	idle := 0
	sculpt, closeSculpt := sculptMethod(opts.Roots, ws, plan, &idle)
	defer closeSculpt()
	var entries int
	parts := make(map[string]time.Duration)
	tick, closeTick, err := tickMethod(opts.Roots, pids, &entries, parts)
	if err != nil {
		return nil, err
	}
	defer closeTick()
	methods := []*method{
		{name: "sculpt", sweep: sculpt, cost: &b.Sculpt},
		{name: "floor", sweep: floor.sweep, cost: &b.Floor},
		{name: "floor-read", sweep: replay.sweep, cost: &b.FloorRead},
		{name: "tick", sweep: tick, cost: &b.Tick},
	}
	if err := warmUp(ctx, methods); err != nil {
		return nil, err
	}
	idle = 0
	clear(parts)
	fmt.Fprintf(progress, "measuring %d processes, %d busy: sculpt, floor, floor-read, tick, %v before each sweep, %d rounds\n",
		len(pids), nb, opts.Pace, opts.MinRounds)
	if b.Sweeps, err = measure(ctx, methods, 0, opts.MinRounds, opts.Pace, progress); err != nil {
		return nil, err
	}
	b.SculptRatio = medianRatio(methods[0].round, methods[1].round)
	b.SculptReadRatio = medianRatio(methods[0].round, methods[2].round)
	b.SculptPercent = b.Sculpt.CPUSecPerSweep * 100
	b.TickCPUPercent = b.Tick.CPUSecPerSweep * 100
	b.Idle = float64(idle) / float64(b.Sweeps)
	b.TickParts = perSweepMS(parts, b.Sweeps)
	return b, nil
}

// medianRatio returns the median over rounds of a[i]/b[i] (0 when b[i] is 0
// in every round).
func medianRatio(a, b []time.Duration) float64 {
	var rs []float64
	for i := range a {
		if b[i] > 0 {
			rs = append(rs, float64(a[i])/float64(b[i]))
		}
	}
	if len(rs) == 0 {
		return 0
	}
	slices.Sort(rs)
	if len(rs)%2 == 1 {
		return rs[len(rs)/2]
	}
	return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
}

// startProcesses starts n copies of command. On error the ones started are
// returned too, for stopProcesses.
func startProcesses(ctx context.Context, command []string, n int) ([]*exec.Cmd, error) {
	procs := make([]*exec.Cmd, 0, n)
	for i := 0; i < n; i++ {
		if err := ctx.Err(); err != nil {
			return procs, err
		}
		c := exec.Command(command[0], command[1:]...)
		// Should this process die without cleaning up, the kernel kills them.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			return procs, fmt.Errorf("start %s (process %d of %d): %w", command[0], i+1, n, err)
		}
		procs = append(procs, c)
	}
	return procs, nil
}

// stopProcesses kills and reaps procs.
func stopProcesses(procs []*exec.Cmd) error {
	var errs []error
	for _, c := range procs {
		if err := c.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			errs = append(errs, fmt.Errorf("kill pid %d: %w", c.Process.Pid, err))
		}
	}
	for _, c := range procs {
		_ = c.Wait() // "signal: killed" is the expected outcome
	}
	return errors.Join(errs...)
}

// cpuTime returns this process's user+system CPU time (getrusage RUSAGE_SELF).
func cpuTime() (time.Duration, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// startTime reads field 22 of roots.Proc/PID/stat.
func startTime(roots host.Roots, pid int) (uint64, error) {
	path := roots.ProcPath(strconv.Itoa(pid), "stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("parse %s: too few fields", path)
	}
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s starttime: %w", path, err)
	}
	return n, nil
}

// selfRSS returns VmRSS of roots.Proc/self/status in bytes.
func selfRSS(roots host.Roots) (uint64, error) {
	path := roots.ProcPath("self", "status")
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
			kb, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS in %s: %w", path, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s has no VmRSS", path)
}

func describeMachine(roots host.Roots) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Machine[:])
	}
	if b, err := os.ReadFile(roots.ProcPath("cpuinfo")); err == nil {
		for line := range bytes.Lines(b) {
			if v, ok := bytes.CutPrefix(line, []byte("model name")); ok {
				if _, after, ok := bytes.Cut(v, []byte(":")); ok {
					m.CPUModel = string(bytes.TrimSpace(after))
					break
				}
			}
		}
	}
	return m
}

// floorReader reads, each sweep, the files ProcCollector reads for a
// single-threaded process (stat, status, schedstat, sched, io; smaps_rollup
// every smapsEvery sweeps and numa_maps every numaEvery, staggered by
// process) with the same system calls (one O_PATH descriptor of
// /proc/PID, openat, read into one reused buffer, close) and parses nothing.
type floorReader struct {
	dirs []string
	buf  []byte
}

func newFloorReader(roots host.Roots, pids []int) *floorReader {
	f := &floorReader{buf: make([]byte, 64<<10)}
	for _, pid := range pids {
		f.dirs = append(f.dirs, roots.ProcPath(strconv.Itoa(pid)))
	}
	return f
}

func (f *floorReader) sweep(ctx context.Context, sweep int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, dir := range f.dirs {
		dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("floor: open %s: %w", dir, err)
		}
		for _, name := range [...]string{"stat", "status", "schedstat", "sched", "io"} {
			if err := f.read(dirfd, dir, name, true); err != nil {
				return err
			}
		}
		if (sweep+i)%smapsEvery == 0 {
			if err := f.read(dirfd, dir, "smaps_rollup", true); err != nil {
				return err
			}
		}
		if (sweep+i)%numaEvery == 0 {
			if err := f.read(dirfd, dir, "numa_maps", false); err != nil {
				return err
			}
		}
		_ = unix.Close(dirfd)
	}
	return nil
}

// read reads one file; a single-record seq_file ends at the first short read.
func (f *floorReader) read(dirfd int, dir, name string, oneRecord bool) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("floor: open %s/%s: %w", dir, name, err)
	}
	defer func() { _ = unix.Close(fd) }() // a read-only procfs file: nothing to flush
	for {
		n, err := unix.Read(fd, f.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("floor: read %s/%s: %w", dir, name, err)
		}
		if n == 0 || (oneRecord && n < len(f.buf)) {
			return nil
		}
	}
}

// procfsPeer gets the same information through prometheus/procfs: Stat,
// NewStatus, Schedstat and IO every sweep, ProcSMapsRollup every
// smapsEvery sweeps; sched (migrations) and numa_maps, which procfs does not
// parse, are read whole with os.ReadFile.
type procfsPeer struct {
	fs    procfs.FS
	roots host.Roots
	pids  []int
}

func (p *procfsPeer) sweep(ctx context.Context, sweep int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, pid := range p.pids {
		proc, err := p.fs.Proc(pid)
		if err != nil {
			return fmt.Errorf("procfs: pid %d: %w", pid, err)
		}
		if _, err := proc.Stat(); err != nil {
			return fmt.Errorf("procfs: pid %d stat: %w", pid, err)
		}
		if _, err := proc.NewStatus(); err != nil {
			return fmt.Errorf("procfs: pid %d status: %w", pid, err)
		}
		if _, err := proc.Schedstat(); err != nil {
			return fmt.Errorf("procfs: pid %d schedstat: %w", pid, err)
		}
		if _, err := proc.IO(); err != nil {
			return fmt.Errorf("procfs: pid %d io: %w", pid, err)
		}
		if _, err := os.ReadFile(p.roots.ProcPath(strconv.Itoa(pid), "sched")); err != nil {
			return fmt.Errorf("procfs: pid %d sched: %w", pid, err)
		}
		if (sweep+i)%smapsEvery == 0 {
			if _, err := proc.ProcSMapsRollup(); err != nil {
				return fmt.Errorf("procfs: pid %d smaps_rollup: %w", pid, err)
			}
		}
		if (sweep+i)%numaEvery == 0 {
			if _, err := os.ReadFile(p.roots.ProcPath(strconv.Itoa(pid), "numa_maps")); err != nil {
				return fmt.Errorf("procfs: pid %d numa_maps: %w", pid, err)
			}
		}
	}
	return nil
}

// floorReplay reads, each sweep, exactly as many of each file as the
// collector read in the sweep with the same index in its last round
// (plan), spread over the processes in turn, with the collector's system
// calls: pread(2) of a held schedstat descriptor; openat(2) relative to a
// held /proc/PID descriptor, one read, close for the others. It parses
// nothing.
type floorReplay struct {
	roots  host.Roots
	pids   []int
	dirfds []int
	sched  []int
	plan   []telemetry.ProcReads
	buf    []byte
	off    int
}

func newFloorReplay(roots host.Roots, pids []int, plan []telemetry.ProcReads) *floorReplay {
	f := &floorReplay{roots: roots, pids: pids, plan: plan, buf: make([]byte, 64<<10),
		dirfds: make([]int, len(pids)), sched: make([]int, len(pids))}
	for i := range pids {
		f.dirfds[i], f.sched[i] = -1, -1
	}
	return f
}

func (f *floorReplay) close() {
	for i := range f.pids {
		for _, fd := range []*int{&f.dirfds[i], &f.sched[i]} {
			if *fd >= 0 {
				_ = unix.Close(*fd)
				*fd = -1
			}
		}
	}
}

// dir returns the held /proc/PID descriptor of process i.
func (f *floorReplay) dir(i int) (int, error) {
	if f.dirfds[i] < 0 {
		path := f.roots.ProcPath(strconv.Itoa(f.pids[i]))
		fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, fmt.Errorf("floor-read: open %s: %w", path, err)
		}
		f.dirfds[i] = fd
	}
	return f.dirfds[i], nil
}

func (f *floorReplay) sweep(ctx context.Context, sweep int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := f.plan[sweep%len(f.plan)]
	n := len(f.pids)
	// schedstat: pread of a held descriptor.
	for j := 0; j < p.Schedstat; j++ {
		i := (f.off + j) % n
		if f.sched[i] < 0 {
			dirfd, err := f.dir(i)
			if err != nil {
				return err
			}
			if f.sched[i], err = unix.Openat(dirfd, "schedstat", unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
				return fmt.Errorf("floor-read: open schedstat of %d: %w", f.pids[i], err)
			}
		}
		if _, err := unix.Pread(f.sched[i], f.buf, 0); err != nil {
			return fmt.Errorf("floor-read: read schedstat of %d: %w", f.pids[i], err)
		}
	}
	for _, file := range [...]struct {
		name      string
		count     int
		oneRecord bool
	}{{"stat", p.Stat, true}, {"status", p.Status, true}, {"sched", p.Sched, true}, {"io", p.IO, true},
		{"smaps_rollup", p.Smaps, true}, {"numa_maps", p.NUMAMaps, false}} {
		for j := 0; j < file.count; j++ {
			i := (f.off + j) % n
			dirfd, err := f.dir(i)
			if err != nil {
				return err
			}
			if err := readOne(dirfd, f.buf, f.pids[i], file.name, file.oneRecord); err != nil {
				return err
			}
		}
	}
	f.off = (f.off + max(p.Stat, 1)) % n
	return nil
}

// readOne opens name relative to dirfd, reads it into buf (a single-record
// seq_file ends at the first short read) and closes it.
func readOne(dirfd int, buf []byte, pid int, name string, oneRecord bool) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("floor-read: open %d/%s: %w", pid, name, err)
	}
	defer func() { _ = unix.Close(fd) }() // a read-only procfs file: nothing to flush
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("floor-read: read %d/%s: %w", pid, name, err)
		}
		if n == 0 || (oneRecord && n < len(buf)) {
			return nil
		}
	}
}
