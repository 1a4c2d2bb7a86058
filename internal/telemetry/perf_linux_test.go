package telemetry

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

// loadProc describes a running process as a workload.Proc, reading its start
// time from /proc/PID/stat.
func loadProc(t *testing.T, pid int) workload.Proc {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("read stat of %d: %v", pid, err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatalf("start time of %d: %v", pid, err)
	}
	return workload.Proc{PID: pid, StartTime: st}
}

// loadWorkload makes a one-process workload of cmd.
func loadWorkload(t *testing.T, id string, cmd *exec.Cmd) workload.Workload {
	t.Helper()
	return workload.Workload{ID: id, Procs: []workload.Proc{loadProc(t, cmd.Process.Pid)}}
}

func newTestPerf(t *testing.T, opts PerfOptions) *PerfCollector {
	t.Helper()
	opts.Roots = host.DefaultRoots()
	opts.Software = true
	c, err := NewPerfCollector(opts)
	if err != nil {
		t.Skipf("perf unavailable: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Without Software the collector opens no software event: on a machine
// without a PMU it is not supported (saying why), with one it counts only
// hardware events.
func TestPerfSoftwareOffByDefault(t *testing.T) {
	roots := host.DefaultRoots()
	if !probeStatus(roots, SourcePerfSoftware).Available {
		t.Skip("perf_event_open unavailable here")
	}
	c, err := NewPerfCollector(PerfOptions{Roots: roots})
	if !probeStatus(roots, SourcePerfHardware).Available {
		var ns *NotSupportedError
		if !errors.As(err, &ns) || !strings.Contains(err.Error(), "software events off") {
			t.Fatalf("no PMU, software off: %v, %v; want a NotSupportedError saying why", c, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	for _, e := range c.Stats().Events {
		for _, k := range perfSoftwareEvents {
			if e == k.name {
				t.Errorf("software event %s counted without Software", e)
			}
		}
	}
}

func perfSweep(t *testing.T, c *PerfCollector, ws []workload.Workload) *Sample {
	t.Helper()
	s := NewSample(time.Now(), ws)
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return s
}

func procValue(s *Sample, w workload.Workload, m Metric) (float64, bool) {
	p := w.Procs[0]
	ps := s.Procs[ProcKey{p.PID, p.StartTime}]
	if ps == nil {
		return 0, false
	}
	return ps.Get(m)
}

func TestParsePerfGroup(t *testing.T) {
	enc := func(us ...uint64) []byte {
		b := make([]byte, 8*len(us))
		for i, u := range us {
			binary.NativeEndian.PutUint64(b[8*i:], u)
		}
		return b
	}
	vals := make([]float64, 4)
	n, err := parsePerfGroup(enc(2, 100, 50, 10, 20), vals)
	if err != nil || n != 2 || vals[0] != 20 || vals[1] != 40 {
		t.Errorf("multiplexed half the time: n=%d vals=%v err=%v, want 20, 40", n, vals, err)
	}
	n, _ = parsePerfGroup(enc(1, 100, 0, 10), vals)
	if n != 1 || vals[0] != 0 {
		t.Errorf("never ran: %v, want 0", vals[0])
	}
	if _, err := parsePerfGroup(enc(3, 1, 1, 5), vals); err == nil {
		t.Error("truncated group read accepted")
	}
}

func TestPerfCPULoad(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	cmd := testload.Start(t, "cpu", nil)
	w := loadWorkload(t, "spin", cmd)
	ws := []workload.Workload{w}
	// Open counters, then take the baseline a sweep later: a new thread
	// counts from the sweep that first sees it, and the Go runtime of the
	// load starts its threads in its first moments.
	perfSweep(t, c, ws)
	time.Sleep(200 * time.Millisecond)
	s1 := perfSweep(t, c, ws)
	cpu1 := statCPUSec(t, cmd.Process.Pid)
	// The machine is shared: wait until the spinner has had 0.4 s of CPU by
	// its own /proc/PID/stat, then compare perf's task-clock to that.
	var cpu2 float64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if cpu2 = statCPUSec(t, cmd.Process.Pid); cpu2-cpu1 >= 0.4 {
			break
		}
	}
	s2 := perfSweep(t, c, ws)
	v1, ok1 := procValue(s1, w, PerfTaskClockSec)
	v2, ok2 := procValue(s2, w, PerfTaskClockSec)
	if !ok1 || !ok2 || v2-v1 < 0.3 || v2-v1 < 0.7*(cpu2-cpu1) {
		t.Errorf("task-clock grew %v s (present %v %v) while /proc/PID/stat CPU grew %v s: want > 0.3 s and about the same", v2-v1, ok1, ok2, cpu2-cpu1)
	}
	for _, m := range []Metric{PerfCtxSwitches, PerfCPUMigrations, PerfPageFaults} {
		if _, ok := procValue(s2, w, m); !ok {
			t.Errorf("%s absent", m)
		}
	}
	if !probeStatus(host.DefaultRoots(), SourcePerfHardware).Available {
		if v, ok := procValue(s2, w, PerfCycles); ok {
			t.Errorf("cycles = %v without a PMU, want absent", v)
		}
	}
	if st := c.Stats(); st.Processes != 1 || st.OpenFDs < 4 || st.Threads < 1 {
		t.Errorf("stats = %+v", st)
	}
}

func TestPerfPipeContextSwitches(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	a, b := startPipePair(t)
	ws := []workload.Workload{loadWorkload(t, "a", a), loadWorkload(t, "b", b)}
	s1 := perfSweep(t, c, ws)
	v1, _ := procValue(s1, ws[0], PerfCtxSwitches)
	// Sweep until the ping-pong shows up (the machine may be busy), not for a set time.
	var v2 float64
	ok := false
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if v2, ok = procValue(perfSweep(t, c, ws), ws[0], PerfCtxSwitches); ok && v2-v1 >= 200 {
			break
		}
	}
	if !ok || v2-v1 < 200 {
		t.Errorf("context switches of a pipe ping-pong: %v -> %v, want at least 200 more", v1, v2)
	}
}

func TestPerfProcessKilledBetweenSweeps(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	cmd := testload.Start(t, "sleep", nil)
	w := loadWorkload(t, "victim", cmd)
	ws := []workload.Workload{w}
	perfSweep(t, c, ws)
	if c.Stats().Processes != 1 {
		t.Fatalf("stats after first sweep: %+v", c.Stats())
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	s := perfSweep(t, c, ws) // fails the test on error
	if _, ok := procValue(s, w, PerfTaskClockSec); ok {
		t.Error("a killed process still has perf values")
	}
	if st := c.Stats(); st.Processes != 0 || st.OpenFDs != 0 {
		t.Errorf("fds of a killed process kept: %+v", st)
	}
}

func TestPerfMaxFDsSkips(t *testing.T) {
	c := newTestPerf(t, PerfOptions{MaxFDs: 4 * len(perfSoftwareEvents)})
	cmd := testload.Start(t, "threads", []string{"SCULPT_TESTLOAD_THREADS=8"})
	if !testload.WaitThreads(cmd.Process.Pid, 8, 5*time.Second) {
		t.Fatal("threads load did not start its threads")
	}
	w := loadWorkload(t, "many", cmd)
	s := perfSweep(t, c, []workload.Workload{w})
	if _, ok := procValue(s, w, PerfTaskClockSec); ok {
		t.Error("process over the fd cap has perf values, want absent")
	}
	if st := c.Stats(); st.SkippedProcesses != 1 || st.OpenFDs != 0 {
		t.Errorf("stats = %+v, want 1 skipped process and no fds", st)
	}
}

func TestPerfCloseLeavesNoFDs(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	ws := []workload.Workload{loadWorkload(t, "spin", testload.Start(t, "cpu", nil))}
	perfSweep(t, c, ws)
	if n := countPerfFDs(t); n == 0 {
		t.Fatal("no perf fds open after a sweep: the check below would prove nothing")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := countPerfFDs(t); n != 0 {
		t.Errorf("%d perf fds left after Close", n)
	}
}

func countPerfFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == "anon_inode:[perf_event]" {
			n++
		}
	}
	return n
}

// startPipePair starts two pipe-mode loads ping-ponging over two pipes
// (a reads p1 and writes p2; b reads p2 and writes p1) and closes the test's
// own copies of the pipe ends.
func startPipePair(t *testing.T) (a, b *exec.Cmd) {
	t.Helper()
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	a = testload.Start(t, "pipe", []string{"SCULPT_TESTLOAD_FIRST=1"}, r1, w2)
	b = testload.Start(t, "pipe", nil, r2, w1)
	for _, f := range []*os.File{r1, w1, r2, w2} {
		_ = f.Close() // the children hold their own copies
	}
	return a, b
}

// statCPUSec reads utime+stime of pid in seconds (USER_HZ 100).
func statCPUSec(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100
}

// perfChurnEnv makes the test binary a process whose extra thread, once a
// byte arrives on stdin, spins for 0.5 s of its own CPU time and exits.
const perfChurnEnv = "SCULPT_PERFTEST_CHURN"

func init() {
	if os.Getenv(perfChurnEnv) == "1" {
		perfThreadChurn()
	}
}

func perfThreadChurn() {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fmt.Println(unix.Gettid())
		var b [1]byte
		_, _ = os.Stdin.Read(b[:])
		var ts unix.Timespec
		for ts.Nano() < 5e8 {
			_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		}
		close(done)
	}()
	<-done
	for {
		time.Sleep(time.Hour)
	}
}

// TestPerfExitedThreadKeepsCounts shows that the counts of a thread that
// exits between two sweeps stay in its process's total.
func TestPerfExitedThreadKeepsCounts(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), perfChurnEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var tid int
	if _, err := fmt.Fscan(stdout, &tid); err != nil {
		t.Fatalf("read tid of the churning thread: %v", err)
	}
	w := loadWorkload(t, "churn", cmd)
	ws := []workload.Workload{w}
	s1 := perfSweep(t, c, ws) // opens counters on every thread, the churner included
	if _, err := stdin.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	taskDir := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(tid)
	gone := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(taskDir); errors.Is(err, os.ErrNotExist) {
			gone = true
			break
		}
	}
	if !gone {
		t.Fatalf("thread %d did not exit", tid)
	}
	s2 := perfSweep(t, c, ws)
	v1, _ := procValue(s1, w, PerfTaskClockSec)
	v2, ok := procValue(s2, w, PerfTaskClockSec)
	if !ok || v2-v1 < 0.45 {
		t.Errorf("task-clock %v -> %v after a thread spun 0.5 s and exited: want >= 0.45 s more", v1, v2)
	}
}

// The idle skip keys on the sample's RunTimeSec: an unchanged run time
// re-emits the last sums (even though this spinner ran meanwhile, which
// proves no read happened), a changed one reads the counters again.
func TestPerfIdleSkipKeysOnRunTime(t *testing.T) {
	c := newTestPerf(t, PerfOptions{})
	cmd := testload.Start(t, "cpu", nil)
	w := loadWorkload(t, "spin", cmd)
	ws := []workload.Workload{w}
	key := ProcKey{w.Procs[0].PID, w.Procs[0].StartTime}
	sweep := func(run float64) *Sample {
		s := NewSample(time.Now(), ws)
		s.Procs[key].Set(RunTimeSec, run)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatalf("collect: %v", err)
		}
		return s
	}
	s1 := sweep(1)
	v1, ok := procValue(s1, w, PerfTaskClockSec)
	if !ok || c.Stats().Idle != 0 {
		t.Fatalf("first sweep: task-clock present %v, stats %+v", ok, c.Stats())
	}
	cpu1 := statCPUSec(t, cmd.Process.Pid)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && statCPUSec(t, cmd.Process.Pid)-cpu1 < 0.1; {
		time.Sleep(50 * time.Millisecond)
	}
	s2 := sweep(1)
	if v2, ok := procValue(s2, w, PerfTaskClockSec); !ok || v2 != v1 || c.Stats().Idle != 1 {
		t.Errorf("same run time: task-clock %v (present %v), want the last %v re-emitted; stats %+v", v2, ok, v1, c.Stats())
	}
	for _, m := range []Metric{PerfCtxSwitches, PerfCPUMigrations, PerfPageFaults} {
		if a, b := s1.Procs[key].Values, s2.Procs[key].Values; !b.Has(m) || a.v[m] != b.v[m] {
			t.Errorf("%s not re-emitted: %v -> %v", m, a.v[m], b.v[m])
		}
	}
	s3 := sweep(2)
	// The process ran ~0.1 s meanwhile: a fresh read shows more task-clock
	// (how much more depends on the load; that it moved proves the read).
	if v3, _ := procValue(s3, w, PerfTaskClockSec); v3 <= v1 || c.Stats().Idle != 0 {
		t.Errorf("changed run time: task-clock %v -> %v, want read afresh (it ran ~0.1 s); stats %+v", v1, v3, c.Stats())
	}
}

