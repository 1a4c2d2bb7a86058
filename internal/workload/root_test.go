package workload

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// spawnEnv makes a test binary started by TestMain start that many children
// (each a testload "sleep"), write their PIDs to fd 3 and then run its own
// testload mode.
const spawnEnv = "SCULPT_WORKLOAD_SPAWN"

// maybeSpawn runs in TestMain before testload.MaybeRun.
func maybeSpawn() {
	n, err := strconv.Atoi(os.Getenv(spawnEnv))
	if err != nil || n < 1 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "spawn:", err)
		os.Exit(1)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, spawnEnv+"=") && !strings.HasPrefix(kv, testload.Env+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, testload.Env+"=sleep")
	var pids []string
	for i := 0; i < n; i++ {
		cmd := exec.Command(exe)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "spawn:", err)
			os.Exit(1)
		}
		pids = append(pids, strconv.Itoa(cmd.Process.Pid))
	}
	out := os.NewFile(3, "pids")
	_, _ = fmt.Fprintln(out, strings.Join(pids, " "))
	_ = out.Close()
}

// startTree starts a testload process with n children and returns its PID
// and theirs.
func startTree(t *testing.T, n int) (int, []int) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Close() }()
	// Become the children's reaper once their parent is killed, so that
	// they do not linger as zombies of PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	var kids []int
	t.Cleanup(func() { // after the parent is killed (cleanups run last-in first-out)
		for _, pid := range kids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	})
	parent := testload.Start(t, "sleep", []string{spawnEnv + "=" + strconv.Itoa(n)}, w)
	_ = w.Close()
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("read children of pid %d: %v", parent.Process.Pid, err)
	}
	for _, f := range strings.Fields(line) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("child pid %q: %v", f, err)
		}
		kids = append(kids, pid)
	}
	return parent.Process.Pid, kids
}

