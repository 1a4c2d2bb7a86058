package telemetry

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

// fixtureRoots is a fake machine with two NUMA nodes (CPUs 0-1 and 2-3).
var fixtureRoots = host.Roots{Proc: "testdata/proc/tree/proc", Sys: "testdata/proc/tree/sys"}

func proc(pid int, start uint64) workload.Proc { return workload.Proc{PID: pid, StartTime: start} }

// values returns the ProcSample of pid in s.
func values(t *testing.T, s *Sample, pid int) *Values {
	t.Helper()
	for k, ps := range s.Procs {
		if k.PID == pid {
			return &ps.Values
		}
	}
	t.Fatalf("pid %d not in sample", pid)
	return nil
}

func wantValues(t *testing.T, what string, v *Values, want map[Metric]float64) {
	t.Helper()
	for m, w := range want {
		got, ok := v.Get(m)
		if !ok {
			t.Errorf("%s: %s absent, want %v", what, m, w)
			continue
		}
		if d := got - w; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s: %s = %v, want %v", what, m, got, w)
		}
	}
}

func wantAbsent(t *testing.T, what string, v *Values, ms ...Metric) {
	t.Helper()
	for _, m := range ms {
		if got, ok := v.Get(m); ok {
			t.Errorf("%s: %s = %v, want absent", what, m, got)
		}
	}
}

func TestProcCollectorFixtures(t *testing.T) {
	ws := []workload.Workload{
		{ID: "single", Procs: []workload.Proc{proc(100, 5000)}},
		{ID: "threads", Procs: []workload.Proc{proc(200, 6000)}},
		{ID: "broken", Procs: []workload.Proc{proc(300, 7000), proc(400, 8000)}},
		{ID: "reused", Procs: []workload.Proc{proc(500, 9000)}},
		{ID: "gone", Procs: []workload.Proc{proc(600, 1)}},
	}
	c := NewProcCollector(fixtureRoots, ProcOptions{})
	s := NewSample(time.Now(), ws)
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	wantValues(t, "pid 100", values(t, s, 100), map[Metric]float64{
		CPUUserSec: 2.5, CPUSystemSec: 0.5, MinorFaults: 1000, MajorFaults: 7, Threads: 1, Processes: 1,
		RSSBytes: 2048 << 10, CtxVoluntary: 11, CtxInvoluntary: 3,
		RunTimeSec: 1.5, RunDelaySec: 0.25, Timeslices: 42, Migrations: 9,
		IOReadChars: 6976, IOWriteChars: 100, IOReadOps: 10, IOWriteOps: 2, IOReadBytes: 4096, IOWriteBytes: 8192,
		PSSBytes: 455 << 10, AnonBytes: 112 << 10, SwapBytes: 8 << 10,
		NUMAPagesTotal: 1034, NUMAPagesLocal: 7, // Cpus_allowed_list 0-1: node 0
	})
	// Three threads: the per-task values are the sums over task/*, not the
	// main thread's /proc/200/{status,schedstat,sched}.
	wantValues(t, "pid 200", values(t, s, 200), map[Metric]float64{
		CPUUserSec: 3, Threads: 3, CtxVoluntary: 55, CtxInvoluntary: 6,
		RunTimeSec: 6, RunDelaySec: 0.6, Timeslices: 60, Migrations: 6,
		NUMAPagesTotal: 1034, NUMAPagesLocal: 1027, // Cpus_allowed_list 2-3: node 1
	})
	// Garbage utime: the stat metrics are skipped, the other files are read.
	v300 := values(t, s, 300)
	wantAbsent(t, "pid 300", v300, CPUUserSec, CPUSystemSec, MinorFaults, Threads, Processes)
	wantValues(t, "pid 300", v300, map[Metric]float64{RSSBytes: 100 << 10, IOReadOps: 1, Timeslices: 3})
	// Truncated stat and io.
	v400 := values(t, s, 400)
	wantAbsent(t, "pid 400", v400, CPUUserSec, Threads, IOReadChars, IOWriteBytes)
	wantValues(t, "pid 400", v400, map[Metric]float64{RSSBytes: 100 << 10, RunDelaySec: 2e-9})
	// A reused PID and a missing one are gone: no values at all.
	for _, pid := range []int{500, 600} {
		if n := values(t, s, pid).Len(); n != 0 {
			t.Errorf("pid %d: %d values, want none", pid, n)
		}
	}
	st := c.Stats()
	if st.Processes != 6 || st.Gone != 2 || st.Failed != 2 || st.Sweeps != 1 {
		t.Errorf("Stats = %+v, want 6 processes, 2 gone, 2 failed, 1 sweep", st)
	}
	if st.LastError == nil || !strings.Contains(st.LastError.Error(), "testdata/proc/tree/proc/") {
		t.Errorf("LastError = %v, want one naming the file", st.LastError)
	}
}

