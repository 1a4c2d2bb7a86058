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
	allWorkloads := writeConfig("workloads.yaml", "protected:\n  workloads: [\"*\"]\n")
	cg, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", child))
	if err != nil {
		t.Fatal(err)
	}
	var childCgroup string // its v2 path, else its first v1 path
	for _, l := range strings.Split(strings.TrimSpace(string(cg)), "\n") {
		if f := strings.SplitN(l, ":", 3); len(f) == 3 && (childCgroup == "" || f[0] == "0") {
			childCgroup = f[2]
		}
	}
	byCgroup := writeConfig("cgroups.yaml", fmt.Sprintf("protected:\n  cgroups: [%q]\n", childCgroup))
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
		{[]string{"act", "pin", "--pid", strconv.Itoa(child), "--cpus", "0", "--config", allWorkloads}, `matches protected workload "*": protected.workloads`},
		{[]string{"act", "pin", "--pid", strconv.Itoa(child), "--cpus", "0", "--config", byCgroup}, "protected.cgroups"},
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

// TestActRefusesProtectedCgroup: an action on a cgroup the config protects
// is refused, one on the same cgroup without that config is not.
func TestActRefusesProtectedCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a cgroup")
	}
	root := host.DefaultRoots().Cgroup
	mount := root // cgroup2; else the v1 cpu hierarchy
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		mount = filepath.Join(root, "cpu")
	}
	name := fmt.Sprintf("sculpt-act-guard-%d", os.Getpid())
	if err := os.Mkdir(filepath.Join(mount, name), 0o755); err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	t.Cleanup(func() { _ = os.Remove(filepath.Join(mount, name)) })
	dir := t.TempDir()
	jp := filepath.Join(dir, "journal.json")
	args := []string{"act", "weight", "--cgroup", "/" + name, "--weight", "200", "--journal", jp}
	code, _, stderr := actCLI(t, args...)
	if code != 0 {
		t.Skipf("the backend cannot set a CPU weight on %s here: exit %d: %s", name, code, stderr)
	}
	if code, _, stderr := actCLI(t, "revert", "--journal", jp); code != 0 {
		t.Fatalf("revert: exit %d: %s", code, stderr)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("protected:\n  cgroups: [\"/"+name+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = actCLI(t, append(args, "--config", cfg)...)
	if code != 2 || !strings.Contains(stderr, "refused: cgroup /"+name+" is in protected cgroup /"+name+": protected.cgroups") {
		t.Errorf("weight on a protected cgroup: exit %d, %q", code, stderr)
	}
}
