package linux

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"

	"sculpt/internal/hal"
	"sculpt/internal/testload"
)

// cpuCgroupOf reads the v1 cpu cgroup of pid from /proc, independently of
// the code under test.
func cpuCgroupOf(t *testing.T, pid int) string { return testload.CgroupOf(t, pid, "cpu") }

// A process moved into a cgroup sculpt made forks a child there; undoing
// the move takes back the process, and the cgroup's removal (the create's
// undo) takes the child to the parent cgroup instead of failing with EBUSY.
func TestRemoveCgroupDrainsInheritedChildren(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups and move processes")
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cgroup.procs"); err != nil {
		t.Skip("needs the cgroup v1 cpu hierarchy at /sys/fs/cgroup/cpu: " + err.Error())
	}
	b, _ := newBackend(t)
	ctx := context.Background()
	f := startForker(t, false)
	pid := f.cmd.Process.Pid
	before := cpuCgroupOf(t, pid)
	cg := "/sculpt-w-test-drain-" + strconv.Itoa(os.Getpid())
	createUndo, err := b.Apply(ctx, hal.CreateCgroup{Cgroup: cg, Controllers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove("/sys/fs/cgroup/cpu" + cg) })
	moveUndo, err := b.Apply(ctx, hal.MoveToCgroup{PID: pid, Cgroup: cg, Controllers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	child := f.fork()
	if got := cpuCgroupOf(t, child); got != cg {
		t.Fatalf("child %d is in %q, want it to inherit %s", child, got, cg)
	}
	if _, err := b.Apply(ctx, moveUndo); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Apply(ctx, createUndo); err != nil {
		t.Fatalf("removing the cgroup with an inherited child in it: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu" + cg); !os.IsNotExist(err) {
		t.Errorf("cgroup still there: %v", err)
	}
	if got := cpuCgroupOf(t, pid); got != before {
		t.Errorf("process back in %q, want %q", got, before)
	}
	if got := cpuCgroupOf(t, child); got != "/" {
		t.Errorf("child in %q, want the parent cgroup /", got)
	}
}

// cpu.idle on a cgroup: set, read back by a snapshot of a process in it,
// and restored by the undo.
func TestCgroupCPUIdleAndUndo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	cg := "/sculpt-w-test-idle-" + strconv.Itoa(os.Getpid())
	dir := "/sys/fs/cgroup/cpu" + cg
	if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.idle"); err != nil {
		t.Skip("no cgroup v1 cpu hierarchy with cpu.idle (Linux 5.15+) at /sys/fs/cgroup/cpu: " + err.Error())
	}
	b, _ := newBackend(t)
	ctx := context.Background()
	createUndo, err := b.Apply(ctx, hal.CreateCgroup{Cgroup: cg, Controllers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(dir) })
	idle := true
	undo, err := b.Apply(ctx, hal.SetCgroupCPU{Cgroup: cg, Idle: &idle})
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		v, err := os.ReadFile(dir + "/cpu.idle")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(v))
	}
	if got := read(); got != "1" {
		t.Fatalf("cpu.idle %q after setting it, want 1", got)
	}
	if u, ok := undo.(hal.SetCgroupCPU); !ok || u.Idle == nil || *u.Idle {
		t.Fatalf("undo %v, want cpu.idle back to 0", undo)
	}
	if _, err := b.Apply(ctx, undo); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "0" {
		t.Errorf("cpu.idle %q after the undo, want 0", got)
	}
	if _, err := b.Apply(ctx, createUndo); err != nil {
		t.Fatal(err)
	}
}
