package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sculpt/internal/hal/journal"
	"sculpt/internal/testload"
)

// The crash torture (docs/reliability.md): sculpt, run as a separate
// process, is SIGKILLed at random points and at deterministic ones
// ($SCULPT_TEST_CRASH_AT: after journaling an action and before applying
// it, or after applying it and before marking it applied) across every
// action family it applies here; after each kill `sculpt revert` or a
// restart must leave the machine exactly as it was before sculpt first ran.
// $TORTURE_KILLS sets the number of kills (`make torture`: 200; the normal
// test run: 10).

// machineState is what sculpt may change, read from /proc, /sys and
// netlink (through ip) independently of the HAL.
type machineState struct {
	threads map[string]string // "pid/tid@starttime" -> "cpus=… policy=… nice=…"
	cgroups map[string]string // "controller/path" -> the values sculpt may write
	irqs    map[string]string // irq -> smp_affinity_list
	netdevs map[string]string // "ns/link" or "link/queue" -> state
}

// tortureRig holds the workloads and the devices the torture works on.
type tortureRig struct {
	pids    []int // the torture workloads (sculpt run --pid)
	threads int   // a threads load (act pin/sched)
	forker  *exec.Cmd
	cgroup  string // a test cgroup in cpu, cpuset and blkio
	irq     int    // a movable IRQ, -1 if none
	netns   string // the veth's peer namespace
	veth    string // the host end of the veth
	dir     string
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return strings.TrimSpace(string(b))
}

// snapshotMachine reads every thread on the machine, the cgroups of the
// cpu, cpuset and blkio hierarchies, every IRQ's affinity and the network
// devices of the root namespace and of netns.
func snapshotMachine(netns string) machineState {
	s := machineState{threads: map[string]string{}, cgroups: map[string]string{}, irqs: map[string]string{}, netdevs: map[string]string{}}
	procs, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*")
	for _, p := range procs {
		stat, err1 := os.ReadFile(p + "/stat")
		status, err2 := os.ReadFile(p + "/status")
		if err1 != nil || err2 != nil {
			continue
		}
		st := string(stat)
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+1:])
		if len(f) < 39 {
			continue
		}
		cpus := ""
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				cpus = strings.TrimSpace(v)
			}
		}
		// f[0] is field 3: nice is field 19, start time 22, policy 41.
		key := strings.TrimPrefix(strings.Replace(p, "/task/", "/", 1), "/proc/") + "@" + f[19]
		s.threads[key] = fmt.Sprintf("cpus=%s policy=%s nice=%s", cpus, f[38], f[16])
	}
	files := map[string][]string{
		"cpu":    {"cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.idle"},
		"cpuset": {"cpuset.cpus", "cpuset.mems", "cpuset.memory_migrate"},
		"blkio":  {"blkio.bfq.weight", "blkio.weight"},
	}
	for ctl, names := range files {
		root := "/sys/fs/cgroup/" + ctl
		_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			var vals []string
			for _, n := range names {
				if _, err := os.Stat(filepath.Join(path, n)); err == nil {
					vals = append(vals, n+"="+readTrim(filepath.Join(path, n)))
				}
			}
			s.cgroups[ctl+strings.TrimPrefix(path, root)] = strings.Join(vals, " ")
			return nil
		})
	}
	irqs, _ := filepath.Glob("/proc/irq/[0-9]*/smp_affinity_list")
	for _, p := range irqs {
		s.irqs[filepath.Base(filepath.Dir(p))] = readTrim(p)
	}
	for _, ns := range []string{"", netns} {
		args := []string{"-o", "link", "show"}
		if ns != "" {
			args = append([]string{"-n", ns}, args...)
		}
		out, _ := exec.Command("ip", args...).Output()
		for _, l := range strings.Split(string(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			s.netdevs[ns+"/"+name] = "up=" + strconv.FormatBool(strings.Contains(l, ",UP"))
		}
	}
	queues, _ := filepath.Glob("/sys/class/net/*/queues/*/[rx]ps_cpus")
	for _, q := range queues {
		s.netdevs[strings.TrimPrefix(q, "/sys/class/net/")] = readTrim(q)
	}
	return s
}

