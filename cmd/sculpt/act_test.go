package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// actMainEnv makes this test binary behave as the sculpt binary (for the
// kill -9 test, which needs a real process to kill).
const actMainEnv = "SCULPT_ACT_TEST_MAIN"

func init() {
	if os.Getenv(actMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func actCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func actNeedRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: changes thread affinities and scheduling")
	}
	data, _ := os.ReadFile("/sys/devices/system/cpu/online")
	if strings.TrimSpace(string(data)) == "0" {
		t.Skip("needs at least 2 online CPUs")
	}
}

// threadState reads Cpus_allowed_list, nice and policy of every thread of
// pid from /proc, independently of the HAL.
func threadState(t *testing.T, pid int) map[int]string {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		st, err1 := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
		stat, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
		if err1 != nil || err2 != nil {
			continue
		}
		var cpus string
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				cpus = strings.TrimSpace(v)
			}
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		out[tid] = fmt.Sprintf("cpus=%s nice=%s policy=%s", cpus, f[19-3], f[41-3])
	}
	return out
}

// checkRestored compares every thread of pid with its state before: a
// thread that existed then must be back exactly, and one the Go runtime
// started since must have the main thread's original state (what a revert
// gives a thread it has no record of).
func checkRestored(t *testing.T, pid int, before map[int]string) {
	t.Helper()
	for tid, s := range threadState(t, pid) {
		want, ok := before[tid]
		if !ok {
			want = before[pid]
		}
		if s != want {
			t.Errorf("tid %d after revert: %s, want %s (before: %v)", tid, s, want, before)
		}
	}
}

func startThreadsLoad(t *testing.T, n int) int {
	t.Helper()
	cmd := testload.Start(t, "threads", []string{"SCULPT_TESTLOAD_THREADS=" + strconv.Itoa(n)})
	if !testload.WaitThreads(cmd.Process.Pid, n+1, 10*time.Second) {
		t.Fatalf("threads load never reached %d threads", n+1)
	}
	return cmd.Process.Pid
}

