package telemetry

import (
	"context"
	"errors"
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
	"sculpt/internal/workload"
)

// rewrite replaces old with new in the fixture file path.
func rewrite(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestProcCollectorIdleSkip changes a process's stat between sweeps without
// changing its schedstat run time: the collector re-emits the old values
// (the process did not run) until the refresh cadence or a new run time
// makes it read stat again. With the idle skip off it reads every sweep.
func TestProcCollectorIdleSkip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		pid    string
		key    workload.Proc
		sched  string // a schedstat file whose run time is changed
		oldRun string
	}{
		{"single-threaded", "100", proc(100, 5000), "100/schedstat", "1500000000 "},
		{"multi-threaded", "200", proc(200, 6000), "200/task/201/schedstat", "2000000000 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			roots := copyTree(t, tc.pid)
			dir := filepath.Join(roots.Proc, tc.pid)
			c := NewProcCollector(roots, ProcOptions{SmapsEvery: -1, NUMAEvery: -1, IdleRefreshEvery: 4})
			ws := []workload.Workload{{ID: "a", Procs: []workload.Proc{tc.key}}}
			user := func() (float64, ProcStats) {
				t.Helper()
				s := NewSample(time.Now(), ws)
				if err := c.Collect(context.Background(), s); err != nil {
					t.Fatal(err)
				}
				v, ok := values(t, s, tc.key.PID).Get(CPUUserSec)
				if !ok {
					t.Fatal("cpu_user_seconds absent")
				}
				return v, c.Stats()
			}
			first, _ := user()
			// A multi-threaded process is only compared per thread from
			// its second read on (the first learns it has threads).
			if tc.pid == "200" {
				user()
			}
			u0, _ := user()
			statPath := filepath.Join(dir, "stat")
			b, _ := os.ReadFile(statPath)
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
			f[11] = strconv.Itoa(12345) // utime
			if err := os.WriteFile(statPath, []byte(string(b[:strings.LastIndexByte(string(b), ')')+1])+" "+strings.Join(f, " ")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			got, st := user()
			if got != u0 || st.Idle != 1 {
				t.Fatalf("run time unchanged: cpu_user = %v (idle %d), want the re-emitted %v (first %v) and 1 idle", got, st.Idle, u0, first)
			}
			rewrite(t, filepath.Join(roots.Proc, tc.sched), tc.oldRun, "7"+tc.oldRun)
			got, st = user()
			if got != 123.45 || st.Idle != 0 {
				t.Fatalf("run time changed: cpu_user = %v (idle %d), want 123.45 read afresh", got, st.Idle)
			}
			// Idle again: the refresh cadence (4) reads stat within 4 sweeps.
			f[11] = "20000"
			if err := os.WriteFile(statPath, []byte(string(b[:strings.LastIndexByte(string(b), ')')+1])+" "+strings.Join(f, " ")+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			refreshed := 0
			for i := 1; i <= 4 && refreshed == 0; i++ {
				if got, _ = user(); got == 200 {
					refreshed = i
				}
			}
			if refreshed == 0 {
				t.Errorf("stat not re-read within 4 idle sweeps (IdleRefreshEvery 4)")
			}
		})
	}
}

// TestProcCollectorIdleSkipOff reads every file every sweep.
func TestProcCollectorIdleSkipOff(t *testing.T) {
	roots := copyTree(t, "100")
	c := NewProcCollector(roots, ProcOptions{IdleRefreshEvery: -1})
	ws := []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(100, 5000)}}}
	for i := 0; i < 2; i++ {
		if i == 1 {
			rewrite(t, filepath.Join(roots.Proc, "100", "status"), "voluntary_ctxt_switches:\t11", "voluntary_ctxt_switches:\t99")
		}
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			wantValues(t, "second sweep", values(t, s, 100), map[Metric]float64{CtxVoluntary: 99})
			if st := c.Stats(); st.Idle != 0 {
				t.Errorf("Idle = %d with the idle skip off", st.Idle)
			}
		}
	}
}

// heldOf counts this process's open descriptors of /proc/PID or files in it.
func heldOf(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	dir := "/proc/" + strconv.Itoa(pid)
	n := 0
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && (l == dir || strings.HasPrefix(l, dir+"/")) {
			n++
		}
	}
	return n
}

