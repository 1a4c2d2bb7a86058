package testload

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Start re-executes the running test binary in the given mode, with extra
// environment ("K=V") and extra files (fd 3, 4, ...), and kills it when the
// test ends.
func Start(tb testing.TB, mode string, env []string, files ...*os.File) *exec.Cmd {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatalf("find test binary: %v", err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(append(os.Environ(), Env+"="+mode), env...)
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start testload %s: %v", mode, err)
	}
	tb.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// WaitThreads waits until pid has at least n threads and its thread count
// has then held still for a quarter of a second (the Go runtime of a test
// load starts a few threads of its own after the ones asked for), or the
// timeout passes, and reports whether it got there.
func WaitThreads(pid, n int, timeout time.Duration) bool {
	const settle = 250 * time.Millisecond
	deadline := time.Now().Add(timeout)
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
		if err == nil && len(ents) != last {
			last, since = len(ents), time.Now()
		}
		if last >= n && time.Since(since) >= settle {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last >= n
}

// CgroupOf reads the v1 cgroup of pid in controller ctrl's hierarchy from
// /proc/PID/cgroup, independently of the code under test ("" when the
// controller has no v1 hierarchy).
func CgroupOf(tb testing.TB, pid int, ctrl string) string {
	tb.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if p := strings.SplitN(l, ":", 3); len(p) == 3 && slices.Contains(strings.Split(p[1], ","), ctrl) {
			return p[2]
		}
	}
	return ""
}