// Behind the procfs collector, as in NewDefaultSampler, a process that
// sleeps is not read again, and one killed after being skipped loses its
// counters as any other.
func TestPerfIdleSkipBehindProcfs(t *testing.T) {
	pc := newTestPerf(t, PerfOptions{})
	cmd := exec.Command("/bin/sleep", "3600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	w := loadWorkload(t, "sleeper", cmd)
	proc := NewProcCollector(host.DefaultRoots(), DefaultProcOptions())
	t.Cleanup(func() { _ = proc.Close() })
	smp := NewSampler(time.Time{}, UserHZ, proc, pc)
	ws := []workload.Workload{w}
	// sleep may still be starting during the first sweeps: sweep until it
	// is idle (a loaded machine delays it, never for long).
	for i := 0; i < 100 && (i < 2 || pc.Stats().Idle == 0); i++ {
		if i >= 2 {
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := smp.Sweep(context.Background(), ws); err != nil {
			t.Fatal(err)
		}
	}
	if st := pc.Stats(); st.Idle != 1 || st.Processes != 1 {
		t.Errorf("stats after sweeps of a sleeping process = %+v, want it idle and counted", st)
	}
	res, err := smp.Sweep(context.Background(), ws)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := res.Frames[0].Values.Get(PerfTaskClockSec); !ok {
		t.Error("task-clock absent from the frame of a skipped process, want a delta of 0")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := smp.Sweep(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	if st := pc.Stats(); st.Processes != 0 || st.OpenFDs != 0 {
		t.Errorf("fds of a killed process kept: %+v", st)
	}
}