// TestProcCollectorIdleReal sweeps a real sleeping process: from the second
// sweep on it is idle (only schedstat read) with the same values. A busy
// process, swept after its run time moved, is not.
func TestProcCollectorIdleReal(t *testing.T) {
	sleeper := exec.Command("/bin/sleep", "3600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	busy := exec.Command("/bin/sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{SmapsEvery: -1, NUMAEvery: -1, IdleRefreshEvery: 1000})
	// The sleeper may still be starting: sweep until it is idle once.
	ws := []workload.Workload{realWorkload(t, "sleep", sleeper)}
	var last Values
	idle := 0
	for i := 0; i < 1000 && idle < 3; i++ {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v := *values(t, s, sleeper.Process.Pid)
		if c.Stats().Idle == 1 {
			if idle > 0 && v != last {
				t.Errorf("idle sweep %d: values changed", idle)
			}
			idle++
		}
		last = v
	}
	if idle < 3 {
		t.Fatal("a sleeping process was never idle")
	}

	ws = []workload.Workload{realWorkload(t, "busy", busy)}
	readRun := func() string {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(busy.Process.Pid) + "/schedstat")
		if err != nil {
			t.Fatal(err)
		}
		return strings.Fields(string(b))[0]
	}
	for i := 0; i < 3; i++ {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); i > 0 && st.Idle != 0 {
			t.Errorf("busy sweep %d: Idle = %d, want 0", i, st.Idle)
		}
		// Wait (on the event, not a time) for the busy loop's run time to move.
		for r := readRun(); readRun() == r; {
			time.Sleep(time.Millisecond)
		}
	}
}

// TestProcCollectorHeldFDs checks that the collector keeps a process's files
// open between sweeps, that a held file of a process that exited reads as
// gone (ESRCH), and that the files are closed when the process leaves the
// sample and by Close.
func TestProcCollectorHeldFDs(t *testing.T) {
	p := exec.Command("/bin/sleep", "3600")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Process.Kill(); _ = p.Wait() })
	pid := p.Process.Pid
	// The kernel behaviour the collector relies on: a held /proc/PID file
	// fails with ESRCH once its process is gone, whatever has the PID next.
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }()

	w := realWorkload(t, "p", p)
	c := NewProcCollector(host.DefaultRoots(), ProcOptions{})
	smp := NewSampler(time.Time{}, UserHZ, c)
	if _, err := smp.Sweep(context.Background(), []workload.Workload{w}); err != nil {
		t.Fatal(err)
	}
	// The test's own fd plus the directory and schedstat.
	if held, open := c.Stats().HeldFDs, heldOf(t, pid); held != 2 || open != 3 {
		t.Fatalf("HeldFDs = %d, descriptors of /proc/%d open = %d: want 2 held", held, pid, open)
	}
	if err := p.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Wait()
	buf := make([]byte, 4096)
	if _, err := unix.Pread(fd, buf, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pread of a held stat after exit: %v, want ESRCH", err)
	}
	res, err := smp.Sweep(context.Background(), []workload.Workload{w})
	if err != nil {
		t.Fatal(err)
	}
	if n := frameOf(t, res, "p").Values.Len(); n != 0 {
		t.Errorf("exited process has %d values, want none", n)
	}
	if st := c.Stats(); st.Gone != 1 || st.HeldFDs != 0 || heldOf(t, pid) != 1 {
		t.Errorf("after exit: %+v, %d descriptors of it open: want it gone and its files closed", st, heldOf(t, pid))
	}

	// Leaving the sample, and Close, close the files.
	q := exec.Command("/bin/sleep", "3600")
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Process.Kill(); _ = q.Wait() })
	wq := realWorkload(t, "q", q)
	for _, ws := range [][]workload.Workload{{wq}, nil} {
		if _, err := smp.Sweep(context.Background(), ws); err != nil {
			t.Fatal(err)
		}
	}
	if n := heldOf(t, q.Process.Pid); n != 0 || c.held != 0 {
		t.Errorf("process left the sample: %d of its descriptors open, held %d, want 0", n, c.held)
	}
	if _, err := smp.Sweep(context.Background(), []workload.Workload{wq}); err != nil {
		t.Fatal(err)
	}
	if err := smp.Close(); err != nil {
		t.Fatal(err)
	}
	if n := heldOf(t, q.Process.Pid); n != 0 || c.held != 0 {
		t.Errorf("after Close: %d of its descriptors open, held %d, want 0", n, c.held)
	}
}

