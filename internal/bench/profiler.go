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
	// MinCPU is the CPU time each of the three methods must have spent,
	// per N, before the measurement stops; default 1 s.
	MinCPU time.Duration
	// MinRounds is the least number of rounds (of 10 sweeps per method);
	// default 5.
	MinRounds int
	// Command is the process started N times; default /bin/sleep 3600.
	Command []string
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
	Floor  Cost `json:"floor"`  // reading the files into a reused buffer, no parsing
	Sculpt Cost `json:"sculpt"` // telemetry.ProcCollector through a Sampler sweep
	Procfs Cost `json:"procfs"` // github.com/prometheus/procfs's public API
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
	ws := make([]workload.Workload, 0, n)
	pids := make([]int, 0, n)
	for i, c := range procs {
		pid := c.Process.Pid
		start, err := startTime(opts.Roots, pid)
		if err != nil {
			return run, err
		}
		ws = append(ws, workload.Workload{
			ID: "bench:" + strconv.Itoa(i), Name: opts.Command[0], Kind: workload.KindTree,
			Procs: []workload.Proc{{PID: pid, StartTime: start}},
		})
		pids = append(pids, pid)
	}

	run.N = n
	floor := newFloorReader(opts.Roots, pids)
	col := telemetry.NewProcCollector(opts.Roots, telemetry.DefaultProcOptions())
	sampler := telemetry.NewSampler(time.Time{}, telemetry.UserHZ, col)
	fs, err := procfs.NewFS(opts.Roots.Proc)
	if err != nil {
		return run, fmt.Errorf("procfs at %s: %w", opts.Roots.Proc, err)
	}
	peer := &procfsPeer{fs: fs, roots: opts.Roots, pids: pids}
	methods := []*method{
		{name: "floor", sweep: floor.sweep, cost: &run.Floor},
		{name: "sculpt", cost: &run.Sculpt, sweep: func(ctx context.Context, _ int) error {
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
			return nil
		}},
		{name: "procfs", sweep: peer.sweep, cost: &run.Procfs},
	}
	// One warm-up round each (first reads, cache fill), not counted.
	for _, m := range methods {
		for s := 0; s < sweepsPerRound; s++ {
			if err := m.sweep(ctx, s); err != nil {
				return run, err
			}
		}
	}
	fmt.Fprintf(progress, "measuring %d processes: floor, sculpt, procfs in interleaved rounds of %d sweeps until each has used %v of CPU\n",
		n, sweepsPerRound, opts.MinCPU)
	sweep := 0
	for round := 0; ; round++ {
		for k := range methods {
			m := methods[(round+k)%len(methods)] // rotate who goes first
			cpu0, err := cpuTime()
			if err != nil {
				return run, err
			}
			t0 := time.Now()
			for s := 0; s < sweepsPerRound; s++ {
				if err := m.sweep(ctx, sweep+s); err != nil {
					return run, err
				}
			}
			m.wall += time.Since(t0)
			cpu1, err := cpuTime()
			if err != nil {
				return run, err
			}
			m.cpu += cpu1 - cpu0
			m.round = append(m.round, cpu1-cpu0)
		}
		sweep += sweepsPerRound
		done := true
		for _, m := range methods {
			done = done && m.cpu >= opts.MinCPU
		}
		if (done && round+1 >= opts.MinRounds) || round >= 10000 {
			break
		}
		if round%10 == 9 {
			fmt.Fprintf(progress, "  %d sweeps: floor %v, sculpt %v, procfs %v of CPU\n", sweep, methods[0].cpu, methods[1].cpu, methods[2].cpu)
		}
	}
	run.Sweeps = sweep
	for _, m := range methods {
		m.cost.CPUSecPerSweep = m.cpu.Seconds() / float64(sweep)
		m.cost.WallSecPerSweep = m.wall.Seconds() / float64(sweep)
		fmt.Fprintf(progress, "  %-6s %8.3f ms CPU per sweep (%d sweeps)\n", m.name, m.cost.CPUSecPerSweep*1e3, sweep)
	}
	run.SculptRatio = medianRatio(methods[1].round, methods[0].round)
	run.ProcfsRatio = medianRatio(methods[2].round, methods[0].round)
	run.SculptCPUPercent = run.Sculpt.CPUSecPerSweep * 100
	run.ProcfsCPUPercent = run.Procfs.CPUSecPerSweep * 100
	run.AgentRSSBytes, err = selfRSS(opts.Roots)
	return run, err
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
