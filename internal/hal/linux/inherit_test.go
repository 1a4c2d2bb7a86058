package linux

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/host"
	"sculpt/internal/testload"
)

func TestParseProcInfo(t *testing.T) {
	p, err := parseProcInfo([]byte("4242 (a b) c)) S 4200 4100 4000 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (procInfo{Comm: "a b) c)", State: 'S', PPid: 4200, Pgrp: 4100, Session: 4000, Start: 98765}); p != want {
		t.Errorf("parseProcInfo = %+v, want %+v", p, want)
	}
	for _, bad := range []string{"", "1 (x", "1 (x) S 1 2 3", "1 (x) S one 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1"} {
		if _, err := parseProcInfo([]byte(bad)); err == nil {
			t.Errorf("parseProcInfo(%q) accepted", bad)
		}
	}
}

// statLine renders a /proc/PID/stat line with the fields inheritors uses.
func statLine(pid int, state byte, p procInfo) string {
	return fmt.Sprintf("%d (load %d) %c %d %d %d 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 %d 1 1\n", pid, pid, state, p.PPid, p.Pgrp, p.Session, p.Start)
}

func TestScanProcsFixture(t *testing.T) {
	files := map[string]string{
		"proc/100/stat":  statLine(100, 'S', procInfo{PPid: 1, Pgrp: 100, Session: 100, Start: 500}),
		"proc/101/stat":  statLine(101, 'R', procInfo{PPid: 100, Pgrp: 100, Session: 100, Start: 600}),
		"proc/102/stat":  "garbage",                    // unreadable stat: left out
		"proc/self/stat": statLine(7, 'S', procInfo{}), // not a PID
		"proc/stat":      "cpu 1 2 3\n",
	}
	roots := fakeRoots(t, files)
	got, err := scanProcs(roots)
	if err != nil {
		t.Fatal(err)
	}
	want := procTable{
		100: {Comm: "load 100", State: 'S', PPid: 1, Pgrp: 100, Session: 100, Start: 500},
		101: {Comm: "load 101", State: 'R', PPid: 100, Pgrp: 100, Session: 100, Start: 600},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("scanProcs = %v, want %v", got, want)
	}
	roots.Proc += "/missing"
	if _, err := scanProcs(roots); err == nil || !strings.Contains(err.Error(), roots.Proc) {
		t.Errorf("scanProcs on a missing /proc: %v, want an error naming it", err)
	}
}

