package linux

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// Re-executed as a testload workload (memory_test.go does the same; a
// second call never runs because the first does not return in a workload).
func init() { testload.MaybeRun() }

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes thread affinities, scheduling and cgroups")
	}
}

// newBackend opens a journal in a temp dir and a backend on the real roots.
func newBackend(t testing.TB) (*Backend, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	b, err := New(host.DefaultRoots(), Options{Journal: j})
	if err != nil {
		t.Fatal(err)
	}
	return b, j
}

func needCPUs(t testing.TB, n int) {
	t.Helper()
	data, _ := os.ReadFile("/sys/devices/system/cpu/online")
	cpus, _ := parseList(strings.TrimSpace(string(data)))
	if len(cpus) < n {
		t.Skipf("needs %d online CPUs, this machine has %d", n, len(cpus))
	}
}

// statusField reads one field of /proc/PID/task/TID/status, independently
// of the code under test.
func statusField(t *testing.T, pid, tid int, field string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in status of tid %d", field, tid)
	return ""
}

// taskStat reads nice (field 19) and policy (field 41) of a thread from
// /proc/PID/task/TID/stat.
func taskStat(t *testing.T, pid, tid int) (nice, policy int) {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	nice, _ = strconv.Atoi(f[19-3])
	policy, _ = strconv.Atoi(f[41-3])
	return nice, policy
}

func tasks(t *testing.T, pid int) []int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		out = append(out, n)
	}
	return out
}

func startThreads(t testing.TB, n int) int {
	t.Helper()
	cmd := testload.Start(t, "threads", []string{"SCULPT_TESTLOAD_THREADS=" + strconv.Itoa(n)})
	if !testload.WaitThreads(cmd.Process.Pid, n+1, 10*time.Second) {
		t.Fatalf("testload threads never reached %d threads", n+1)
	}
	return cmd.Process.Pid
}

func TestPinSchedRevertRestoresEachThread(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	pid := startThreads(t, 20)
	tids := tasks(t, pid)
	// Give two threads an arrangement of their own, so the revert has to
	// restore per thread, not one value for all.
	odd, niced := tids[3], tids[5]
	if err := unix.SchedSetaffinity(odd, cpuSet([]int{1})); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setpriority(unix.PRIO_PROCESS, niced, 3); err != nil {
		t.Fatal(err)
	}
	b, j := newBackend(t)
	ctx := context.Background()
	before, err := b.Snapshot(ctx, []int{pid})
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Processes) != 1 || len(before.Processes[0].Threads) < 21 {
		t.Fatalf("snapshot before: %+v", before)
	}

	undo, err := b.Apply(ctx, hal.PinThreads{PID: pid, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if pin, ok := undo.(hal.PinThreads); !ok || !slices.Equal(pin.Threads[odd], []int{1}) {
		t.Errorf("undo %v does not hold thread %d's own mask 1", undo, odd)
	}
	for _, tid := range tasks(t, pid) {
		if got := statusField(t, pid, tid, "Cpus_allowed_list"); got != "0" {
			t.Errorf("tid %d Cpus_allowed_list = %q after pin, want 0", tid, got)
		}
	}
	nice := 5
	if _, err := b.Apply(ctx, hal.SetSched{PID: pid, Policy: hal.PolicyBatch, Nice: &nice}); err != nil {
		t.Fatal(err)
	}
	for _, tid := range tasks(t, pid) {
		if n, p := taskStat(t, pid, tid); n != 5 || p != unix.SCHED_BATCH {
			t.Errorf("tid %d nice %d policy %d, want 5 and SCHED_BATCH", tid, n, p)
		}
	}
	if es := j.Entries(); len(es) != 2 || es[0].State != journal.Applied || es[1].State != journal.Applied || es[0].Process.PID != pid {
		t.Fatalf("journal after two actions: %+v", es)
	}

	steps, err := b.Revert(ctx, j)
	if err != nil {
		t.Fatalf("revert: %v (%+v)", err, steps)
	}
	if len(steps) != 2 || steps[0].Status != Restored || !strings.Contains(steps[0].Action, "batch") {
		t.Errorf("revert steps (newest first): %+v", steps)
	}
	after, err := b.Snapshot(ctx, []int{pid})
	if err != nil {
		t.Fatal(err)
	}
	// A thread that existed before must be back exactly; one the Go
	// runtime of the load started since gets the main thread's original
	// state, which is what a revert gives a thread it has no record of.
	was := map[int]hal.ThreadState{}
	for _, th := range before.Processes[0].Threads {
		was[th.TID] = th
	}
	for _, th := range after.Processes[0].Threads {
		want, ok := was[th.TID]
		if !ok {
			want = was[pid]
			want.TID = th.TID
		}
		if fmt.Sprint(th) != fmt.Sprint(want) {
			t.Errorf("thread after revert %v, want %v", th, want)
		}
	}
	if got := statusField(t, pid, odd, "Cpus_allowed_list"); got != "1" {
		t.Errorf("odd thread back to %q, want its own 1", got)
	}
	if n, _ := taskStat(t, pid, niced); n != 3 {
		t.Errorf("niced thread back to nice %d, want 3", n)
	}
	if j.Len() != 0 {
		t.Errorf("journal holds %d entries after revert", j.Len())
	}
	if _, err := os.Stat(j.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal file left after a full revert: %v", err)
	}
}

func cpusetV1(t *testing.T, b *Backend) {
	t.Helper()
	if h, ok := b.hier["cpuset"]; !ok || h.v2 {
		t.Skip("needs a cgroup v1 cpuset hierarchy")
	}
}

func procCgroupLine(t *testing.T, pid int, ctrl string) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	return parseProcCgroup(data)[ctrl]
}

