package main

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sculpt/internal/host"
)

// cliEnv makes the test binary run sculpt's command line (TestMain), so a
// test can start sculpt as a real child of a shell.
const cliEnv = "SCULPT_TEST_CLI"

// sessionCgroup creates an empty cgroup for a shell session, as a process
// API or a login manager would: in the unified hierarchy when there is one,
// else in the v1 memory hierarchy (as this project's CI shells are). It
// returns the cgroup's directory and its path in its hierarchy.
func sessionCgroup(t *testing.T) (string, string) {
	t.Helper()
	root := host.DefaultRoots().Cgroup
	mount := root
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		mount = filepath.Join(root, "memory")
		if _, err := os.Stat(filepath.Join(mount, "cgroup.procs")); err != nil {
			t.Skipf("neither a cgroup2 root at %s nor a v1 memory hierarchy: %v", root, err)
		}
	}
	name := fmt.Sprintf("sculpt-session-%d-%08x", os.Getpid(), rand.Uint32())
	dir := filepath.Join(mount, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	t.Cleanup(func() {
		// Its processes are killed by now; wait for them to leave.
		var err error
		for range 100 {
			if err = os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Errorf("remove test cgroup %s: %v", dir, err)
	})
	return dir, "/" + name
}

// TestRunSessionSplitsShellPrograms: from one shell session (one shared
// cgroup), a shell starts a TCP service with its client, a CPU spinner and
// sculpt in advise mode. The service and the spinner are workloads of their
// own (process trees named by their root), each gets an arrangement from
// the default rules, and the shell's cgroup, which holds only the shell, is
// excluded as sculpt's ancestor and the terminal says so once.
func TestRunSessionSplitsShellPrograms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup and read other processes' telemetry")
	}
	dir, cgPath := sessionCgroup(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "sculpt.out")
	// The stand-in shell waits to be moved into the session cgroup, then
	// starts everything from there, as one types it at a prompt.
	script := `read go
SCULPT_TESTLOAD=sockserver "$EXE" & echo server $!
sleep 0.3
SCULPT_TESTLOAD=sockclient "$EXE" & echo client $!
SCULPT_TESTLOAD=cpu GOMAXPROCS=1 "$EXE" & echo spinner $!
sleep 0.5
` + cliEnv + `=1 "$EXE" run --mode advise --interval 1s --for 7s >"$OUT" 2>&1
echo sculpt $?
kill $(jobs -p) 2>/dev/null
wait
`
	sh := exec.Command("sh", "-c", script)
	sh.Env = append(os.Environ(), "EXE="+exe, "OUT="+out, "SCULPT_TESTLOAD_ADDR="+freeAddr(t))
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sh.Stderr = os.Stderr
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	t.Cleanup(func() {
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		_ = sh.Process.Kill()
		_ = sh.Wait()
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(sh.Process.Pid)), 0o644); err != nil {
		t.Fatalf("move the shell (pid %d) into %s: %v", sh.Process.Pid, dir, err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	code := -1
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var what string
		var n int
		if _, err := fmt.Sscan(sc.Text(), &what, &n); err != nil {
			t.Fatalf("shell said %q: %v", sc.Text(), err)
		}
		if what == "sculpt" {
			code = n
			break
		}
		pids[what] = n
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if code != 0 {
		t.Fatalf("sculpt run --mode advise: exit %d\n%s", code, text)
	}

	// The programs started from the shell are trees of their own, each
	// with an arrangement from the default rules.
	treeOf := func(pid int) string {
		t.Helper()
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			t.Fatalf("pid %d: %v", pid, err)
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		return "tree:" + strconv.Itoa(pid) + "@" + f[19] // field 22
	}
	for _, c := range []struct {
		what  string
		rules []string
	}{
		{"server", []string{"latency-critical-service-small", "latency-critical-service"}},
		{"spinner", []string{"batch-idle-small", "cpu-bound-batch"}},
	} {
		id := treeOf(pids[c.what])
		var got []string
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, "("+id+"): rule ") {
				got = append(got, line)
			}
		}
		if len(got) == 0 {
			t.Errorf("no arrangement proposed for the %s (%s):\n%s", c.what, id, text)
			continue
		}
		found := false
		for _, r := range c.rules {
			found = found || strings.Contains(got[len(got)-1], ": rule "+r+" ")
		}
		if !found {
			t.Errorf("the %s (%s) got %q, want one of the rules %v", c.what, id, got[len(got)-1], c.rules)
		}
	}

	// The shell's cgroup holds the shell only, and is said once to be
	// excluded as sculpt's ancestor.
	shellLine := fmt.Sprintf("excluded: sh (%s) (cg:%s): never touched: holds PID %d (sh), which started sculpt", filepath.Base(cgPath), cgPath, sh.Process.Pid)
	if n := strings.Count(text, shellLine); n != 1 {
		t.Errorf("the terminal says %d times %q, want once:\n%s", n, shellLine, text)
	}
	if !strings.Contains(text, "protected.ancestors") {
		t.Errorf("the exclusion does not name protected.ancestors:\n%s", text)
	}
	if strings.Contains(text, "(cg:"+cgPath+"): rule") {
		t.Errorf("the shell's cgroup got an arrangement:\n%s", text)
	}
}
