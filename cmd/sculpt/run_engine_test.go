package main

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sculpt/internal/engine"
	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// schedPolicy reads the scheduling policy of pid's main thread
// (/proc/PID/stat field 41: 0 other, 3 batch, 5 idle).
func schedPolicy(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	p, err := strconv.Atoi(f[38]) // f[0] is field 3
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

type colo struct {
	server, client, hog int
}

func startColocation(t *testing.T) colo {
	t.Helper()
	addr := freeAddr(t)
	server := testload.Start(t, "sockserver", []string{"SCULPT_TESTLOAD_ADDR=" + addr})
	client := testload.Start(t, "sockclient", []string{"SCULPT_TESTLOAD_ADDR=" + addr})
	hog := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	return colo{server.Process.Pid, client.Process.Pid, hog.Process.Pid}
}

type snapshot struct {
	serverCPUs, clientCPUs, hogCPUs string
	hogPolicy                       int
}

func (c colo) read(t *testing.T) snapshot {
	return snapshot{cpusAllowed(t, c.server), cpusAllowed(t, c.client), cpusAllowed(t, c.hog), schedPolicy(t, c.hog)}
}

// runWatching runs the command line in the background and samples the
// processes' arrangement until it returns.
func runWatching(t *testing.T, c colo, args ...string) (int, string, string, []snapshot) {
	t.Helper()
	var (
		wg             sync.WaitGroup
		code           int
		stdout, stderr string
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		code, stdout, stderr = runCLI(t, args...)
		close(done)
	}()
	var seen []snapshot
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			seen = append(seen, c.read(t))
		}
	}
	wg.Wait()
	return code, stdout, stderr, seen
}

// TestRunApplyIsolatesServiceFromAntagonist: with no labels, sculpt tells
// the socket service from the CPU spinner by DNA. With the default rules on
// a machine of fewer than 4 cores it pins nothing and moves the spinner to
// SCHED_IDLE; with the dedicated-cores rules (and by default on a bigger
// machine) it gives the service a CPU of its own and confines the spinner
// to another as SCHED_BATCH. On exit everything is as it was.
func TestRunApplyIsolatesServiceFromAntagonist(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change other processes' affinity and policy")
	}
	topo, err := topology.Discover(host.DefaultRoots())
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.OnlineCPUs()) < 2 {
		t.Skip("needs 2 online CPUs")
	}
	dedicated := func(s snapshot) bool {
		return !strings.ContainsAny(s.serverCPUs, ",-") && !strings.ContainsAny(s.hogCPUs, ",-") &&
			s.serverCPUs != s.hogCPUs && s.hogPolicy == 3
	}
	idleClass := func(s snapshot) bool {
		return s.serverCPUs == s.hogCPUs && strings.ContainsAny(s.hogCPUs, ",-") && s.hogPolicy == 5
	}
	rulesFile := filepath.Join(t.TempDir(), "dedicated.yaml")
	src := strings.Replace(string(engine.DefaultRulesYAML()), "small_machine: machine.cores < 4", "small_machine: 1 > 2", 1)
	if err := os.WriteFile(rulesFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("default rules", func(t *testing.T) {
		if engine.MachineOf(*topo).Cores < 4 {
			applyAndCheck(t, nil, "the spinner in the idle class on every CPU, the service untouched", idleClass, "batch-idle-small")
		} else {
			applyAndCheck(t, nil, "the service on a CPU of its own and the spinner confined to another as SCHED_BATCH", dedicated, "latency-critical-service", "cpu-bound-batch")
		}
	})
	t.Run("dedicated rules", func(t *testing.T) {
		applyAndCheck(t, []string{"--rules", rulesFile}, "the service on a CPU of its own and the spinner confined to another as SCHED_BATCH", dedicated, "latency-critical-service", "cpu-bound-batch")
	})
}