func TestProcCollectorErrorsNameFileAndField(t *testing.T) {
	c := NewProcCollector(fixtureRoots, ProcOptions{})
	s := NewSample(time.Now(), []workload.Workload{{ID: "broken", Procs: []workload.Proc{proc(300, 7000)}}})
	err := c.Collect(context.Background(), s)
	// The only process failed: Collect says so.
	if err == nil {
		t.Fatal("Collect of a sweep in which every process failed: no error")
	}
	for _, want := range []string{"testdata/proc/tree/proc/300/stat", "utime", `"1x"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	// Only gone processes: not an error.
	s = NewSample(time.Now(), []workload.Workload{{ID: "gone", Procs: []workload.Proc{proc(600, 1)}}})
	if err := c.Collect(context.Background(), s); err != nil {
		t.Errorf("Collect of gone processes: %v", err)
	}
}

func TestProcCollectorNoNodeDir(t *testing.T) {
	roots := host.Roots{Proc: fixtureRoots.Proc, Sys: t.TempDir()}
	c := NewProcCollector(roots, ProcOptions{})
	s := NewSample(time.Now(), []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(200, 6000)}}})
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	// One node 0 holding every CPU: the pages on node 0 are local.
	wantValues(t, "pid 200", values(t, s, 200), map[Metric]float64{NUMAPagesTotal: 1034, NUMAPagesLocal: 7})
	if st := c.Stats(); st.NUMAError != nil {
		t.Errorf("NUMAError = %v", st.NUMAError)
	}
}

func TestProcCollectorOptionsOff(t *testing.T) {
	c := NewProcCollector(fixtureRoots, ProcOptions{SmapsEvery: -1, NUMAEvery: -1, NoSched: true})
	s := NewSample(time.Now(), []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(100, 5000), proc(200, 6000)}}})
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{100, 200} {
		v := values(t, s, pid)
		wantAbsent(t, fmt.Sprint("pid ", pid), v, PSSBytes, AnonBytes, NUMAPagesTotal, NUMAPagesLocal, Migrations)
		if _, ok := v.Get(RunTimeSec); !ok {
			t.Errorf("pid %d: run_seconds absent", pid)
		}
	}
}

// copyTree copies the fixture of one process and the sysfs nodes to a
// temporary root so that a test can change the files between sweeps.
func copyTree(t *testing.T, pids ...string) host.Roots {
	t.Helper()
	dst := t.TempDir()
	src := "testdata/proc/tree"
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		parts := strings.Split(rel, string(filepath.Separator))
		if parts[0] == "proc" && len(parts) > 1 && !contains(pids, parts[1]) {
			return nil
		}
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return host.Roots{Proc: filepath.Join(dst, "proc"), Sys: filepath.Join(dst, "sys")}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// TestProcCollectorCadence rewrites smaps_rollup and numa_maps before every
// sweep with the sweep number and checks when they are read: on the first
// sweep, then (after one staggered gap) every SmapsEvery/NUMAEvery sweeps,
// with the last values re-emitted in between.
func TestProcCollectorCadence(t *testing.T) {
	roots := copyTree(t, "100")
	dir := filepath.Join(roots.Proc, "100")
	c := NewProcCollector(roots, ProcOptions{SmapsEvery: 3, NUMAEvery: 4})
	ws := []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(100, 5000)}}}
	var smapsReads, numaReads []int
	for sweep := 1; sweep <= 14; sweep++ {
		smaps := fmt.Sprintf("Pss: %d kB\nAnonymous: 1 kB\nSwap: 0 kB\n", sweep)
		numa := fmt.Sprintf("7f00 default anon=1 N0=%d kernelpagesize_kB=4\n", sweep)
		if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(smaps), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "numa_maps"), []byte(numa), 0o644); err != nil {
			t.Fatal(err)
		}
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v := values(t, s, 100)
		pss, ok1 := v.Get(PSSBytes)
		pages, ok2 := v.Get(NUMAPagesTotal)
		if !ok1 || !ok2 {
			t.Fatalf("sweep %d: pss or numa pages absent", sweep)
		}
		if int(pss) == sweep<<10 {
			smapsReads = append(smapsReads, sweep)
		}
		if int(pages) == sweep {
			numaReads = append(numaReads, sweep)
		}
	}
	check := func(name string, reads []int, every int) {
		if len(reads) < 3 || reads[0] != 1 || reads[1]-reads[0] < 1 || reads[1]-reads[0] > every {
			t.Errorf("%s read at sweeps %v, want 1, then within %d, then every %d", name, reads, every, every)
			return
		}
		for i := 2; i < len(reads); i++ {
			if reads[i]-reads[i-1] != every {
				t.Errorf("%s read at sweeps %v, want every %d after the first gap", name, reads, every)
			}
		}
	}
	check("smaps_rollup", smapsReads, 3)
	check("numa_maps", numaReads, 4)

	// A process no longer sampled is dropped from the cache.
	if len(c.cache) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(c.cache))
	}
	if err := c.Collect(context.Background(), NewSample(time.Now(), nil)); err != nil {
		t.Fatal(err)
	}
	if len(c.cache) != 0 {
		t.Errorf("cache holds %d entries after the process left, want 0", len(c.cache))
	}
}

// --- root tests on the real kernel ---

// startTime reads field 22 of /proc/PID/stat, independently of parseStat.
func startTime(t testing.TB, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func realWorkload(t testing.TB, id string, cmds ...*exec.Cmd) workload.Workload {
	t.Helper()
	w := workload.Workload{ID: id, Name: id, Kind: workload.KindTree}
	for _, c := range cmds {
		pid := c.Process.Pid
		w.Procs = append(w.Procs, workload.Proc{PID: pid, StartTime: startTime(t, pid)})
	}
	return w
}

func frameOf(t *testing.T, res Result, id string) *Frame {
	t.Helper()
	for i := range res.Frames {
		if res.Frames[i].Workload == id {
			return &res.Frames[i]
		}
	}
	t.Fatalf("no frame for %s", id)
	return nil
}

func noReportErrors(t *testing.T, res Result) {
	t.Helper()
	for _, r := range res.Reports {
		if r.Err != nil {
			t.Errorf("collector %s: %v", r.Name, r.Err)
		}
	}
}

// pipePair starts two pipe testloads ping-ponging over two pipes.
func pipePair(t *testing.T) (*exec.Cmd, *exec.Cmd) {
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a := testload.Start(t, "pipe", []string{"SCULPT_TESTLOAD_FIRST=1"}, r1, w2)
	b := testload.Start(t, "pipe", nil, r2, w1)
	for _, f := range []*os.File{r1, w1, r2, w2} {
		_ = f.Close() // the children hold their own copies
	}
	return a, b
}

func TestProcCollectorRealOrderings(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real workloads for a second")
	}
	cpu := testload.Start(t, "cpu", nil)
	mem := testload.Start(t, "mem", nil)
	disk := testload.Start(t, "disk", []string{"SCULPT_TESTLOAD_DIR=" + t.TempDir()})
	p1, p2 := pipePair(t)
	sleep := testload.Start(t, "sleep", nil)
	time.Sleep(300 * time.Millisecond) // let the Go runtimes start
	ws := []workload.Workload{
		realWorkload(t, "cpu", cpu),
		realWorkload(t, "mem", mem),
		realWorkload(t, "disk", disk),
		realWorkload(t, "pipe", p1, p2),
		realWorkload(t, "sleep", sleep),
	}
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{})
	smp := NewSampler(time.Time{}, UserHZ, c)
	ctx := context.Background()
	if _, err := smp.Sweep(ctx, ws); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	res, err := smp.Sweep(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	noReportErrors(t, res)
	if st := c.Stats(); st.Gone != 0 || st.Failed != 0 {
		t.Fatalf("Stats = %+v, want nothing gone or failed", st)
	}
	get := func(id string, m Metric) float64 {
		f := frameOf(t, res, id)
		v, ok := f.Values.Get(m)
		if !ok {
			t.Fatalf("%s: %s absent", id, m)
		}
		return v
	}
	// highest says which workload has the largest m.
	highest := func(m Metric, want string) {
		t.Helper()
		var vals []string
		top := get(want, m)
		for _, w := range ws {
			v := get(w.ID, m)
			vals = append(vals, fmt.Sprintf("%s=%g", w.ID, v))
			if w.ID != want && v >= top {
				t.Errorf("%s: want %s highest, got %s", m, want, strings.Join(vals, " "))
			}
		}
		t.Logf("%s: %v", m, vals)
	}
	// The spinner spends the largest share of its CPU time in user mode.
	// (Not the most user seconds: on a crowded machine it gets little CPU,
	// and a -race build of the disk writer spends user time checking every
	// buffer it writes.)
	userShare := func(id string) float64 {
		u, s := get(id, CPUUserSec), get(id, CPUSystemSec)
		if u+s == 0 {
			return 0
		}
		return u / (u + s)
	}
	for _, w := range ws {
		if w.ID != "cpu" && userShare(w.ID) >= userShare("cpu") {
			t.Errorf("user share of CPU time: %s has %.3g, not below cpu's %.3g", w.ID, userShare(w.ID), userShare("cpu"))
		}
	}
	highest(MinorFaults, "mem")
	highest(RSSBytes, "mem")
	highest(IOWriteBytes, "disk")
	highest(CtxVoluntary, "pipe")
	if cv, pv := get("cpu", CtxVoluntary), get("pipe", CtxVoluntary); cv >= pv {
		t.Errorf("voluntary switches: cpu %g >= pipe pair %g", cv, pv)
	}
	// Every per-process metric this kernel has is present for the pipe pair.
	f := frameOf(t, res, "pipe")
	for _, m := range []Metric{CPUSystemSec, MajorFaults, CtxInvoluntary, Threads, RunTimeSec, RunDelaySec, Timeslices,
		Migrations, IOReadChars, IOWriteChars, IOReadOps, IOWriteOps, IOReadBytes, PSSBytes, AnonBytes, SwapBytes,
		NUMAPagesTotal, NUMAPagesLocal} {
		if !f.Values.Has(m) {
			t.Errorf("pipe: %s absent", m)
		}
	}
	if n, _ := f.Values.Get(Processes); n != 2 {
		t.Errorf("pipe: processes = %g, want 2", n)
	}
	// One NUMA node here: every page with a node is local.
	if tot, loc := get("mem", NUMAPagesTotal), get("mem", NUMAPagesLocal); tot <= 0 || loc != tot {
		t.Errorf("mem numa pages: total %g local %g, want local == total > 0 on a one-node machine", tot, loc)
	}
}

func TestProcCollectorExitBetweenSweeps(t *testing.T) {
	stay := testload.Start(t, "sleep", nil)
	leave := testload.Start(t, "sleep", nil)
	ws := []workload.Workload{realWorkload(t, "stay", stay), realWorkload(t, "leave", leave)}
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{})
	smp := NewSampler(time.Time{}, UserHZ, c)
	if _, err := smp.Sweep(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	if err := leave.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = leave.Wait()
	res, err := smp.Sweep(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	noReportErrors(t, res)
	if n := frameOf(t, res, "leave").Values.Len(); n != 0 {
		t.Errorf("exited workload has %d values, want none", n)
	}
	if !frameOf(t, res, "stay").Values.Has(CPUUserSec) || !frameOf(t, res, "stay").Values.Has(CtxVoluntary) {
		t.Error("the workload that stayed lacks its counters")
	}
	if st := c.Stats(); st.Gone != 1 || st.Processes != 2 {
		t.Errorf("Stats = %+v, want 1 of 2 gone", st)
	}
}

func TestProcCollectorPIDReused(t *testing.T) {
	p := testload.Start(t, "sleep", nil)
	w := realWorkload(t, "reused", p)
	w.Procs[0].StartTime++ // a different process once had this PID
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{})
	s := NewSample(time.Now(), []workload.Workload{w})
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if n := values(t, s, p.Process.Pid).Len(); n != 0 {
		t.Errorf("process with another start time has %d values, want none", n)
	}
	if st := c.Stats(); st.Gone != 1 {
		t.Errorf("Stats = %+v, want it gone", st)
	}
}

// TestProcCtxSwitchesPerTask checks on this kernel that
// /proc/PID/status context switches are the main thread's only, so that
// the collector's sum over task/* exceeds them for a multi-threaded process.
func TestProcCtxSwitchesPerTask(t *testing.T) {
	p := testload.Start(t, "threads", []string{"SCULPT_TESTLOAD_THREADS=8"})
	pid := p.Process.Pid
	if !testload.WaitThreads(pid, 9, 5*time.Second) {
		t.Fatal("threads testload did not start its threads")
	}
	time.Sleep(100 * time.Millisecond) // let every thread block once
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	main, err := parseStatus(b)
	if err != nil || !main.HasCtx {
		t.Fatalf("parse main status: %+v, %v", main, err)
	}
	w := realWorkload(t, "threads", p)
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{})
	s := NewSample(time.Now(), []workload.Workload{w})
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	v := values(t, s, pid)
	if n, _ := v.Get(Threads); n < 9 {
		t.Fatalf("threads = %g, want >= 9", n)
	}
	sum, ok := v.Get(CtxVoluntary)
	if !ok || sum <= float64(main.VolCtx) {
		t.Errorf("voluntary switches over all tasks = %g, main thread's = %d: want the sum larger", sum, main.VolCtx)
	}
	if ts, _ := v.Get(Timeslices); ts < 9 {
		t.Errorf("timeslices over all tasks = %g, want at least one per thread", ts)
	}
}

func BenchmarkProcCollectorSweep(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint("sleep-", n), func(b *testing.B) {
			var ws []workload.Workload
			for i := 0; i < n; i++ {
				cmd := exec.Command("/bin/sleep", "3600")
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				ws = append(ws, realWorkload(b, fmt.Sprint("sleep-", i), cmd))
			}
			smp := NewSampler(time.Time{}, UserHZ, NewProcCollector(host.DefaultRoots(), ProcOptions{}))
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := smp.Sweep(ctx, ws); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/proc")
		})
	}
}

// BenchmarkProcFileRead measures reading (open, read, close; no parsing)
// each file of one sleeping process with the collector's reader, to show
// where a sweep's time goes.
func BenchmarkProcFileRead(b *testing.B) {
	cmd := exec.Command("/bin/sleep", "3600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := newProcReader()
	dirfd, err := openat(unix.AT_FDCWD, []byte(fmt.Sprintf("/proc/%d\x00", cmd.Process.Pid)), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closeFD(dirfd) })
	for _, name := range []string{"stat", "status", "schedstat", "sched", "io", "smaps_rollup", "numa_maps"} {
		b.Run(name, func(b *testing.B) {
			path := []byte(name + "\x00")
			for b.Loop() {
				if _, err := r.read(dirfd, path, name != "numa_maps"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