// diffMaps lists what differs between two maps; keys only in one side are
// kept only when keep says so (threads that came or went are not diffs).
func diffMaps(what string, before, after map[string]string, keepOnlyIn func(k string, inBefore bool) bool) []string {
	var d []string
	for k, v := range before {
		w, ok := after[k]
		switch {
		case !ok && keepOnlyIn(k, true):
			d = append(d, fmt.Sprintf("%s %s gone (was %s)", what, k, v))
		case ok && w != v:
			d = append(d, fmt.Sprintf("%s %s: %s, was %s", what, k, w, v))
		}
	}
	for k, v := range after {
		if _, ok := before[k]; !ok && keepOnlyIn(k, false) {
			d = append(d, fmt.Sprintf("%s %s new (%s)", what, k, v))
		}
	}
	slices.Sort(d)
	return d
}

// diff compares against the state before sculpt first ran. ours says
// which threads belong to the torture's workloads: a change to any other
// thread is reported apart (other tests on a shared machine change their
// own threads), as are cgroups that are not the torture's nor sculpt's.
func (before machineState) diff(after machineState, ours func(key string) bool, cgOurs func(key string) bool) (mine, foreign []string) {
	split := func(ds []string, owned func(string) bool) {
		for _, d := range ds {
			if owned(d) {
				mine = append(mine, d)
			} else {
				foreign = append(foreign, d)
			}
		}
	}
	split(diffMaps("thread", before.threads, after.threads, func(string, bool) bool { return false }), ours)
	split(diffMaps("cgroup", before.cgroups, after.cgroups, func(k string, _ bool) bool { return true }), cgOurs)
	mine = append(mine, diffMaps("irq", before.irqs, after.irqs, func(string, bool) bool { return true })...)
	mine = append(mine, diffMaps("netdev", before.netdevs, after.netdevs, func(string, bool) bool { return true })...)
	return mine, foreign
}

func tortureKills(t *testing.T) int {
	n := 10
	if v := os.Getenv("TORTURE_KILLS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("TORTURE_KILLS=%q: want a count", v)
		}
	}
	return n
}

func mustRun(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// setupTorture starts the workloads (a threads load, a CPU spinner in a
// cgroup of its own, a socket service and client, a forker whose children
// come and go), a test cgroup, a veth with its peer in a namespace, and
// finds an IRQ whose affinity can be set.
func setupTorture(t *testing.T) *tortureRig {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) for the veth in a namespace")
	}
	for _, c := range []string{"cpu", "cpuset", "blkio"} {
		if _, err := os.Stat("/sys/fs/cgroup/" + c + "/cgroup.procs"); err != nil {
			t.Skipf("needs the cgroup v1 %s hierarchy: %v", c, err)
		}
	}
	id := strconv.Itoa(os.Getpid())
	r := &tortureRig{irq: -1, dir: t.TempDir(), netns: "sculpt-tort-" + id, veth: "stv" + id, cgroup: "/sculpt-torture-" + id}
	// A test cgroup in each controller (cpuset gets its parent's cpus and mems).
	for _, c := range []string{"cpu", "cpuset", "blkio"} {
		p := "/sys/fs/cgroup/" + c + r.cgroup
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(p) })
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if err := os.WriteFile("/sys/fs/cgroup/cpuset"+r.cgroup+"/"+f, []byte(readTrim("/sys/fs/cgroup/cpuset/"+f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "ip", "netns", "add", r.netns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", r.netns).Run() })
	mustRun(t, "ip", "link", "add", r.veth, "numtxqueues", "2", "numrxqueues", "2", "type", "veth", "peer", "name", r.veth+"p", "netns", r.netns)
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", r.veth).Run() })
	mustRun(t, "ip", "link", "set", r.veth, "up")

	r.threads = startThreadsLoad(t, 8)
	hog := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	for _, c := range []string{"cpu", "cpuset", "blkio"} {
		// Moving a process back to the root cgroup is what the cleanup does.
		p := strconv.Itoa(hog.Process.Pid)
		if err := os.WriteFile("/sys/fs/cgroup/"+c+r.cgroup+"/cgroup.procs", []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.WriteFile("/sys/fs/cgroup/"+c+"/cgroup.procs", []byte(p), 0o644) })
	}
	c := startColocation(t)
	r.forker = testload.Start(t, "forker", nil)
	r.pids = []int{r.threads, hog.Process.Pid, c.server, c.client, c.hog, r.forker.Process.Pid}

	// An IRQ that takes an affinity: set one to what it has; managed and
	// per-CPU ones refuse.
	irqs, _ := filepath.Glob("/proc/irq/[0-9]*/smp_affinity_list")
	for _, p := range irqs {
		cur := readTrim(p)
		if os.WriteFile(p, []byte(cur), 0o644) == nil && cur != "" {
			r.irq, _ = strconv.Atoi(filepath.Base(filepath.Dir(p)))
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // the client connects, the loads settle
	return r
}

// tortureScenario is one way of killing sculpt: the command line it runs
// and the family it exercises.
type tortureScenario struct {
	family string
	args   func(r *tortureRig, jp string, rnd *rand.Rand) []string
}

func tortureScenarios() []tortureScenario {
	cpuList := func(rnd *rand.Rand) string { return []string{"0", "1", "0-1"}[rnd.IntN(3)] }
	return []tortureScenario{
		{"run (pin, sched, cgroup create/move, cpu weight)", func(r *tortureRig, jp string, _ *rand.Rand) []string {
			a := []string{"run", "--mode", "apply", "--interval", "500ms", "--for", "30s", "--journal", jp, "--audit", filepath.Join(r.dir, "audit.jsonl")}
			for _, p := range r.pids {
				a = append(a, "--pid", strconv.Itoa(p))
			}
			return a
		}},
		{"pin", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", "pin", "--pid", strconv.Itoa(r.threads), "--cpus", cpuList(rnd), "--journal", jp}
		}},
		{"sched", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", "sched", "--pid", strconv.Itoa(r.threads), "--policy", []string{"batch", "idle", "other"}[rnd.IntN(3)], "--nice", strconv.Itoa(rnd.IntN(20)), "--journal", jp}
		}},
		{"cgroup-cpu", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			if rnd.IntN(2) == 0 {
				return []string{"act", "weight", "--cgroup", r.cgroup, "--shares", strconv.Itoa(2 + rnd.IntN(4000)), "--journal", jp}
			}
			return []string{"act", "quota", "--cgroup", r.cgroup, "--quota", strconv.Itoa(10000 + rnd.IntN(90000)), "--journal", jp}
		}},
		{"cpuset", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", "cpuset", "--cgroup", r.cgroup, "--cpus", cpuList(rnd), "--journal", jp}
		}},
		{"blkio-weight", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", "io-weight", "--cgroup", r.cgroup, "--weight", strconv.Itoa(1 + rnd.IntN(1000)), "--journal", jp}
		}},
		{"irq", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			if r.irq < 0 {
				return nil
			}
			return []string{"act", "irq", "--irq", strconv.Itoa(r.irq), "--cpus", cpuList(rnd), "--journal", jp}
		}},
		{"queue-mask", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", []string{"rps", "xps"}[rnd.IntN(2)], "--iface", r.veth, "--queue", strconv.Itoa(rnd.IntN(2)), "--cpus", cpuList(rnd), "--journal", jp}
		}},
		{"vnic", func(r *tortureRig, jp string, rnd *rand.Rand) []string {
			return []string{"act", "vnic", "create", "--kind", "veth", "--name", "stx" + strconv.Itoa(os.Getpid()), "--peer", "sty" + strconv.Itoa(os.Getpid()), "--netns", r.netns, "--journal", jp}
		}},
	}
}