func TestCpusetCgroupCreateMoveChangeRevert(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	b, j := newBackend(t)
	cpusetV1(t, b)
	ctx := context.Background()
	cmd := testload.Start(t, "sleep", nil)
	pid := cmd.Process.Pid
	cg := fmt.Sprintf("/sculpt-test-%d", os.Getpid())
	dir := filepath.Join(b.hier["cpuset"].dir, cg)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for i := 0; i < 50 && os.Remove(dir) != nil && fileExists(dir); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	origCG := procCgroupLine(t, pid, "cpuset")

	for _, a := range []hal.Action{
		hal.CreateCgroup{Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.MoveToCgroup{PID: pid, Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.SetCpuset{Cgroup: cg, CPUs: []int{1}},
	} {
		if _, err := b.Apply(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if got := procCgroupLine(t, pid, "cpuset"); got != cg {
		t.Fatalf("process in %q, want %q", got, cg)
	}
	if got := statusField(t, pid, pid, "Cpus_allowed_list"); got != "1" {
		t.Errorf("Cpus_allowed_list %q after cpuset.cpus=1", got)
	}
	// The process is alone in its cpuset: a pin narrows the cgroup too.
	undo, err := b.Apply(ctx, hal.PinThreads{PID: pid, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := readCgroupFile(dir, "cpuset.cpus"); v != "0" {
		t.Errorf("cgroup cpuset.cpus = %q after a pin of its only process, want 0", v)
	}
	if s, ok := undo.(hal.Steps); !ok || len(s.Steps) != 2 {
		t.Errorf("pin undo %v, want a cpuset restore then a thread restore", undo)
	}
	steps, err := b.Revert(ctx, j)
	if err != nil {
		t.Fatalf("revert: %v\n%+v", err, steps)
	}
	if len(steps) != 4 {
		t.Errorf("revert steps %+v, want 4", steps)
	}
	if got := procCgroupLine(t, pid, "cpuset"); got != origCG {
		t.Errorf("process in %q after revert, want %q", got, origCG)
	}
	if fileExists(dir) {
		t.Errorf("cgroup %s still there after revert", dir)
	}
	if got := statusField(t, pid, pid, "Cpus_allowed_list"); got != "0-1" {
		t.Errorf("Cpus_allowed_list %q after revert, want 0-1", got)
	}
}

func TestSharedCpusetIsNotNarrowed(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	b, j := newBackend(t)
	cpusetV1(t, b)
	ctx := context.Background()
	cg := fmt.Sprintf("/sculpt-shared-%d", os.Getpid())
	dir := filepath.Join(b.hier["cpuset"].dir, cg)
	c1, c2 := testload.Start(t, "sleep", nil), testload.Start(t, "sleep", nil)
	t.Cleanup(func() {
		_ = c1.Process.Kill()
		_ = c2.Process.Kill()
		_ = c1.Wait()
		_ = c2.Wait()
		for i := 0; i < 50 && os.Remove(dir) != nil && fileExists(dir); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	for _, a := range []hal.Action{
		hal.CreateCgroup{Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.MoveToCgroup{PID: c1.Process.Pid, Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.MoveToCgroup{PID: c2.Process.Pid, Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.PinThreads{PID: c1.Process.Pid, CPUs: []int{1}},
	} {
		if _, err := b.Apply(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	if v, _ := readCgroupFile(dir, "cpuset.cpus"); v != "0-1" {
		t.Errorf("shared cgroup's cpuset.cpus = %q, want it left at 0-1", v)
	}
	if got := statusField(t, c2.Process.Pid, c2.Process.Pid, "Cpus_allowed_list"); got != "0-1" {
		t.Errorf("the other process's affinity changed to %q", got)
	}
	if _, err := b.Revert(ctx, j); err != nil {
		t.Fatal(err)
	}
}

func TestTargetExitsBetweenRecordAndApply(t *testing.T) {
	needRoot(t)
	for _, a := range []func(pid int) hal.Action{
		func(pid int) hal.Action { return hal.PinThreads{PID: pid, CPUs: []int{0}} },
		func(pid int) hal.Action { return hal.SetSched{PID: pid, Policy: hal.PolicyIdle} },
	} {
		b, j := newBackend(t)
		cmd := testload.Start(t, "sleep", nil)
		pid := cmd.Process.Pid
		recorded := 0
		b.pause = func(stage string) {
			if stage != "recorded" {
				return
			}
			recorded = j.Len()
			_ = cmd.Process.Kill()
			_ = cmd.Wait() // reaped: /proc/PID is gone
		}
		_, err := b.Apply(context.Background(), a(pid))
		if !errors.Is(err, hal.ErrGone) {
			t.Errorf("%s on a process that exited: err = %v, want hal.ErrGone", a(pid), err)
		}
		if recorded != 1 {
			t.Errorf("journal held %d entries while the change ran, want 1 (written before)", recorded)
		}
		if j.Len() != 0 {
			t.Errorf("journal holds %+v after a failed action that changed nothing", j.Entries())
		}
		// The journal on disk agrees and reopens.
		_ = j.Close()
		j2, err := journal.Open(j.Path())
		if err != nil || j2.Len() != 0 {
			t.Errorf("reopen: %v, %d entries", err, j2.Len())
		}
		_ = j2.Close()
	}
}

func TestRevertSkipsGoneProcess(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	b, j := newBackend(t)
	cmd := testload.Start(t, "sleep", nil)
	if _, err := b.Apply(context.Background(), hal.PinThreads{PID: cmd.Process.Pid, CPUs: []int{1}}); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	steps, err := b.Revert(context.Background(), j)
	if err != nil {
		t.Fatalf("revert with a gone process: %v", err)
	}
	if len(steps) != 1 || steps[0].Status != Skipped || !strings.Contains(steps[0].Note, "exited") {
		t.Errorf("steps %+v, want one skipped with a note", steps)
	}
}

func TestRevertSkipsReusedPID(t *testing.T) {
	needRoot(t)
	b, j := newBackend(t)
	cmd := testload.Start(t, "sleep", nil)
	pid := cmd.Process.Pid
	id, err := processIdentity(b.roots, pid)
	if err != nil {
		t.Fatal(err)
	}
	id.StartTime-- // as if the PID had belonged to an earlier process
	if _, err := j.Record(journal.Entry{Action: hal.PinThreads{PID: pid, CPUs: []int{0}}, Undo: hal.PinThreads{PID: pid, CPUs: []int{0}}, Process: &id}); err != nil {
		t.Fatal(err)
	}
	before := statusField(t, pid, pid, "Cpus_allowed_list")
	steps, err := b.Revert(context.Background(), j)
	if err != nil || len(steps) != 1 || steps[0].Status != Skipped || !strings.Contains(steps[0].Note, "another process") {
		t.Fatalf("revert = %+v, %v; want skipped as reused", steps, err)
	}
	if got := statusField(t, pid, pid, "Cpus_allowed_list"); got != before {
		t.Errorf("the new owner of pid %d was changed: %q -> %q", pid, before, got)
	}
}

func TestCheckRejectsBadInput(t *testing.T) {
	b, err := New(host.DefaultRoots(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		a     hal.Action
		field string
		want  string
	}{
		{hal.PinThreads{PID: os.Getpid(), CPUs: []int{4095}}, "cpus", "not online"},
		{hal.PinThreads{PID: os.Getpid()}, "cpus", "at least one CPU"},
		{hal.PinThreads{PID: 1 << 30, CPUs: []int{0}}, "pid", "no such process"},
		{hal.SetSched{PID: os.Getpid(), Policy: "bacth"}, "policy", "other, batch or idle"},
		{hal.SetCpuset{Cgroup: "/", Mems: []int{7}}, "mems", "no memory"},
		{hal.SetCpuset{Cgroup: "/sculpt-none", CPUs: []int{0}}, "cgroup", "no such cgroup"},
	}
	for _, c := range cases {
		err := b.Check(c.a)
		var ie *hal.InvalidError
		if !errors.As(err, &ie) || ie.Field != c.field || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%s) = %v, want an InvalidError on %s saying %q", c.a, err, c.field, c.want)
		}
	}
}

func TestErrorsNamePathAndValue(t *testing.T) {
	needRoot(t)
	b, _ := newBackend(t)
	cpusetV1(t, b)
	// EINVAL from the kernel: a CPU that does not exist, on a real cpuset.
	dir := filepath.Join(b.hier["cpuset"].dir, fmt.Sprintf("sculpt-einval-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.Remove(dir) }()
	err := writeCgroupFile(dir, "cpuset.cpus", "1-0")
	want := fmt.Sprintf(`write "1-0" to %s/cpuset.cpus: invalid argument`, dir)
	if err == nil || err.Error() != want || !errors.Is(err, unix.EINVAL) {
		t.Errorf("err = %v, want %q wrapping EINVAL", err, want)
	}
	// EPERM: an immutable file refuses writes even to root.
	f := filepath.Join(t.TempDir(), "knob")
	if err := os.WriteFile(f, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+i", f).CombinedOutput(); err != nil {
		t.Skipf("chattr +i unavailable here: %v %s", err, out)
	}
	defer func() { _ = exec.Command("chattr", "-i", f).Run() }()
	err = writeCgroupFile(filepath.Dir(f), "knob", "2")
	want = fmt.Sprintf(`write "2" to %s: operation not permitted`, f)
	if err == nil || err.Error() != want || !errors.Is(err, unix.EPERM) {
		t.Errorf("err = %v, want %q wrapping EPERM", err, want)
	}
}

func TestPinKernelThreadNamesTIDAndCPUs(t *testing.T) {
	needRoot(t)
	pid := 0
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if comm, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(comm)) == "ksoftirqd/0" {
			pid, _ = strconv.Atoi(e.Name())
		}
	}
	if pid == 0 {
		t.Skip("no ksoftirqd/0 (a per-CPU kernel thread) to try")
	}
	b, j := newBackend(t)
	_, err := b.Apply(context.Background(), hal.PinThreads{PID: pid, CPUs: []int{0}})
	want := fmt.Sprintf("sched_setaffinity tid %d of pid %d to CPUs 0: invalid argument", pid, pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
	if j.Len() != 0 {
		t.Errorf("journal keeps %d entries of a refused pin", j.Len())
	}
}

// BenchmarkPin200Threads is the time to pin every thread of a 200-thread
// process, alternating CPU 0 and all CPUs: "journaled" as `sculpt act pin`
// does it (record with fsync, change, mark applied with fsync; the journal
// is emptied between iterations, untimed, so each pin starts from one
// entry), and "direct" without a journal (read every mask, set every mask).
func BenchmarkPin200Threads(b *testing.B) {
	needRoot(b)
	pid := startThreads(b, 200)
	for _, journaled := range []bool{true, false} {
		name := "direct"
		if journaled {
			name = "journaled"
		}
		b.Run(name, func(b *testing.B) {
			be, j := newBackend(b)
			if !journaled {
				be.SetJournal(nil)
			}
			all := keys(be.online)
			slices.Sort(all)
			ctx := context.Background()
			i := 0
			for b.Loop() {
				cpus := all
				if i%2 == 0 {
					cpus = all[:1]
				}
				i++
				if _, err := be.Apply(ctx, hal.PinThreads{PID: pid, CPUs: cpus}); err != nil {
					b.Fatal(err)
				}
				if journaled {
					b.StopTimer()
					_ = j.Clear()
					b.StartTimer()
				}
			}
		})
	}
}

// A thread created after a pin that widens its own affinity (as some
// runtimes do) stays inside the pin when the process has its own cpuset
// cgroup: the kernel intersects the request with the cpuset.
func TestThreadsCreatedAfterPinFollowInCgroup(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("needs python3 to start threads on demand")
	}
	b, j := newBackend(t)
	cpusetV1(t, b)
	dir := t.TempDir()
	flag, done, ready := filepath.Join(dir, "go"), filepath.Join(dir, "done"), filepath.Join(dir, "ready")
	script := `
import os, threading, time
open(READY, "w").close()
while not os.path.exists(FLAG): time.sleep(0.01)
def widen():
    os.sched_setaffinity(0, range(os.cpu_count()))
    time.sleep(1000)
for _ in range(4): threading.Thread(target=widen, daemon=True).start()
time.sleep(0.2)
open(DONE, "w").close()
time.sleep(1000)
`
	cmd := exec.Command(py, "-c", fmt.Sprintf("FLAG=%q\nDONE=%q\nREADY=%q\n%s", flag, done, ready, script))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Python's start-up may run short-lived helper processes; moved with it
	// they would share its cpuset, which sculpt then rightly leaves alone.
	// Wait until it runs the script.
	for i := 0; i < 1000 && !fileExists(ready); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !fileExists(ready) {
		t.Fatal("python never started the script")
	}
	cg := fmt.Sprintf("/sculpt-follow-%d", os.Getpid())
	cgdir := filepath.Join(b.hier["cpuset"].dir, cg)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		for i := 0; i < 50 && os.Remove(cgdir) != nil && fileExists(cgdir); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	})
	ctx := context.Background()
	for _, a := range []hal.Action{
		hal.CreateCgroup{Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.MoveToCgroup{PID: pid, Cgroup: cg, Controllers: []string{"cpuset"}},
		hal.PinThreads{PID: pid, CPUs: []int{1}},
	} {
		if _, err := b.Apply(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	// The pin narrowed the process's own cpuset (it is alone in it): that
	// is what makes later threads follow.
	if got, err := os.ReadFile(filepath.Join(cgdir, "cpuset.cpus")); err != nil || strings.TrimSpace(string(got)) != "1" {
		procs, _ := os.ReadFile(filepath.Join(cgdir, "cgroup.procs"))
		t.Fatalf("cpuset.cpus of %s after the pin: %q, %v; want 1 (/proc/%d/cgroup: %s; cgroup.procs %q)", cg, got, err, pid, procCgroupLine(t, pid, "cpuset"), procs)
	}
	n := len(tasks(t, pid))
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && !fileExists(done); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if !fileExists(done) {
		t.Fatal("python never started its threads")
	}
	all := tasks(t, pid)
	if len(all) < n+4 {
		t.Fatalf("%d threads after the start, want at least %d", len(all), n+4)
	}
	for _, tid := range all {
		if got := statusField(t, pid, tid, "Cpus_allowed_list"); got != "1" {
			cpus, _ := os.ReadFile(filepath.Join(cgdir, "cpuset.cpus"))
			t.Errorf("tid %d allowed %q, want 1 (the pinned cpuset; its cpuset.cpus now %q, /proc/%d/cgroup cpuset %s)", tid, got, strings.TrimSpace(string(cpus)), pid, procCgroupLine(t, pid, "cpuset"))
		}
	}
	if _, err := b.Revert(ctx, j); err != nil {
		t.Fatal(err)
	}
}

// TestDeleteVNICRefusesPhysical: sculpt never deletes an interface it could
// not recreate; deleting lo is refused with EPERM and nothing is journaled.
func TestDeleteVNICRefusesPhysical(t *testing.T) {
	needRoot(t)
	b, j := newBackend(t)
	_, err := b.Apply(context.Background(), hal.DeleteVNIC{Name: "lo"})
	if !errors.Is(err, unix.EPERM) {
		t.Fatalf("delete lo: err = %v, want EPERM", err)
	}
	if j.Len() != 0 {
		t.Errorf("journal holds %d entries after a refused delete", j.Len())
	}
	if ok, err := VNICExists("", "lo"); err != nil || !ok {
		t.Errorf("lo exists = %v, %v after the refused delete", ok, err)
	}
}