func startTime(t *testing.T, pid int) uint64 {
	t.Helper()
	p, err := procfs.NewProc(pid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := p.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return st.Starttime
}

func TestRealPIDTree(t *testing.T) {
	parent, kids := startTree(t, 2)
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	ws, err := d.Discover(Selector{PIDs: []int{parent}})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Sorted(slices.Values(append([]int{parent}, kids...)))
	if len(ws) != 1 || !slices.Equal(ws[0].PIDs(), want) {
		t.Fatalf("Discover(PIDs %d) = %v, want one workload of %v", parent, summary(ws), want)
	}
	wantID := fmt.Sprintf("tree:%d@%d", parent, startTime(t, parent))
	if ws[0].ID != wantID || ws[0].Kind != KindTree {
		t.Errorf("ID %s kind %s, want %s tree", ws[0].ID, ws[0].Kind, wantID)
	}

	// The ID holds across sweeps while the process lives.
	again, err := d.Discover(Selector{PIDs: []int{parent}})
	if err != nil {
		t.Fatal(err)
	}
	if again[0].ID != wantID {
		t.Errorf("second sweep ID %s, want %s", again[0].ID, wantID)
	}

	// A child alone.
	ws, err = d.Discover(Selector{PIDs: []int{kids[1]}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || !slices.Equal(ws[0].PIDs(), []int{kids[1]}) {
		t.Errorf("Discover(PIDs %d) = %v", kids[1], summary(ws))
	}

	// With All the three stay together in one workload, whatever grouped them.
	ws, err = d.Discover(Selector{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var holder string
	for _, w := range ws {
		for _, pid := range want {
			if slices.Contains(w.PIDs(), pid) {
				if holder != "" && holder != w.ID {
					t.Errorf("pid %d in %s, its parent in %s", pid, w.ID, holder)
				}
				holder = w.ID
			}
		}
	}
	if holder == "" {
		t.Errorf("the tree of pid %d is in no workload", parent)
	}
}

func TestRealAllExcludes(t *testing.T) {
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	ws, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Skipped(); len(s) != 0 {
		t.Errorf("Skipped() = %v, want none on a real /proc", s)
	}
	seen := map[int]bool{}
	for _, w := range ws {
		for _, p := range w.Procs {
			if seen[p.PID] {
				t.Errorf("pid %d in two workloads", p.PID)
			}
			seen[p.PID] = true
			if p.PID == os.Getpid() {
				t.Errorf("sculpt itself (pid %d) in workload %s", p.PID, w.ID)
			}
			proc, err := procfs.NewProc(p.PID)
			if err != nil {
				continue // exited since
			}
			st, err := proc.Stat()
			if err != nil {
				continue
			}
			if st.Flags&pfKthread != 0 || st.PPID == 2 {
				t.Errorf("kernel thread %d (%s) in workload %s", p.PID, st.Comm, w.ID)
			}
		}
	}
	if !seen[1] {
		t.Errorf("PID 1 is in no workload")
	}
	if seen[2] {
		t.Errorf("kthreadd is in a workload")
	}
}

func TestRealErrors(t *testing.T) {
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if err != nil {
		t.Fatal(err)
	}
	pidMax, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// PIDs are below pid_max: this one cannot exist.
	_, err = d.Discover(Selector{PIDs: []int{pidMax}})
	if !errors.Is(err, ErrNoSuchProcess) || err.Error() != fmt.Sprintf("pid %d: no such process", pidMax) {
		t.Errorf("pid %d: error %v, want \"pid %d: no such process\"", pidMax, err, pidMax)
	}
	for _, pid := range []int{2, os.Getpid()} {
		if _, err := d.Discover(Selector{PIDs: []int{pid}}); !errors.Is(err, ErrExcluded) {
			t.Errorf("pid %d: error %v, want ErrExcluded", pid, err)
		}
	}
	name := fmt.Sprintf("/sculpt-no-such-%d", rand.Int64())
	for _, cg := range []string{name, "/sys/fs/cgroup/cpu" + name, "/sys/fs/cgroup/unified" + name} {
		_, err := d.Discover(Selector{Cgroups: []string{cg}})
		if !errors.Is(err, ErrNoSuchCgroup) || !strings.Contains(err.Error(), cg) {
			t.Errorf("cgroup %s: error %v, want ErrNoSuchCgroup naming it", cg, err)
		}
	}

	// A process that has exited is no longer found.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), testload.Env+"=sleep")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if _, err := d.Discover(Selector{PIDs: []int{pid}}); err != nil {
		t.Fatalf("live pid %d: %v", pid, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := d.Discover(Selector{PIDs: []int{pid}}); !errors.Is(err, ErrNoSuchProcess) {
		t.Errorf("exited pid %d: error %v, want ErrNoSuchProcess", pid, err)
	}
}

// v1Hierarchy returns the cgroup v1 cpu hierarchy's mount, or skips.
func v1Hierarchy(t *testing.T, controller string) string {
	t.Helper()
	dir := filepath.Join(host.DefaultRoots().Cgroup, controller)
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		t.Skipf("no cgroup v1 %s hierarchy at %s: %v", controller, dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.controllers")); err == nil {
		t.Skipf("%s is cgroup2, not a v1 %s hierarchy", dir, controller)
	}
	if os.Geteuid() != 0 {
		t.Skip("creating a cgroup needs root")
	}
	return dir
}

func TestRealV1Cgroup(t *testing.T) {
	mount := v1Hierarchy(t, "cpu")
	name := fmt.Sprintf("sculpt-test-%d-%d", os.Getpid(), rand.Uint32())
	dir := filepath.Join(mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	cmd := testload.Start(t, "sleep", nil)
	pid := cmd.Process.Pid
	t.Cleanup(func() { // runs before the process is killed and the cgroup removed
		_ = os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, dir, err)
	}

	d := NewDiscoverer(host.DefaultRoots(), Options{})
	wantID := "cg:/" + name
	for _, sel := range []string{dir, "/" + name} {
		ws, err := d.Discover(Selector{Cgroups: []string{sel}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 1 || ws[0].ID != wantID || !slices.Equal(ws[0].PIDs(), []int{pid}) {
			t.Errorf("Discover(Cgroups %s) = %v, want %s with pid %d only", sel, summary(ws), wantID, pid)
			continue
		}
		if ws[0].Cgroups.V1["cpu"] != "/"+name {
			t.Errorf("cpu cgroup %q, want /%s", ws[0].Cgroups.V1["cpu"], name)
		}
	}

	// All groups it by its cpu cgroup, unless the unified or systemd
	// hierarchy already places it somewhere more specific.
	ws, err := d.Discover(Selector{All: true})
	if err != nil {
		t.Fatal(err)
	}
	var got *Workload
	for i := range ws {
		if slices.Contains(ws[i].PIDs(), pid) {
			got = &ws[i]
		}
	}
	if got == nil {
		t.Fatalf("pid %d in no workload", pid)
	}
	own := cgroupFile(t, pid)
	if (own.hasV2 && own.v2 != "/") || sdPath(own) != "/" {
		t.Skipf("pid %d is placed by its v2 or systemd cgroup (%s): cpu cgroup grouping not testable here", pid, got.ID)
	}
	if got.ID != wantID || got.Kind != KindCgroup || got.Name != filepath.Base(os.Args[0])+" ("+name+")" || !slices.Equal(got.PIDs(), []int{pid}) {
		t.Errorf("All: pid %d in %s %s %q %v, want %s cgroup %q [%d]", pid, got.ID, got.Kind, got.Name, got.PIDs(), wantID, name, pid)
	}
}

func cgroupFile(t *testing.T, pid int) *cgInfo {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseCgroupFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return newCgInfo(entries)
}

func sdPath(ci *cgInfo) string {
	if p, ok := ci.lookup(keySystemd); ok {
		return p
	}
	return "/"
}

// TestRealChurn discovers while processes start and exit: a process that
// vanishes between listing /proc and reading its files is skipped silently.
func TestRealChurn(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(done)
		for i := 0; i < 200; i++ {
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), testload.Env+"=sleep")
			if err := cmd.Start(); err != nil {
				t.Errorf("start: %v", err)
				return
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	sweeps := 0
	for running := true; running; sweeps++ {
		select {
		case <-done:
			running = false
		default:
		}
		if _, err := d.Discover(Selector{All: true}); err != nil {
			t.Fatalf("sweep %d: %v", sweeps, err)
		}
		if s := d.Skipped(); len(s) != 0 {
			t.Fatalf("sweep %d skipped %v: a vanished process must not be reported", sweeps, s)
		}
	}
	wg.Wait()
	t.Logf("%d sweeps", sweeps)
}

func TestFixtureVanishedBetweenReads(t *testing.T) {
	// stat readable, cgroup file gone: the process exited between the reads.
	d, _ := newFixture(t, []fproc{
		{pid: 10, ppid: 1, comm: "a", start: 1, cgroup: v2only("/x")},
		{pid: 11, ppid: 1, comm: "gone", start: 2},
	})
	ws, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ws); !slices.Equal(got, []string{`cg:/x cgroup "a (x)" [10]`}) || len(d.Skipped()) != 0 {
		t.Errorf("workloads %v skipped %v, want only cg:/x and nothing skipped", got, d.Skipped())
	}
}

// TestRealPIDReuse makes the kernel give an exited process's PID to a new
// one (through /proc/sys/kernel/ns_last_pid) between two sweeps of the same
// Discoverer: the files it held open for the old process must not stand in
// for the new one.
func TestRealPIDReuse(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep binary: %v", err)
	}
	const lastPID = "/proc/sys/kernel/ns_last_pid"
	if _, err := os.Stat(lastPID); err != nil {
		t.Skipf("cannot choose PIDs: %v", err)
	}
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	defer func() { _ = d.Close() }()
	old := exec.Command(os.Args[0])
	old.Env = append(os.Environ(), testload.Env+"=sleep")
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	pid := old.Process.Pid
	ws, err := d.Discover(Selector{PIDs: []int{pid}})
	if err != nil {
		t.Fatal(err)
	}
	oldID := ws[0].ID
	_ = old.Process.Kill()
	_ = old.Wait()

	var reused *exec.Cmd
	for attempt := 0; attempt < 50 && reused == nil; attempt++ {
		if err := os.WriteFile(lastPID, []byte(strconv.Itoa(pid-1)), 0o644); err != nil {
			t.Skipf("write %s: %v", lastPID, err)
		}
		c := exec.Command(sleep, "600")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		if c.Process.Pid == pid {
			reused = c
			break
		}
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	if reused == nil {
		t.Skipf("another process kept taking pid %d", pid)
	}
	defer func() {
		_ = reused.Process.Kill()
		_ = reused.Wait()
	}()
	ws, err = d.Discover(Selector{PIDs: []int{pid}})
	if err != nil {
		t.Fatal(err)
	}
	wantID := fmt.Sprintf("tree:%d@%d", pid, startTime(t, pid))
	if ws[0].ID != wantID || ws[0].Procs[0].Comm != "sleep" {
		t.Errorf("after pid %d was reused: %s comm %q, want %s comm sleep (old ID %s)", pid, ws[0].ID, ws[0].Procs[0].Comm, wantID, oldID)
	}
}