func TestInheritors(t *testing.T) {
	// The change was made to 100 at tick 1000. 100 is a session and group
	// leader; 200 is its child from before the change, 300 an unrelated
	// process.
	tree := procTable{
		1:   {State: 'S', PPid: 0, Pgrp: 1, Session: 1, Start: 1},
		100: {Comm: "load 100", State: 'S', PPid: 1, Pgrp: 100, Session: 100, Start: 500},
		101: {State: 'S', PPid: 100, Pgrp: 100, Session: 100, Start: 1000}, // forked the tick of the change
		102: {State: 'S', PPid: 101, Pgrp: 100, Session: 100, Start: 1100}, // grandchild
		103: {State: 'Z', PPid: 100, Pgrp: 100, Session: 100, Start: 1200}, // exited, not reaped
		200: {State: 'S', PPid: 100, Pgrp: 100, Session: 100, Start: 900},  // forked before the change
		201: {State: 'S', PPid: 200, Pgrp: 100, Session: 100, Start: 1300}, // its child: inherited from 200, not the change
		300: {State: 'S', PPid: 1, Pgrp: 300, Session: 300, Start: 1400},
		301: {State: 'S', PPid: 300, Pgrp: 300, Session: 300, Start: 1500},
		// Reparented after their parent (a child of 100) exited: only the
		// session and group say they descend from 100.
		400: {State: 'S', PPid: 1, Pgrp: 100, Session: 100, Start: 1600},
		401: {State: 'S', PPid: 400, Pgrp: 401, Session: 100, Start: 1700},
		402: {State: 'S', PPid: 1, Pgrp: 402, Session: 402, Start: 1800}, // left the session (setsid)
		// A cycle, as a torn read could show: not a descendant.
		500: {State: 'S', PPid: 501, Pgrp: 500, Session: 500, Start: 1900},
		501: {State: 'S', PPid: 500, Pgrp: 500, Session: 500, Start: 1900},
	}
	for _, tc := range []struct {
		name  string
		alive bool
		since uint64
		skip  []procKey
		want  []int
	}{
		{"alive: parent chains only", true, 1000, nil, []int{101, 102}},
		{"exited: group and session too", false, 1000, nil, []int{101, 102, 400, 401}},
		{"a grandchild whose parent predates the change: none", true, 1001, nil, nil},
		{"a process with its own entry is left to it; its children are not", true, 1000, []procKey{{101, 1000}}, []int{102}},
		{"skip matches pid and start time", true, 1000, []procKey{{101, 999}}, []int{101, 102}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skip := func(k procKey) bool { return slices.Contains(tc.skip, k) }
			if got := inheritors(tree, 100, tc.alive, tc.since, skip); !slices.Equal(got, tc.want) {
				t.Errorf("inheritors = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInheritanceOf(t *testing.T) {
	nice := 5
	cases := []struct {
		e    journal.Entry
		ok   bool
		want string
	}{
		{journal.Entry{Action: hal.PinThreads{PID: 9, CPUs: []int{0}},
			Undo: hal.Steps{Steps: []hal.Action{hal.SetCpuset{Cgroup: "/a", CPUs: []int{0, 1}}, hal.PinThreads{PID: 9, CPUs: []int{0, 1}, Threads: map[int][]int{9: {0, 1}}}}}},
			true, "pin [0] -> [0 1]"},
		{journal.Entry{Action: hal.SetSched{PID: 9, Policy: hal.PolicyBatch, Nice: &nice},
			Undo: hal.SetSched{PID: 9, Threads: map[int]hal.ThreadSched{11: {Policy: "idle"}, 10: {Policy: "other", Nice: 2}}}},
			true, "scheduling {batch 0 5} nice=true -> {other 0 2}"}, // main thread gone: lowest TID
		{journal.Entry{Action: hal.SetSched{PID: 9, Policy: hal.PolicyIdle},
			Undo: hal.SetSched{PID: 9, Threads: map[int]hal.ThreadSched{9: {Policy: "other", Nice: 1}, 10: {Policy: "idle"}}}},
			true, "scheduling {idle 0 0} nice=false -> {other 0 1}"},
		{journal.Entry{Action: hal.PinThreads{PID: 9, Threads: map[int][]int{9: {0}}}, Undo: hal.PinThreads{PID: 9, CPUs: []int{0}}}, false, ""},
		{journal.Entry{Action: hal.SetCpuset{Cgroup: "/a", CPUs: []int{0}}, Undo: hal.SetCpuset{Cgroup: "/a", CPUs: []int{0, 1}}}, false, ""},
	}
	for i, c := range cases {
		in, ok := inheritanceOf(c.e)
		got := ""
		if ok && in.what == "pin" {
			got = fmt.Sprintf("pin %v -> %v", in.cpus, in.origCPUs)
		} else if ok {
			got = fmt.Sprintf("scheduling %v nice=%v -> %v", in.sched, in.withNice, in.origSched)
		}
		if ok != c.ok || got != c.want {
			t.Errorf("case %d: inheritanceOf = %q, %v; want %q, %v", i, got, ok, c.want, c.ok)
		}
	}
}

func TestBootTicksMatchesStartTimes(t *testing.T) {
	before := bootTicks()
	cmd := testload.Start(t, "sleep", nil)
	id, err := processIdentity(host.DefaultRoots(), cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if id.StartTime < before {
		t.Errorf("a process started after bootTicks()=%d has start time %d: the clocks disagree", before, id.StartTime)
	}
	if after := bootTicks(); after < id.StartTime {
		t.Errorf("bootTicks() %d after a process started at %d", after, id.StartTime)
	}
}

// forker is a testload forker process: fork makes it start a child now.
type forker struct {
	cmd *exec.Cmd
	out *bufio.Scanner
	t   *testing.T
}

// startForker starts a testload forker; orphan keeps its children alive
// after it dies, and the forker leads its own process group.
func startForker(t *testing.T, orphan bool) *forker {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), testload.Env+"=forker")
	if orphan {
		cmd.Env = append(cmd.Env, "SCULPT_TESTLOAD_ORPHAN=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	f := &forker{cmd: cmd, out: bufio.NewScanner(stdout), t: t}
	if !f.out.Scan() || f.out.Text() != "ready" {
		t.Fatalf("forker did not say ready: %q %v", f.out.Text(), f.out.Err())
	}
	return f
}

// fork makes the forker start a child and returns its pid once its
// threads have settled; the child is killed when the test ends.
func (f *forker) fork() int {
	f.t.Helper()
	if err := f.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		f.t.Fatal(err)
	}
	if !f.out.Scan() {
		f.t.Fatalf("forker said nothing after SIGUSR1: %v", f.out.Err())
	}
	pid, err := strconv.Atoi(strings.TrimPrefix(f.out.Text(), "child "))
	if err != nil {
		f.t.Fatalf("forker said %q", f.out.Text())
	}
	f.t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if !testload.WaitThreads(pid, 2, 10*time.Second) {
		f.t.Fatalf("child %d never started its threads", pid)
	}
	return pid
}

// threadsAre checks every thread of pid: allowed CPUs, policy, nice.
func threadsAre(t *testing.T, who string, pid int, cpus string, policy, nice int) {
	t.Helper()
	for _, tid := range tasks(t, pid) {
		got := statusField(t, pid, tid, "Cpus_allowed_list")
		n, p := taskStat(t, pid, tid)
		if got != cpus || p != policy || n != nice {
			t.Errorf("%s pid %d tid %d: CPUs %s policy %d nice %d; want CPUs %s policy %d nice %d", who, pid, tid, got, p, n, cpus, policy, nice)
		}
	}
}

func TestRevertRestoresInheritedPinAndSched(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	f := startForker(t, false)
	pid := f.cmd.Process.Pid
	origCPUs := statusField(t, pid, pid, "Cpus_allowed_list")
	origNice, origPolicy := taskStat(t, pid, pid)
	if origCPUs == "0" || origPolicy == unix.SCHED_BATCH || origNice == 5 {
		t.Skipf("the test process already runs as the test would set it (CPUs %s, policy %d, nice %d)", origCPUs, origPolicy, origNice)
	}
	b, j := newBackend(t)
	ctx := context.Background()
	nice := 5
	for _, a := range []hal.Action{hal.PinThreads{PID: pid, CPUs: []int{0}}, hal.SetSched{PID: pid, Policy: hal.PolicyBatch, Nice: &nice}} {
		if _, err := b.Apply(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	kept, changed, dead := f.fork(), f.fork(), f.fork()
	for _, c := range []int{kept, changed} {
		threadsAre(t, "child before revert", c, "0", unix.SCHED_BATCH, 5)
	}
	// Someone else moves the second child after it was forked.
	for _, tid := range tasks(t, changed) {
		if err := unix.SchedSetaffinity(tid, cpuSet([]int{1})); err != nil {
			t.Fatal(err)
		}
	}
	// The third exits before the revert (a zombie: the forker never reaps).
	if err := syscall.Kill(dead, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500 && !strings.HasPrefix(statusField(t, dead, dead, "State"), "Z"); i++ {
		time.Sleep(10 * time.Millisecond)
	}

	steps, err := b.Revert(ctx, j)
	if err != nil {
		t.Fatalf("revert: %v (%+v)", err, steps)
	}
	if len(steps) != 2 || steps[0].Status != Restored || steps[1].Status != Restored {
		t.Fatalf("steps %+v, want two restored", steps)
	}
	sched, pin := steps[0], steps[1]
	if !slices.Equal(sched.Inherited, []int{kept, changed}) || !strings.Contains(sched.Note, "also restored 2 descendant processes") {
		t.Errorf("sched step %+v, want pids %d and %d restored", sched, kept, changed)
	}
	if !slices.Equal(pin.Inherited, []int{kept}) || !strings.Contains(pin.Note, fmt.Sprintf("(pid %d) that inherited the pin alone", changed)) {
		t.Errorf("pin step %+v, want pid %d restored and %d left alone", pin, kept, changed)
	}
	threadsAre(t, "target after revert", pid, origCPUs, origPolicy, origNice)
	threadsAre(t, "inheriting child after revert", kept, origCPUs, origPolicy, origNice)
	threadsAre(t, "child changed by someone else", changed, "1", origPolicy, origNice)
	if j.Len() != 0 {
		t.Errorf("journal holds %d entries after revert", j.Len())
	}
}

// The target exits after forking: its child, reparented, is found through
// the process group the target led, and restored; the entries are skipped
// for the target itself.
func TestRevertRestoresInheritorsOfExitedProcess(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	f := startForker(t, true)
	pid := f.cmd.Process.Pid
	origCPUs := statusField(t, pid, pid, "Cpus_allowed_list")
	origNice, origPolicy := taskStat(t, pid, pid)
	if origCPUs == "1" || origPolicy == unix.SCHED_IDLE {
		t.Skipf("the test process already runs as the test would set it (CPUs %s, policy %d)", origCPUs, origPolicy)
	}
	b, j := newBackend(t)
	ctx := context.Background()
	for _, a := range []hal.Action{hal.PinThreads{PID: pid, CPUs: []int{1}}, hal.SetSched{PID: pid, Policy: hal.PolicyIdle}} {
		if _, err := b.Apply(ctx, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
	child := f.fork()
	threadsAre(t, "child before revert", child, "1", unix.SCHED_IDLE, origNice)
	_ = f.cmd.Process.Kill()
	_ = f.cmd.Wait()
	if ppid := statusField(t, child, child, "PPid"); ppid == strconv.Itoa(pid) {
		t.Fatalf("child %d still has parent %s after the forker died", child, ppid)
	}

	steps, err := b.Revert(ctx, j)
	if err != nil {
		t.Fatalf("revert: %v (%+v)", err, steps)
	}
	if len(steps) != 2 {
		t.Fatalf("steps %+v, want two", steps)
	}
	for _, st := range steps {
		if st.Status != Skipped || !strings.Contains(st.Note, "exited") || !slices.Equal(st.Inherited, []int{child}) ||
			!strings.Contains(st.Note, fmt.Sprintf("also restored 1 descendant process (pid %d)", child)) {
			t.Errorf("step %+v: want skipped for the exited target, child %d restored", st, child)
		}
	}
	threadsAre(t, "orphaned child after revert", child, origCPUs, origPolicy, origNice)
}

// An entry from a journal written before BootTicks existed restores no
// descendants: without the time of the change sculpt cannot tell an
// inheritor from a process that was set the same way by someone else.
func TestRevertWithoutBootTicksLeavesDescendants(t *testing.T) {
	needRoot(t)
	needCPUs(t, 2)
	f := startForker(t, false)
	pid := f.cmd.Process.Pid
	b, _ := newBackend(t)
	b.SetJournal(nil)
	undo, err := b.Apply(context.Background(), hal.PinThreads{PID: pid, CPUs: []int{0}})
	if err != nil {
		t.Fatal(err)
	}
	child := f.fork()
	_, j := newBackend(t)
	id, err := processIdentity(b.roots, pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Record(journal.Entry{Action: hal.PinThreads{PID: pid, CPUs: []int{0}}, Undo: undo, Process: &id}); err != nil {
		t.Fatal(err)
	}
	steps, err := b.Revert(context.Background(), j)
	if err != nil || len(steps) != 1 || steps[0].Status != Restored || steps[0].Inherited != nil {
		t.Fatalf("revert = %+v, %v; want restored, no descendants", steps, err)
	}
	if got := statusField(t, child, child, "Cpus_allowed_list"); got != "0" {
		t.Errorf("child of a legacy entry changed to %q", got)
	}
}