// applyAndCheck runs apply mode over a service, its client and a spinner
// and checks that some sample shows the arrangement (what, ok), that the
// audit names the rules (with genes) that were applied, and that exit
// restored everything.
func applyAndCheck(t *testing.T, extra []string, what string, ok func(snapshot) bool, wantRules ...string) {
	c := startColocation(t)
	time.Sleep(200 * time.Millisecond) // let the client connect
	before := c.read(t)
	dir := t.TempDir()
	jpath, audit := filepath.Join(dir, "journal.json"), filepath.Join(dir, "audit.jsonl")
	args := append([]string{"run", "--mode", "apply", "--interval", "1s", "--for", "6s",
		"--pid", strconv.Itoa(c.server), "--pid", strconv.Itoa(c.client), "--pid", strconv.Itoa(c.hog),
		"--journal", jpath, "--audit", audit}, extra...)
	code, out, errs, seen := runWatching(t, c, args...)
	if code != 0 {
		t.Fatalf("run --mode apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	if !slices.ContainsFunc(seen, ok) {
		t.Errorf("never saw %s; samples %v\nstdout:\n%s\nstderr:\n%s", what, seen[len(seen)/2:], out, errs)
	}
	after := c.read(t)
	if after != before {
		t.Errorf("after exit the arrangement is %+v, want it restored to %+v", after, before)
	}
	if _, err := os.Stat(jpath); err == nil && journalLen(t, jpath) != 0 {
		t.Errorf("journal still holds %d entries after exit\nstderr:\n%s", journalLen(t, jpath), errs)
	}
	// The audit says which rule and genes led to each applied action.
	f, err := os.Open(audit)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	rules := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r struct {
			Event string             `json:"event"`
			Rule  string             `json:"rule"`
			Genes map[string]float64 `json:"genes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if r.Event == "applied" {
			if r.Rule == "" || len(r.Genes) == 0 {
				t.Errorf("applied without rule or genes: %s", sc.Text())
			}
			rules[r.Rule] = true
		}
	}
	for _, r := range wantRules {
		if !rules[r] {
			t.Errorf("applied rules %v, want %v", rules, wantRules)
		}
	}
}

// TestRunAdviseChangesNothing: advise prints a plan with reasons and
// leaves every process as it was, with the learned model (the default)
// and with the gene classifier (--model none).
func TestRunAdviseChangesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' schedstat and fd tables")
	}
	for _, model := range []string{"", "none"} {
		t.Run("model="+model, func(t *testing.T) { testRunAdviseChangesNothing(t, model) })
	}
}

func testRunAdviseChangesNothing(t *testing.T, model string) {
	c := startColocation(t)
	time.Sleep(200 * time.Millisecond)
	before := c.read(t)
	jpath := filepath.Join(t.TempDir(), "journal.json")
	code, out, errs, seen := runWatching(t, c, "run", "--mode", "advise", "--interval", "1s", "--for", "4s", "--model", model,
		"--pid", strconv.Itoa(c.server), "--pid", strconv.Itoa(c.client), "--pid", strconv.Itoa(c.hog), "--journal", jpath)
	if code != 0 {
		t.Fatalf("advise: exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "falling back") {
		t.Errorf("the model was not used: %s", errs)
	}
	for _, s := range seen {
		if s != before {
			t.Fatalf("advise changed the machine: %+v, was %+v", s, before)
		}
	}
	if !strings.Contains(out, "would: ") || !strings.Contains(out, "rule ") {
		t.Errorf("advise printed no plan with reasons:\n%s", out)
	}
	if _, err := os.Stat(jpath); err == nil && journalLen(t, jpath) != 0 {
		t.Errorf("advise journaled %d entries", journalLen(t, jpath))
	}
}

func TestRunEngineBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nrules:\n  - name: x\n    when: genes.cpu_util >\n    then: {cores: shared}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(dir, "cfg.yaml")
	if err := os.WriteFile(badCfg, []byte("version: 1\nbudgte: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--mode", "apply", "--rules", bad, "--for", "1s"}, `rule "x": when`},
		{[]string{"run", "--mode", "advise", "--config", badCfg, "--for", "1s"}, "budgte"},
		{[]string{"run", "--mode", "maybe"}, "--mode"},
		{[]string{"run", "--rules", bad}, "need --mode advise or apply"},
		{[]string{"rules", "check", bad}, "bad.yaml:4: error: rule \"x\": when: CEL"},
		{[]string{"run", "--mode", "advise", "--without", "perf,bpf", "--for", "1s"}, `--without bpf: want perf or ebpf`},
		{[]string{"dna", "--without", "psi"}, `--without psi: want perf or ebpf`},
		{[]string{"run", "--mode", "apply", "--agent", "clever", "--for", "1s"}, `--agent clever: want sculpt or none`},
		{[]string{"run", "--agent", "none"}, "--agent and --experience need --mode apply"},
	} {
		code, out, errs := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(out+errs, c.want) {
			t.Errorf("%v: exit %d, output %q %q; want exit 2 mentioning %q", c.args, code, out, errs, c.want)
		}
	}
	if code, out, _ := runCLI(t, "rules", "default"); code != 0 || !strings.Contains(out, "latency-critical-service") {
		t.Errorf("rules default: exit %d", code)
	}
}

// TestRunReloadKeepsLastGoodRules: a rules file that turns bad while sculpt
// runs is reported and the last good rules stay in force.
func TestRunReloadKeepsLastGoodRules(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' telemetry")
	}
	p := testload.Start(t, "sleep", nil)
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	good := "version: 1\nrules:\n  - name: everything\n    when: \"true\"\n    then: {cores: any}\n"
	if err := os.WriteFile(rules, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	audit := filepath.Join(dir, "audit.jsonl")
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_ = os.WriteFile(rules, []byte("version: 1\nrules:\n  - name: broken\n    when: nope(\n"), 0o644)
		// A distinct mtime even on coarse clocks.
		later := time.Now().Add(2 * time.Second)
		_ = os.Chtimes(rules, later, later)
	}()
	code, _, errs := runCLI(t, "run", "--mode", "advise", "--interval", "500ms", "--for", "3500ms", "--rules", rules,
		"--pid", strconv.Itoa(p.Process.Pid), "--journal", filepath.Join(dir, "j.json"), "--audit", audit)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "last good rules stay in force") {
		t.Errorf("the bad reload was not reported:\n%s", errs)
	}
	data, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	rejected := false
	lastRule := ""
	for _, l := range lines {
		if strings.Contains(l, `"event":"rules-rejected"`) {
			rejected = true
		}
		var r struct {
			Event, Rule string
		}
		_ = json.Unmarshal([]byte(l), &r)
		if r.Event == "decision" {
			lastRule = r.Rule
		}
	}
	if !rejected || lastRule != "everything" {
		t.Errorf("rejected=%v, last decision by rule %q (want the good rule still in force)", rejected, lastRule)
	}
}

// An experience file the agent cannot read is refused, with its path and
// why; the run goes on with the rules alone and leaves the file as it was.
func TestRunRefusesACorruptExperienceFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("apply mode needs root")
	}
	dir := t.TempDir()
	exp := filepath.Join(dir, "experience.json")
	corrupt := []byte("sculpt-experience 1 5 0000\n{}{}}")
	if err := os.WriteFile(exp, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "slo.yaml")
	if err := os.WriteFile(cfg, []byte("version: 1\nobjectives:\n  - workload: nothing-here\n    p99: 1ms\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	idle := testload.Start(t, "sleep", nil)
	code, _, errs := runCLI(t, "run", "--mode", "apply", "--interval", "500ms", "--for", "1200ms", "--config", cfg,
		"--experience", exp, "--journal", filepath.Join(dir, "journal.json"), "--pid", strconv.Itoa(idle.Process.Pid))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "the agent is off") || !strings.Contains(errs, exp) || !strings.Contains(errs, "checksum") && !strings.Contains(errs, "truncated") {
		t.Errorf("stderr does not say the file was refused and why:\n%s", errs)
	}
	if b, _ := os.ReadFile(exp); string(b) != string(corrupt) {
		t.Errorf("the refused file was changed: %q", b)
	}
}

// TestRunApplyCapsABulkWritersIO: a rule capping the writes of a bulk
// direct writer (a shell looping dd oflag=direct, started from a shell as a
// person would) moves its tree into a blkio cgroup of its own with the cap
// on every disk; the dd processes it starts after the move inherit it; on
// exit the tree is back in its cgroup and sculpt's is gone.
func TestRunApplyCapsABulkWritersIO(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups and set I/O caps")
	}
	const blkio = "/sys/fs/cgroup/blkio"
	if _, err := os.Stat(blkio + "/blkio.throttle.write_bps_device"); err != nil {
		t.Skip("needs the cgroup v1 blkio hierarchy with throttling: " + err.Error())
	}
	topo, err := topology.Discover(host.DefaultRoots())
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Disks) == 0 {
		t.Skip("no disk under /sys/block")
	}
	dir := t.TempDir()
	w := exec.Command("sh", "-c", "while :; do dd if=/dev/zero of="+filepath.Join(dir, "f")+" bs=1M count=32 oflag=direct 2>/dev/null || exit 3; done")
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Kill(); _ = w.Wait() })
	pid := w.Process.Pid
	before := testload.CgroupOf(t, pid, "blkio")
	rules := filepath.Join(dir, "io.yaml")
	if err := os.WriteFile(rules, []byte(`version: 1
rules:
  - name: bulk-writer
    when: has(genes.io_write_bps) && genes.io_write_bps > 2e6
    then: {sched: batch, io_write_mbps: 4}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	type sample struct{ cg, caps string }
	var (
		seen  []sample
		mu    sync.Mutex
		done  = make(chan struct{})
		code  int
		out   string
		errs  string
		jpath = filepath.Join(dir, "journal.json")
	)
	go func() {
		defer close(done)
		code, out, errs = runCLI(t, "run", "--mode", "apply", "--interval", "1s", "--for", "6s", "--agent", "none",
			"--pid", strconv.Itoa(pid), "--rules", rules, "--journal", jpath)
	}()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-time.After(100 * time.Millisecond):
			cg := testload.CgroupOf(t, pid, "blkio")
			caps, _ := os.ReadFile(filepath.Join(blkio, cg, "blkio.throttle.write_bps_device"))
			mu.Lock()
			seen = append(seen, sample{cg, strings.TrimSpace(string(caps))})
			mu.Unlock()
		}
	}
	if code != 0 {
		t.Fatalf("run --mode apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	want := topo.Disks[0].Dev + " 4000000"
	capped := slices.ContainsFunc(seen, func(s sample) bool {
		return strings.HasPrefix(s.cg, "/sculpt-w-") && strings.Contains(s.caps, want)
	})
	if !capped {
		t.Errorf("never saw the writer in a sculpt blkio cgroup capped at %q; samples %v\nstdout:\n%s\nstderr:\n%s", want, seen, out, errs)
	}
	if after := testload.CgroupOf(t, pid, "blkio"); after != before {
		t.Errorf("after exit the writer is in blkio cgroup %q, want %q", after, before)
	}
	for _, s := range seen {
		if strings.HasPrefix(s.cg, "/sculpt-w-") {
			if _, err := os.Stat(filepath.Join(blkio, s.cg)); err == nil {
				t.Errorf("sculpt's cgroup %s is still there after exit", s.cg)
			}
			break
		}
	}
}