func TestActBadInputChangesNothing(t *testing.T) {
	jp := filepath.Join(t.TempDir(), "journal.json")
	self := strconv.Itoa(os.Getpid())
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"act", "pin", "--pid", self, "--cpus", "4095"}, `--cpus 4095: CPU 4095 is not online`},
		{[]string{"act", "pin", "--pid", self, "--cpus", ""}, "--cpus: missing"},
		{[]string{"act", "pin", "--pid", self, "--cpus", "1-x"}, `--cpus 1-x`},
		{[]string{"act", "pin", "--pid", "1073741824", "--cpus", "0"}, `--pid 1073741824: no such process`},
		{[]string{"act", "pin", "--cpus", "0"}, "--pid: missing"},
		{[]string{"act", "sched", "--pid", self, "--policy", "bacth"}, `--policy bacth: want other, batch or idle`},
		{[]string{"act", "sched", "--pid", self, "--policy", "batch", "--nice", "40"}, `--nice 40`},
		{[]string{"act", "cpuset", "--cgroup", "/sculpt-no-such-cgroup", "--cpus", "0"}, `--cgroup /sculpt-no-such-cgroup: no such cgroup`},
		{[]string{"act", "weight", "--cgroup", "relative", "--weight", "5"}, `--cgroup relative`},
		{[]string{"act", "rps", "--iface", "lo", "--queue", "0", "--mask", "xyz"}, `--mask xyz`},
		{[]string{"act", "vnic", "create", "--kind", "vxlan", "--name", "v0"}, `--kind vxlan`},
		{[]string{"act", "vfs", "--pci", "nope", "--count", "1"}, `--pci nope`},
	}
	for _, c := range cases {
		code, _, stderr := actCLI(t, append(c.args, "--journal", jp)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("sculpt %s: exit %d, stderr %q; want exit 2 naming %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	if _, err := os.Stat(jp); !os.IsNotExist(err) {
		t.Errorf("bad input left a journal at %s (%v)", jp, err)
	}
}

func TestActPinSchedThenRevert(t *testing.T) {
	actNeedRoot(t)
	pid := startThreadsLoad(t, 20)
	jp := filepath.Join(t.TempDir(), "journal.json")
	before := threadState(t, pid)
	p := strconv.Itoa(pid)

	code, out, stderr := actCLI(t, "act", "pin", "--pid", p, "--cpus", "0", "--journal", jp)
	if code != 0 || !regexp.MustCompile(`^pinned \d+ threads of pid `+p+` \(`).MatchString(out) || !strings.Contains(out, "was 0-1") || !strings.Contains(out, "sculpt revert") {
		t.Fatalf("act pin: exit %d, out %q, err %q", code, out, stderr)
	}
	code, out, stderr = actCLI(t, "act", "sched", "--pid", p, "--policy", "batch", "--nice", "5", "--journal", jp, "--json")
	var res struct {
		Applied map[string]any `json:"applied"`
		Seq     int            `json:"seq"`
		Message string         `json:"message"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Applied["kind"] != "sched" || res.Seq != 2 {
		t.Fatalf("act sched --json: exit %d, out %q, err %q", code, out, stderr)
	}
	for tid, s := range threadState(t, pid) {
		if s != "cpus=0 nice=5 policy=3" {
			t.Errorf("tid %d after act: %s", tid, s)
		}
	}
	code, out, stderr = actCLI(t, "revert", "--journal", jp)
	if code != 0 || strings.Count(out, "restored:") != 2 || !strings.Contains(out, "journal "+jp+" is empty") {
		t.Fatalf("revert: exit %d, out %q, err %q", code, out, stderr)
	}
	checkRestored(t, pid, before)
	code, out, _ = actCLI(t, "revert", "--journal", jp)
	if code != 0 || !strings.Contains(out, "nothing to revert") {
		t.Errorf("second revert: exit %d, %q", code, out)
	}
}

// startPaused runs this test binary as `sculpt args...` with the hidden
// --test-pause-at flag and waits until it says it paused.
func startPaused(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), actMainEnv+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stderr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "paused at ") {
		t.Fatalf("sculpt %v did not pause: %q %v", args, line, err)
	}
	return cmd
}

func TestKill9MidSequenceThenRevert(t *testing.T) {
	actNeedRoot(t)
	pid := startThreadsLoad(t, 8)
	p := strconv.Itoa(pid)
	jp := filepath.Join(t.TempDir(), "journal.json")
	before := threadState(t, pid)

	if code, _, stderr := actCLI(t, "act", "pin", "--pid", p, "--cpus", "1", "--journal", jp); code != 0 {
		t.Fatalf("act pin: %s", stderr)
	}
	// Killed after the change, before it was marked applied.
	c := startPaused(t, "act", "sched", "--pid", p, "--policy", "idle", "--journal", jp, "--test-pause-at", "changed")
	_ = c.Process.Signal(os.Kill)
	_ = c.Wait()
	// Killed after journaling, before changing anything.
	c = startPaused(t, "act", "pin", "--pid", p, "--cpus", "0", "--journal", jp, "--test-pause-at", "recorded")
	_ = c.Process.Signal(os.Kill)
	_ = c.Wait()

	j, err := journal.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	es := j.Entries()
	_ = j.Close()
	if len(es) != 3 || es[0].State != journal.Applied || es[1].State != journal.Pending || es[2].State != journal.Pending {
		t.Fatalf("journal after two kills: %+v", es)
	}
	for tid, s := range threadState(t, pid) {
		if s != "cpus=1 nice=0 policy=5" {
			t.Errorf("tid %d before revert: %s (want the pin and the idle policy in place)", tid, s)
		}
	}
	// A restart recovers the journal.
	be, err := linux.New(host.DefaultRoots(), linux.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j, err = journal.Open(jp)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	if steps, err := RecoverJournal(t.Context(), be, j, true); err != nil || steps != nil || j.Len() != 3 {
		t.Fatalf("RecoverJournal keep: %v %v, %d entries left; want the entries adopted", steps, err, j.Len())
	}
	steps, err := RecoverJournal(t.Context(), be, j, false)
	if err != nil || len(steps) != 3 || j.Len() != 0 {
		t.Fatalf("RecoverJournal: %+v %v", steps, err)
	}
	checkRestored(t, pid, before)
}

func TestRevertRefusesUnreadableJournal(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{
		"foreign":   `{"some":"other file"}`,
		"truncated": "sculpt-journal 1 500 abcd\n{\"next_seq\":2",
		"corrupt":   "sculpt-journal 1 2 " + strings.Repeat("0", 64) + "\n{}",
	} {
		jp := filepath.Join(dir, name+".json")
		if err := os.WriteFile(jp, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := actCLI(t, "revert", "--journal", jp)
		if code != 1 || !strings.Contains(stderr, jp) || !strings.Contains(stderr, "--force-discard") {
			t.Errorf("%s: exit %d, stderr %q; want exit 1 naming the file and --force-discard", name, code, stderr)
		}
		// act refuses too, and changes nothing.
		code, _, stderr = actCLI(t, "act", "rps", "--iface", "lo", "--queue", "0", "--mask", "1", "--journal", jp)
		if code != 1 || !strings.Contains(stderr, "sculpt will not act on it") {
			t.Errorf("%s: act exit %d, %q", name, code, stderr)
		}
		code, out, _ := actCLI(t, "revert", "--journal", jp, "--force-discard")
		if code != 0 || !strings.Contains(out, "moved journal") {
			t.Errorf("%s: --force-discard exit %d, %q", name, code, out)
		}
		if b, _ := os.ReadFile(jp); b != nil {
			t.Errorf("%s: journal still in place after --force-discard", name)
		}
	}
}

func TestActRPSOnLoopbackThenRevert(t *testing.T) {
	actNeedRoot(t)
	path := "/sys/class/net/lo/queues/rx-0/rps_cpus"
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("no %s: %v", path, err)
	}
	jp := filepath.Join(t.TempDir(), "journal.json")
	if code, out, stderr := actCLI(t, "act", "rps", "--iface", "lo", "--queue", "0", "--cpus", "1", "--journal", jp); code != 0 {
		t.Fatalf("act rps: %d %q %q", code, out, stderr)
	}
	if got, _ := os.ReadFile(path); strings.TrimLeft(strings.TrimSpace(string(got)), "0,") != "2" {
		t.Errorf("rps_cpus = %q after --cpus 1, want mask 2", got)
	}
	if code, _, stderr := actCLI(t, "revert", "--journal", jp); code != 0 {
		t.Fatalf("revert: %s", stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != string(orig) {
		t.Errorf("rps_cpus = %q after revert, want %q", got, orig)
	}
}
