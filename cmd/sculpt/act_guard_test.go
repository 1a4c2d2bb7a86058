package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sculpt/internal/host"
	"sculpt/internal/workload"
)

// firstKernelThread finds a kernel thread other than kthreadd (PID 2) by
// its stat flags (PF_KTHREAD), independently of discovery.
func firstKernelThread(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 2 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if flags, err := strconv.ParseUint(f[9-3], 10, 64); err == nil && flags&0x00200000 != 0 {
			return pid
		}
	}
	t.Skip("no kernel thread besides kthreadd is visible in /proc")
	return 0
}

// TestActRefusesWhatRunNeverTouches: `sculpt act` refuses, with exit 2, a
// message naming why, and nothing journaled, every target the engine's
// guard excludes; a process the guard allows goes through to the backend.
func TestActRefusesWhatRunNeverTouches(t *testing.T) {
	dir := t.TempDir()
	jp := filepath.Join(dir, "journal.json")
	child := startThreadsLoad(t, 1)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", child))
	if err != nil {
		t.Fatal(err)
	}
	ancestors, err := workload.Ancestors(host.DefaultRoots(), os.Getpid())
	if err != nil || len(ancestors) == 0 {
		t.Fatalf("ancestors of the test: %v %v", ancestors, err)
	}
	writeConfig := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	byPID := writeConfig("pids.yaml", fmt.Sprintf("protected:\n  pids: [%d]\n", child))
	byName := writeConfig("names.yaml", fmt.Sprintf("protected:\n  names: [%q]\n", strings.TrimSpace(string(comm))))
	open := writeConfig("open.yaml", "protected:\n  ancestors: false\n")
	kthread := firstKernelThread(t)

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"act", "pin", "--pid", "1", "--cpus", "0"}, "pid 1 "},
		{[]string{"act", "pin", "--pid", "1", "--cpus", "0"}, "PID 1, the init process"},
		{[]string{"act", "sched", "--pid", "2", "--policy", "batch"}, "pid 2 is a kernel thread"},
		{[]string{"act", "pin", "--pid", strconv.Itoa(kthread), "--cpus", "0"}, fmt.Sprintf("pid %d is a kernel thread", kthread)},
		{[]string{"act", "pin", "--pid", strconv.Itoa(os.Getpid()), "--cpus", "0"}, "is sculpt itself"},
		{[]string{"act", "pin", "--pid", strconv.Itoa(ancestors[0]), "--cpus", "0"}, "which started sculpt (your shell, terminal or supervisor): protected.ancestors"},
		{[]string{"act", "pin", "--pid", strconv.Itoa(child), "--cpus", "0", "--config", byPID}, "protected.pids"},
		{[]string{"act", "sched", "--pid", strconv.Itoa(child), "--policy", "batch", "--config", byName}, "protected.names"},
		// protected.ancestors: false lets act touch its shell, as run would;
		// PID 1 stays refused whatever the config says.
		{[]string{"act", "pin", "--pid", "1", "--cpus", "0", "--config", open}, "PID 1, the init process"},
	}
	for _, c := range cases {
		code, _, stderr := actCLI(t, append(c.args, "--journal", jp)...)
		if code != 2 || !strings.Contains(stderr, "refused: ") || !strings.Contains(stderr, c.want) {
			t.Errorf("sculpt %s: exit %d, stderr %q; want exit 2, refused, naming %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if _, err := os.Stat(jp); !os.IsNotExist(err) {
		t.Errorf("a refused action left a journal at %s (%v)", jp, err)
	}
	// Without the config that protects it, the same process is not refused
	// (the backend then applies, or, without root, fails on permission).
	code, _, stderr := actCLI(t, "act", "pin", "--pid", strconv.Itoa(child), "--cpus", "0", "--journal", jp)
	if strings.Contains(stderr, "refused: ") {
		t.Errorf("unprotected pid %d: exit %d, refused: %q", child, code, stderr)
	}
	if code == 0 {
		if code, _, stderr := actCLI(t, "revert", "--journal", jp); code != 0 {
			t.Errorf("revert: exit %d: %s", code, stderr)
		}
	}
}
