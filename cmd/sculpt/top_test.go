package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sculpt/internal/testload"
)

// tmux drives one tmux server of its own (-L), killed when the test ends.
type tmux struct {
	t      *testing.T
	socket string
}

func newTmux(t *testing.T) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("no tmux: apt-get install tmux (scripts/test.sh does)")
	}
	x := &tmux{t: t, socket: fmt.Sprintf("sculpt-test-%d", os.Getpid())}
	t.Cleanup(func() { _ = exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	return x
}

func (x *tmux) run(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", x.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// waitPane polls the pane until ok holds for what it shows, and returns it.
func (x *tmux) waitPane(what string, ok func(string) bool) string {
	x.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var pane string
	for time.Now().Before(deadline) {
		out, err := x.run("capture-pane", "-p", "-t", "top")
		if err != nil {
			x.t.Fatalf("capture-pane while waiting for %s: %v: %s", what, err, out)
		}
		if pane = out; ok(pane) {
			return pane
		}
		time.Sleep(200 * time.Millisecond)
	}
	x.t.Fatalf("the pane never showed %s; it shows:\n%s", what, pane)
	return ""
}

func (x *tmux) keys(keys ...string) {
	x.t.Helper()
	if out, err := x.run(append([]string{"send-keys", "-t", "top"}, keys...)...); err != nil {
		x.t.Fatalf("send-keys %q: %v: %s", keys, err, out)
	}
}

// TestTopInTmux runs `sculpt top` in a detached tmux session against a
// running sculpt (a unix socket) over two real workloads, reads the screen
// with capture-pane and types with send-keys: both workloads are listed by
// the IDs the API gives them, / filters down to one, enter opens its why
// (genes and the rule in force), esc goes back, s changes the sort, q
// quits.
func TestTopInTmux(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' telemetry")
	}
	x := newTmux(t)
	cpu := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	mem := testload.Start(t, "mem", nil)
	sock := filepath.Join(t.TempDir(), "sculpt.sock")
	c := startServing(t, sock, cpu.Process.Pid, mem.Process.Pid)
	spinner := workloadOf(t, c, cpu.Process.Pid).DNA
	streamer := workloadOf(t, c, mem.Process.Pid).DNA
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := fmt.Sprintf("env %s=1 %q top --server %q --refresh 300ms", cliEnv, exe, sock)
	if out, err := x.run("new-session", "-d", "-s", "top", "-x", "200", "-y", "40", cmd); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	x.waitPane("both workloads", func(p string) bool {
		return strings.Contains(p, spinner.ID) && strings.Contains(p, streamer.ID) && strings.Contains(p, "calm-down")
	})
	x.keys("/")
	x.keys("-l", spinner.ID)
	x.keys("Enter")
	pane := x.waitPane("only "+spinner.ID+" after filtering", func(p string) bool {
		return strings.Contains(p, "filter: "+spinner.ID) && strings.Contains(p, spinner.ID+" ") && !strings.Contains(p, streamer.ID)
	})
	if !strings.Contains(pane, spinner.Name) {
		t.Errorf("the filtered row does not name %s:\n%s", spinner.Name, pane)
	}
	x.keys("Enter")
	x.waitPane("the why of "+spinner.ID, func(p string) bool {
		return strings.Contains(p, "why "+spinner.ID) && strings.Contains(p, "genes: ") && strings.Contains(p, "cpu_util=") &&
			strings.Contains(p, "calm-down") && strings.Contains(p, "history (last")
	})
	x.keys("Escape")
	x.waitPane("the table again", func(p string) bool { return strings.Contains(p, "sort cpu_util") })
	x.keys("s")
	x.waitPane("the next sort", func(p string) bool { return strings.Contains(p, "sort rss_bytes") })
	x.keys("q")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := x.run("has-session", "-t", "top"); err != nil {
			break // sculpt top exited, and its session with it
		}
		if time.Now().After(deadline) {
			pane, _ := x.run("capture-pane", "-p", "-t", "top")
			t.Fatalf("q did not quit sculpt top:\n%s", pane)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