// TestProcCollectorIdleSlowFiles checks that with IdleSlowFiles an idle
// process's smaps_rollup is not reread on its cadence, and is once the
// process has run; without it, the cadence holds.
func TestProcCollectorIdleSlowFiles(t *testing.T) {
	for _, slow := range []bool{true, false} {
		t.Run(fmt.Sprint("IdleSlowFiles=", slow), func(t *testing.T) {
			roots := copyTree(t, "100")
			dir := filepath.Join(roots.Proc, "100")
			c := NewProcCollector(roots, ProcOptions{SmapsEvery: 2, NUMAEvery: -1, IdleRefreshEvery: 1000, IdleSlowFiles: slow})
			ws := []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(100, 5000)}}}
			pss := func(sweep int) float64 {
				t.Helper()
				smaps := fmt.Sprintf("Pss: %d kB\nAnonymous: 1 kB\nSwap: 0 kB\n", sweep)
				if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(smaps), 0o644); err != nil {
					t.Fatal(err)
				}
				s := NewSample(time.Now(), ws)
				if err := c.Collect(context.Background(), s); err != nil {
					t.Fatal(err)
				}
				v, ok := values(t, s, 100).Get(PSSBytes)
				if !ok {
					t.Fatalf("sweep %d: pss absent", sweep)
				}
				return v / 1024
			}
			reread := false
			for sweep := 1; sweep <= 5; sweep++ {
				if got := pss(sweep); sweep > 1 && got == float64(sweep) {
					reread = true
				}
			}
			if reread == slow {
				t.Errorf("idle process: smaps_rollup reread within 5 sweeps (cadence 2) = %v, want %v", reread, !slow)
			}
			if !slow {
				return
			}
			rewrite(t, filepath.Join(dir, "schedstat"), "1500000000 ", "1600000000 ")
			if got := pss(6); got != 6 {
				t.Errorf("after the process ran: pss %v kB, want the reread 6", got)
			}
		})
	}
}

// TestProcCollectorIdleSlowRefresh checks that at the refresh of a process
// still idle with an unchanged VmRSS, smaps_rollup waits (for at most 4
// refreshes), and that a changed VmRSS has it read at that refresh.
func TestProcCollectorIdleSlowRefresh(t *testing.T) {
	roots := copyTree(t, "100")
	dir := filepath.Join(roots.Proc, "100")
	c := NewProcCollector(roots, ProcOptions{SmapsEvery: 1, NUMAEvery: -1, IdleRefreshEvery: 2, IdleSlowFiles: true})
	ws := []workload.Workload{{ID: "a", Procs: []workload.Proc{proc(100, 5000)}}}
	sweep := func(pss int) (float64, ProcStats) {
		t.Helper()
		smaps := fmt.Sprintf("Pss: %d kB\nAnonymous: 1 kB\nSwap: 0 kB\n", pss)
		if err := os.WriteFile(filepath.Join(dir, "smaps_rollup"), []byte(smaps), 0o644); err != nil {
			t.Fatal(err)
		}
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v, ok := values(t, s, 100).Get(PSSBytes)
		if !ok {
			t.Fatalf("pss %d: pss absent", pss)
		}
		return v / 1024, c.Stats()
	}
	if got, _ := sweep(1); got != 1 {
		t.Fatalf("first sweep: pss %v kB, want 1", got)
	}
	// Idle, same VmRSS: refreshes (stat read again) keep the old PSS until
	// the bound of 4 refreshes (8 sweeps) since it was read.
	refreshes, firstReread := 0, 0
	for i := 2; i <= 12 && firstReread == 0; i++ {
		got, st := sweep(i)
		if st.Reads.Stat > 0 {
			refreshes++
		}
		if got == float64(i) {
			firstReread = i
		} else if got != 1 {
			t.Fatalf("sweep %d: pss %v kB, want 1 or %d", i, got, i)
		}
	}
	if refreshes < 2 {
		t.Fatalf("only %d idle refreshes before smaps_rollup was reread at sweep %d", refreshes, firstReread)
	}
	if firstReread == 0 || firstReread > 10 {
		t.Fatalf("smaps_rollup of an idle process reread at sweep %d, want within 4 refreshes (by sweep 10)", firstReread)
	}
	// A changed VmRSS has it read at the next refresh (within 2 sweeps).
	rewrite(t, filepath.Join(dir, "status"), "VmRSS:", "VmRSS:\t 7777 kB\nVmXXX:")
	reread := false
	for i := 100; i < 102 && !reread; i++ {
		got, _ := sweep(i)
		reread = got == float64(i)
	}
	if !reread {
		t.Errorf("VmRSS changed: smaps_rollup not reread at the next refresh")
	}
}

// BenchmarkProcSweep1000 measures one steady-state sweep of the procfs
// collector over 1000 sleeping processes (run as root, with -benchtime).
func BenchmarkProcSweep1000(b *testing.B) {
	const n = 1000
	var cmds []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	s := &Sample{Procs: make(map[ProcKey]*ProcSample, n)}
	for range n {
		c := exec.Command("/bin/sleep", "3600")
		if err := c.Start(); err != nil {
			b.Skipf("start sleep: %v", err)
		}
		cmds = append(cmds, c)
		s.Procs[ProcKey{PID: c.Process.Pid}] = &ProcSample{}
	}
	c := NewProcCollector(host.DefaultRoots(), DefaultProcOptions())
	b.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	for range 40 {
		if err := c.Collect(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, ps := range s.Procs {
			ps.Values = Values{}
		}
		if err := c.Collect(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.Stats().Idle), "idle")
}