// sculptProc starts this test binary as sculpt with args and env.
func sculptProc(t *testing.T, env []string, args ...string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), actMainEnv+"=1"), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// killedBySIGKILL reports whether the finished command died of SIGKILL.
func killedBySIGKILL(cmd *exec.Cmd) bool {
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func TestCrashTorture(t *testing.T) {
	actNeedRoot(t)
	kills := tortureKills(t)
	r := setupTorture(t)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("TORTURE_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	rnd := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d (TORTURE_SEED reproduces the kill points), %d kills", seed, kills)

	// Children of the forker come and go throughout.
	stopFork := make(chan struct{})
	defer close(stopFork)
	go func() {
		for {
			select {
			case <-stopFork:
				return
			case <-time.After(200 * time.Millisecond):
				_ = r.forker.Process.Signal(syscall.SIGUSR1)
			}
		}
	}()
	isOurs := map[string]bool{}
	for _, p := range r.pids {
		isOurs[strconv.Itoa(p)+"/"] = true
	}
	ours := func(d string) bool {
		f := strings.Fields(d)
		return len(f) > 1 && isOurs[f[1][:strings.IndexByte(f[1], '/')+1]]
	}
	cgOurs := func(d string) bool {
		// The torture's cgroup and any cgroup sculpt created for one of the
		// torture's workloads (the engine names them sculpt-w-…-PID-START).
		if strings.Contains(d, r.cgroup) {
			return true
		}
		for _, p := range r.pids {
			if strings.Contains(d, "/sculpt-") && strings.Contains(d, "-"+strconv.Itoa(p)+"-") {
				return true
			}
		}
		return false
	}
	before := snapshotMachine(r.netns)
	scen := tortureScenarios()
	type tally struct{ kills, random, recorded, changed, exact int }
	perFamily := map[string]*tally{}
	jp := filepath.Join(r.dir, "journal.json")
	total, exact, attempts := 0, 0, 0
	var unchecked []*tally   // kills since the last recovery
	left := map[string]int{} // journal entries left by kills, by kind and state (counted once per kill)
	for total < kills && attempts < kills*4 {
		attempts++
		sc := scen[(attempts-1)%len(scen)]
		args := sc.args(r, jp, rnd)
		if args == nil {
			continue
		}
		// Where to die: after journaling (before the change), after the
		// change (before marking it applied), or at a random moment.
		var env []string
		how := rnd.IntN(3)
		nth := 1
		if sc.family[:3] == "run" {
			nth = 1 + rnd.IntN(3)
		}
		switch how {
		case 0:
			env = []string{crashEnv + "=recorded:" + strconv.Itoa(nth)}
		case 1:
			env = []string{crashEnv + "=changed:" + strconv.Itoa(nth)}
		}
		cmd, out := sculptProc(t, env, args...)
		if how == 2 {
			limit := 40 * time.Millisecond
			if sc.family[:3] == "run" {
				limit = 4 * time.Second
			}
			time.Sleep(time.Duration(rnd.Int64N(int64(limit))))
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
		timer := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
		timer.Stop()
		if !killedBySIGKILL(cmd) {
			// Finished before the kill (the action was quick, or run applied
			// fewer than nth actions): not a kill, but the machine must still
			// be restored by the revert below.
			t.Logf("%s ended before the kill: %s", sc.family, strings.TrimSpace(out.String()))
		} else {
			total++
		}
		ft := perFamily[sc.family]
		if ft == nil {
			ft = &tally{}
			perFamily[sc.family] = ft
		}
		if killedBySIGKILL(cmd) {
			unchecked = append(unchecked, ft)
			ft.kills++
			ft.random += btoi(how == 2)
			ft.recorded += btoi(how == 0)
			ft.changed += btoi(how == 1)
		}
		// What the killed sculpt left in the journal, by kind and state.
		if j, err := journal.Open(jp); err == nil {
			for _, e := range j.Entries() {
				left[e.Action.Kind()+" "+string(e.State)]++
			}
			_ = j.Close()
		}
		// Sometimes a second crash piles onto the first before recovery.
		if rnd.IntN(4) == 0 {
			continue
		}
		// Recover: `sculpt revert`, or a restart of run (which reverts what
		// the crashed one left at start, and its own changes at exit).
		var rec []string
		if rnd.IntN(2) == 0 {
			rec = []string{"revert", "--journal", jp}
		} else {
			rec = []string{"run", "--mode", "apply", "--interval", "500ms", "--for", "1s", "--journal", jp, "--pid", strconv.Itoa(r.threads)}
		}
		rc, rout := sculptProc(t, nil, rec...)
		if err := rc.Wait(); err != nil {
			t.Errorf("after %s: %v: %v\n%s", sc.family, rec, err, rout)
		}
		if _, err := os.Stat(jp); err == nil && journalLen(t, jp) != 0 {
			t.Errorf("after %s and %v the journal still holds %d entries\n%s", sc.family, rec[0], journalLen(t, jp), rout)
		}
		mine, foreign := before.diff(snapshotMachine(r.netns), ours, cgOurs)
		for _, d := range foreign {
			t.Logf("not the torture's (another process changed it): %s", d)
		}
		if len(mine) > 0 {
			t.Errorf("after killing %s (%v) and %s: the machine differs from before sculpt ran:\n%s", sc.family, env, rec[0], strings.Join(mine, "\n"))
			before = snapshotMachine(r.netns) // report each difference once
		} else {
			for _, u := range unchecked {
				exact++
				u.exact++
			}
		}
		unchecked = unchecked[:0]
	}
	// The last kill may still be waiting for its recovery.
	rc, rout := sculptProc(t, nil, "revert", "--journal", jp)
	if err := rc.Wait(); err != nil {
		t.Errorf("final revert: %v\n%s", err, rout)
	}
	fams := make([]string, 0, len(perFamily))
	for f := range perFamily {
		fams = append(fams, f)
	}
	slices.Sort(fams)
	for _, f := range fams {
		ft := perFamily[f]
		t.Logf("family %-50s kills %3d (random %d, after journaling %d, after applying %d), restored exactly %d", f, ft.kills, ft.random, ft.recorded, ft.changed, ft.exact)
	}
	if mine, _ := before.diff(snapshotMachine(r.netns), ours, cgOurs); len(mine) == 0 {
		for _, u := range unchecked {
			exact++
			u.exact++
		}
	} else {
		t.Errorf("after the final revert the machine differs:\n%s", strings.Join(mine, "\n"))
	}
	t.Logf("journal entries found after the kills (an entry left by an earlier kill that piled up is counted again): %v", left)
	t.Logf("TORTURE: %d kills, %d restored exactly (snapshot equality after the recovery that followed)", total, exact)
	if total < kills {
		t.Errorf("only %d kills in %d attempts, want %d", total, attempts, kills)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestTortureSIGSTOP: sculpt stopped for longer than its interval, then
// continued, carries on and exits clean with everything restored.
func TestTortureSIGSTOP(t *testing.T) {
	actNeedRoot(t)
	threads := startThreadsLoad(t, 4)
	hog := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"}).Process.Pid
	before := map[int]map[int]string{threads: threadState(t, threads), hog: threadState(t, hog)}
	jp := filepath.Join(t.TempDir(), "journal.json")
	cmd, out := sculptProc(t, nil, "run", "--mode", "apply", "--interval", "500ms", "--for", "6s",
		"--pid", strconv.Itoa(threads), "--pid", strconv.Itoa(hog), "--journal", jp)
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // four intervals
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("run after SIGSTOP/SIGCONT: %v\n%s", err, out)
	}
	if _, err := os.Stat(jp); err == nil && journalLen(t, jp) != 0 {
		t.Errorf("journal holds %d entries after a clean exit\n%s", journalLen(t, jp), out)
	}
	for pid, st := range before {
		checkRestored(t, pid, st)
	}
}

// journalFS mounts a tmpfs of a few KB for the journal; ro mounts it
// read-only, full fills it first.
func journalFS(t *testing.T, ro, full bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=16k"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	if full {
		f, err := os.Create(filepath.Join(dir, "filler"))
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				if !strings.Contains(err.Error(), "no space") {
					t.Fatalf("filling the tmpfs: %v", err)
				}
				break
			}
		}
		_ = f.Close()
	}
	if ro {
		if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_REMOUNT|syscall.MS_RDONLY, "size=16k"); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
	}
	return dir
}

// TestJournalUnwritableRefuses: with the journal on a full disk (ENOSPC)
// or a read-only one, sculpt applies nothing it cannot journal, says why,
// and the machine is unchanged.
func TestJournalUnwritableRefuses(t *testing.T) {
	actNeedRoot(t)
	for _, c := range []struct {
		name     string
		ro, full bool
		want     string
	}{
		{"disk full", false, true, "no space left on device"},
		{"read-only", true, false, "read-only file system"},
	} {
		t.Run(c.name, func(t *testing.T) {
			threads := startThreadsLoad(t, 4)
			hog := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"}).Process.Pid
			before := map[int]map[int]string{threads: threadState(t, threads), hog: threadState(t, hog)}
			jp := filepath.Join(journalFS(t, c.ro, c.full), "journal.json")
			code, _, stderr := actCLI(t, "act", "sched", "--pid", strconv.Itoa(threads), "--policy", "idle", "--journal", jp)
			if code == 0 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, jp) {
				t.Errorf("act sched with the journal on a %s disk: exit %d, %q; want a failure naming %s and %q", c.name, code, stderr, jp, c.want)
			}
			for pid, st := range before {
				checkRestored(t, pid, st)
			}
			// run --mode apply: the engine's actions are refused, none applied.
			cmd, out := sculptProc(t, nil, "run", "--mode", "apply", "--interval", "500ms", "--for", "4s",
				"--pid", strconv.Itoa(threads), "--pid", strconv.Itoa(hog), "--journal", jp)
			stop := make(chan struct{})
			changed := make(chan string, 1)
			go func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(50 * time.Millisecond):
					}
					for pid, st := range before {
						for tid, s := range threadState(t, pid) {
							if w, ok := st[tid]; ok && w != s {
								select {
								case changed <- fmt.Sprintf("pid %d tid %d: %s, was %s", pid, tid, s, w):
								default:
								}
							}
						}
					}
				}
			}()
			err := cmd.Wait()
			close(stop)
			select {
			case d := <-changed:
				t.Errorf("run --mode apply changed a thread it could not journal: %s\n%s", d, out)
			default:
			}
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("run --mode apply (exit %v) does not say %q:\n%s", err, c.want, out)
			}
			t.Logf("run --mode apply with the journal on a %s disk: %v\n%s", c.name, err, lastLines(out.String(), 5))
		})
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
