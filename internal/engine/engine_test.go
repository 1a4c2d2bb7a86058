package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/dna"
	"sculpt/internal/hal"
	"sculpt/internal/workload"
)

// fakeHAL keeps each process's affinity and policy; Apply changes them and
// returns the undo, as the real backend does.
type fakeHAL struct {
	cpus    map[int][]int
	policy  map[int]string
	nice    map[int]int
	cgroup  map[int]string           // cpu cgroup (v1) of each process; "/" when unset
	limits  map[string]hal.CPULimits // per cpu cgroup
	applied []hal.Action
}

func newFakeHAL(pids ...int) *fakeHAL {
	f := &fakeHAL{cpus: map[int][]int{}, policy: map[int]string{}, nice: map[int]int{}, cgroup: map[int]string{}, limits: map[string]hal.CPULimits{}}
	for _, p := range pids {
		f.cpus[p], f.policy[p] = []int{0, 1}, "other"
	}
	return f
}

func (f *fakeHAL) Capabilities() hal.Capabilities { return allCaps() }

func (f *fakeHAL) Snapshot(_ context.Context, pids []int) (*hal.Arrangement, error) {
	arr := &hal.Arrangement{}
	for _, p := range pids {
		if c, ok := f.cpus[p]; ok {
			ps := proc(p, c, f.policy[p], f.nice[p])
			cg := f.cgroup[p]
			if cg == "" {
				cg = "/"
			}
			ps.Cgroups = map[string]string{"cpu": cg}
			lim, ok := f.limits[cg]
			if !ok {
				lim = hal.CPULimits{Shares: 1024, QuotaUS: -1, PeriodUS: 100000}
			}
			lim.Cgroup = cg
			ps.CPU = &lim
			arr.Processes = append(arr.Processes, ps)
		}
	}
	return arr, nil
}

func (f *fakeHAL) Apply(_ context.Context, a hal.Action) (hal.Action, error) {
	f.applied = append(f.applied, a)
	switch a := a.(type) {
	case hal.PinThreads:
		undo := hal.PinThreads{PID: a.PID, CPUs: f.cpus[a.PID]}
		f.cpus[a.PID] = slices.Clone(a.CPUs)
		return undo, nil
	case hal.SetSched:
		n := f.nice[a.PID]
		undo := hal.SetSched{PID: a.PID, Policy: f.policy[a.PID], Nice: &n}
		f.policy[a.PID] = a.Policy
		if a.Nice != nil {
			f.nice[a.PID] = *a.Nice
		}
		return undo, nil
	case hal.IRQAffinity:
		return hal.IRQAffinity{IRQ: a.IRQ, CPUs: []int{0, 1}}, nil
	case hal.CreateCgroup:
		return hal.RemoveCgroup(a), nil
	case hal.RemoveCgroup:
		return hal.CreateCgroup(a), nil
	case hal.MoveToCgroup:
		old := f.cgroup[a.PID]
		if old == "" {
			old = "/"
		}
		f.cgroup[a.PID] = a.Cgroup
		return hal.MoveToCgroup{PID: a.PID, Cgroup: old, Controllers: a.Controllers}, nil
	case hal.SetCgroupCPU:
		lim, ok := f.limits[a.Cgroup]
		if !ok {
			lim = hal.CPULimits{Shares: 1024, QuotaUS: -1, PeriodUS: 100000}
		}
		undo := hal.SetCgroupCPU{Cgroup: a.Cgroup, QuotaUS: &lim.QuotaUS}
		if a.QuotaUS != nil {
			lim.QuotaUS = *a.QuotaUS
		}
		if a.Weight != nil {
			lim.Shares = sharesFromWeight(*a.Weight)
		}
		if a.Idle != nil {
			undo.Idle = &lim.Idle
			lim.Idle = *a.Idle
		}
		f.limits[a.Cgroup] = lim
		return undo, nil
	}
	return nil, fmt.Errorf("fake: %s not supported", a.Kind())
}

type wl struct {
	id    string
	pid   int
	genes dna.Genes
}

func obsOf(ws ...wl) *Observation {
	o := &Observation{}
	for _, w := range ws {
		o.Workloads = append(o.Workloads, workload.Workload{ID: w.id, Name: w.id, Kind: workload.KindTree, Procs: []workload.Proc{{PID: w.pid, Comm: w.id}}})
		o.DNA = append(o.DNA, dna.DNA{ID: w.id, Name: w.id, Kind: "tree", PIDs: []int{w.pid}, Genes: w.genes})
	}
	return o
}

var (
	svcGenes = dna.Genes{"cpu_util": 0.3, "ctx_vol_rate": 20000, "sockets": 2, "comm_peers": 1, "runq_delay_frac": 0.6}
	hogGenes = dna.Genes{"cpu_util": 1.0, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0}
	idle     = dna.Genes{"cpu_util": 0.001, "ctx_vol_rate": 1}
)

func testEngine(t *testing.T, mode Mode, f *fakeHAL, mut func(*Config)) (*Engine, *bytes.Buffer) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Hysteresis, cfg.Cooldown = 2, 0
	if mut != nil {
		mut(&cfg)
	}
	var audit bytes.Buffer
	return New(Options{Mode: mode, HAL: f, Topology: vm2(), Rules: dedicatedRules(t), Config: cfg, Audit: &audit, Self: 999999}), &audit
}

// dedicatedRules are the default rules with small_machine off: the
// dedicated-cores arrangement on the 2-CPU literal, whose pins and classes
// the engine tests follow.
func dedicatedRules(t *testing.T) *RuleSet {
	t.Helper()
	const line = "small_machine: machine.cores < 4"
	src := string(DefaultRulesYAML())
	if !strings.Contains(src, line) {
		t.Fatalf("the default rules lost %q", line)
	}
	rs, diags := ParseRules("default, small_machine off", []byte(strings.Replace(src, line, "small_machine: 1 > 2", 1)))
	if rs == nil {
		t.Fatal(diags)
	}
	return rs
}

// On a 2-CPU machine the default rules pin nothing: the service keeps both
// CPUs with a high weight, and the spinner keeps both too, in the idle
// class.
func TestEngineDefaultRulesSmallMachine(t *testing.T) {
	f := newFakeHAL(10, 20)
	cfg := DefaultConfig()
	cfg.Hysteresis, cfg.Cooldown = 1, 0
	var audit bytes.Buffer
	e := New(Options{Mode: ModeApply, HAL: f, Topology: vm2(), Rules: LoadDefaultRules(), Config: cfg, Audit: &audit, Self: 999999})
	step(t, e, obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes}))
	if !slices.Equal(f.cpus[10], []int{0, 1}) || f.policy[10] != "other" {
		t.Errorf("service: %v %s, want both CPUs, other", f.cpus[10], f.policy[10])
	}
	if !slices.Equal(f.cpus[20], []int{0, 1}) || f.policy[20] != "idle" {
		t.Errorf("spinner: %v %s, want both CPUs, idle", f.cpus[20], f.policy[20])
	}
	if !strings.Contains(audit.String(), `"rule":"batch-idle-small"`) || !strings.Contains(audit.String(), `"small_machine":true`) {
		t.Errorf("the audit log does not say which rule and trait: %s", audit.String())
	}
}

func step(t *testing.T, e *Engine, o *Observation) *Step {
	t.Helper()
	st, err := e.Step(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEngineHysteresisActsAfterKAndUndoesAfterK(t *testing.T) {
	f := newFakeHAL(10, 20)
	e, audit := testEngine(t, ModeApply, f, nil)
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	if st := step(t, e, o); len(st.Applied) != 0 {
		t.Fatalf("acted after 1 interval with hysteresis 2: %v", st.Applied)
	}
	step(t, e, o)
	if !slices.Equal(f.cpus[10], []int{1}) || !slices.Equal(f.cpus[20], []int{0}) || f.policy[20] != "batch" {
		t.Fatalf("after 2 intervals: svc %v, hog %v %s; want svc on 1, hog on 0 batch", f.cpus[10], f.cpus[20], f.policy[20])
	}
	// The antagonist stops: one interval of not matching changes nothing.
	o2 := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, idle})
	if st := step(t, e, o2); len(st.Undone) != 0 {
		t.Fatalf("undid after 1 interval: %v", st.Undone)
	}
	st := step(t, e, o2)
	// Undone: its pin and class, and the cpu cgroup of its own it got for
	// its weight (created, moved into, weighted).
	if len(st.Undone) != 5 || !slices.Equal(f.cpus[20], []int{0, 1}) || f.policy[20] != "other" || f.cgroup[20] != "/" {
		t.Fatalf("after 2 intervals of no match: undone %v, hog %v %s", st.Undone, f.cpus[20], f.policy[20])
	}
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Errorf("service lost its CPU: %v", f.cpus[10])
	}
	// Every applied line names the rule and the genes that led to it.
	applied := 0
	for _, line := range strings.Split(strings.TrimSpace(audit.String()), "\n") {
		var r AuditRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if r.Event == "applied" {
			applied++
			if r.Rule == "" || len(r.Genes) == 0 || r.Action == nil || r.Undo == nil {
				t.Errorf("applied record lacks rule/genes/action/undo: %s", line)
			}
		}
	}
	if applied == 0 {
		t.Errorf("no applied records in the audit log:\n%s", audit.String())
	}
}

func TestEngineAdviseChangesNothing(t *testing.T) {
	f := newFakeHAL(10, 20)
	e, audit := testEngine(t, ModeAdvise, f, nil)
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	var last *Step
	for i := 0; i < 4; i++ {
		last = step(t, e, o)
	}
	if len(f.applied) != 0 {
		t.Fatalf("advise applied %v", f.applied)
	}
	if n := len(actionsOf(last.Plan, "svc")) + len(actionsOf(last.Plan, "hog")); n == 0 {
		t.Errorf("advise planned nothing")
	}
	if !strings.Contains(audit.String(), `"event":"advised"`) {
		t.Errorf("no advised records in the audit")
	}
}

func TestEngineBudget(t *testing.T) {
	f := newFakeHAL(10, 20)
	e, _ := testEngine(t, ModeApply, f, func(c *Config) { c.Budget = 2 })
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	step(t, e, o)
	st := step(t, e, o)
	if len(st.Applied) != 2 {
		t.Fatalf("applied %d actions with a budget of 2", len(st.Applied))
	}
	budgeted := 0
	for _, r := range st.Refused {
		if strings.Contains(r.Reason, "budget") {
			budgeted++
		}
	}
	if budgeted == 0 {
		t.Fatalf("nothing held back for the budget: %v", st.Refused)
	}
	// The rest follows in the next intervals.
	for range 4 {
		step(t, e, o)
	}
	if !slices.Equal(f.cpus[20], []int{0}) || f.policy[20] != "batch" {
		t.Errorf("the held-back actions never came: hog %v %s", f.cpus[20], f.policy[20])
	}
}

func TestEngineRollbackWhenRewardWorsens(t *testing.T) {
	f := newFakeHAL(10)
	e, audit := testEngine(t, ModeApply, f, func(c *Config) { c.Rollback.After = 2; c.Cooldown = 10 })
	good := dna.Genes{}
	for k, v := range svcGenes {
		good[k] = v
	}
	good["runq_delay_frac"] = 0.1
	worse := dna.Genes{}
	for k, v := range svcGenes {
		worse[k] = v
	}
	worse["runq_delay_frac"] = 0.9
	step(t, e, obsOf(wl{"svc", 10, good}))
	step(t, e, obsOf(wl{"svc", 10, good})) // applied; reward before = -0.1
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Fatalf("not applied: %v", f.cpus[10])
	}
	step(t, e, obsOf(wl{"svc", 10, worse})) // 1 interval on: not judged yet
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Fatalf("judged before rollback.after intervals")
	}
	st := step(t, e, obsOf(wl{"svc", 10, worse}))
	if len(st.Undone) == 0 || !slices.Equal(f.cpus[10], []int{0, 1}) {
		t.Fatalf("reward fell from -0.1 to -0.9 and nothing was rolled back: undone %v, cpus %v", st.Undone, f.cpus[10])
	}
	if !strings.Contains(audit.String(), `"verdict":"rolled back"`) {
		t.Errorf("audit lacks the verdict")
	}
	// Cooling down: the still-matching rule is not redone at once.
	st = step(t, e, obsOf(wl{"svc", 10, worse}))
	if !slices.Equal(f.cpus[10], []int{0, 1}) {
		t.Errorf("redone during the cool-down")
	}
	cooling := false
	for _, r := range st.Refused {
		cooling = cooling || strings.Contains(r.Reason, "cooling down")
	}
	if !cooling {
		t.Errorf("refusals %v: want a cool-down", st.Refused)
	}
}

func TestEngineKeepsAChangeThatHelps(t *testing.T) {
	f := newFakeHAL(10)
	e, _ := testEngine(t, ModeApply, f, nil)
	better := dna.Genes{}
	for k, v := range svcGenes {
		better[k] = v
	}
	better["runq_delay_frac"] = 0.01
	step(t, e, obsOf(wl{"svc", 10, svcGenes}))
	step(t, e, obsOf(wl{"svc", 10, svcGenes}))
	for i := 0; i < 4; i++ {
		if st := step(t, e, obsOf(wl{"svc", 10, better})); len(st.Undone) != 0 {
			t.Fatalf("a change that helped was undone: %v", st.Undone)
		}
	}
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Errorf("service not on its CPU: %v", f.cpus[10])
	}
}

func TestEnginePingPongFreezes(t *testing.T) {
	f := newFakeHAL(20)
	e, audit := testEngine(t, ModeApply, f, func(c *Config) { c.Hysteresis, c.Release = 1, 1; c.PingPong = PingPongConfig{Flips: 2, Window: 100} })
	on, off := obsOf(wl{"hog", 20, hogGenes}), obsOf(wl{"hog", 20, idle})
	applies := 0
	for i := 0; i < 10; i++ {
		o := on
		if i%2 == 1 {
			o = off
		}
		st := step(t, e, o)
		for _, a := range st.Applied {
			if _, ok := a.Action.(hal.SetSched); ok {
				applies++
			}
		}
	}
	// Applied, undone, redone once, undone: the second redo freezes it.
	if applies != 2 {
		t.Errorf("demoted %d times, want 2 before freezing", applies)
	}
	if e.Guard().Frozen("hog") == "" {
		t.Fatalf("not frozen after repeated undo/redo")
	}
	if !strings.Contains(audit.String(), "ping-pong") {
		t.Errorf("the audit does not say why it froze")
	}
}

func TestEngineNeverTouchesProtected(t *testing.T) {
	f := newFakeHAL(1, 10, 20, 30)
	e, audit := testEngine(t, ModeApply, f, func(c *Config) {
		c.Protected.Names = []string{"sshd*"}
		c.Protected.PIDs = []int{30}
	})
	self := e.opts.Self
	f.cpus[self], f.policy[self] = []int{0, 1}, "other"
	o := obsOf(wl{"init", 1, hogGenes}, wl{"sshd-session", 10, hogGenes}, wl{"x", 30, hogGenes}, wl{"sculpt", self, hogGenes}, wl{"hog", 20, hogGenes})
	for i := 0; i < 3; i++ {
		step(t, e, o)
	}
	for _, a := range f.applied {
		if pid := hal.TargetPID(a); pid != 20 && pid != 0 {
			t.Errorf("touched pid %d: %v", pid, a)
		}
	}
	if f.policy[20] != "batch" {
		t.Errorf("the unprotected antagonist was not arranged: %v", f.policy[20])
	}
	for _, why := range []string{"PID 1", "protected name", "protected PID 30", "sculpt itself"} {
		if !strings.Contains(audit.String(), why) {
			t.Errorf("audit does not say %q", why)
		}
	}
}

// The shell (or supervisor) that started sculpt is never touched, unless
// protected.ancestors is turned off.
func TestEngineNeverTouchesItsAncestors(t *testing.T) {
	for _, protect := range []bool{true, false} {
		f := newFakeHAL(40, 20)
		cfg := DefaultConfig()
		cfg.Hysteresis, cfg.Cooldown = 1, 0
		cfg.Protected.Ancestors = protect
		var audit bytes.Buffer
		e := New(Options{Mode: ModeApply, HAL: f, Topology: vm2(), Rules: dedicatedRules(t), Config: cfg, Audit: &audit, Self: 999999, Ancestors: []int{40, 41}})
		step(t, e, obsOf(wl{"login-shell", 40, hogGenes}, wl{"hog", 20, hogGenes}))
		if touched := f.policy[40] != "other"; touched == protect {
			t.Errorf("protected.ancestors %v: the shell that started sculpt is %s", protect, f.policy[40])
		}
		if f.policy[20] != "batch" {
			t.Errorf("protected.ancestors %v: the antagonist was not arranged: %s", protect, f.policy[20])
		}
		if said := strings.Contains(audit.String(), "which started sculpt"); said != protect {
			t.Errorf("protected.ancestors %v: audit %s", protect, audit.String())
		}
	}
}

// Each excluded workload is said once, in the first step that sees it,
// with the reason and the setting that excludes it; a workload the guard
// may touch is not listed.
func TestEngineSaysExclusionsOnce(t *testing.T) {
	f := newFakeHAL(40, 20)
	cfg := DefaultConfig()
	cfg.Protected.Names = []string{"sshd*"}
	e := New(Options{Mode: ModeAdvise, HAL: f, Topology: vm2(), Rules: dedicatedRules(t), Config: cfg, Self: 999999, Ancestors: []int{40}})
	o := obsOf(wl{"bash", 40, hogGenes}, wl{"hog", 20, hogGenes})
	st := step(t, e, o)
	want := []Exclusion{{Workload: "bash", Name: "bash", Reason: "holds PID 40 (bash), which started sculpt (your shell, terminal or supervisor): protected.ancestors"}}
	if !slices.Equal(st.Excluded, want) {
		t.Errorf("first step excluded %+v, want %+v", st.Excluded, want)
	}
	if st := step(t, e, o); len(st.Excluded) != 0 {
		t.Errorf("second step excluded %+v again, want it said once", st.Excluded)
	}
	o = obsOf(wl{"bash", 40, hogGenes}, wl{"hog", 20, hogGenes}, wl{"sshd-session", 50, idle})
	st = step(t, e, o)
	if len(st.Excluded) != 1 || st.Excluded[0].Workload != "sshd-session" || !strings.Contains(st.Excluded[0].Reason, "protected.names") {
		t.Errorf("a new protected workload: excluded %+v, want sshd-session by protected.names", st.Excluded)
	}
}

// An arrangement in force is let go only after Release intervals with no
// match; a different wish takes over after Hysteresis.
func TestGuardReleaseIsSlowerThanHysteresis(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hysteresis, cfg.Release = 2, 4
	g := NewGuard(cfg, 1)
	a := &Match{Rule: "a", Want: Want{Sched: "idle"}}
	b := &Match{Rule: "b", Want: Want{Sched: "batch"}}
	tick := 0
	next := func(m *Match) *Match { tick++; return g.Hysteresis(tick, "w", m, false) }
	if next(a) != nil || next(a) != a {
		t.Fatal("a match did not take over after 2 ticks")
	}
	for i := 1; i <= 3; i++ {
		if got := next(nil); got != a {
			t.Fatalf("let go after %d ticks of no match, want 4", i)
		}
	}
	if got := next(nil); got != nil {
		t.Fatalf("still %v after 4 ticks of no match", got)
	}
	next(a)
	next(a)
	if next(b) != a || next(b) != b {
		t.Error("a different match did not take over after 2 ticks")
	}
	if _, err := ParseConfig("c.yaml", []byte("version: 1\nhysteresis: 3\nrelease: 2\n")); err == nil || !strings.Contains(err.Error(), "c.yaml:3: release: 2: want at least hysteresis (3)") {
		t.Errorf("release below hysteresis: %v", err)
	}
}

func TestGuardRefusesForeignPIDs(t *testing.T) {
	g := NewGuard(DefaultConfig(), 4242)
	p := Plan{Decisions: []Decision{{Workload: "w", Rule: "r", Actions: []PlannedAction{
		{Action: hal.PinThreads{PID: 5, CPUs: []int{0}}},
		{Action: hal.PinThreads{PID: 6, CPUs: []int{0}}},
		{Action: hal.PinThreads{PID: 4242, CPUs: []int{0}}},
		{Action: hal.SetSched{PID: 1, Policy: "idle"}},
	}}}}
	out, refused := g.Filter(1, p, map[string][]int{"w": {5, 4242, 1}})
	if len(out.Decisions[0].Actions) != 1 || hal.TargetPID(out.Decisions[0].Actions[0].Action) != 5 {
		t.Errorf("let through %v", out.Decisions[0].Actions)
	}
	if len(refused) != 3 {
		t.Errorf("refused %v, want pid 6 (not a member), sculpt and PID 1", refused)
	}
}

func TestGuardHysteresisKeepsOldWishThroughNoise(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hysteresis = 3
	g := NewGuard(cfg, 1)
	a, b := match("a", 1, Want{Cores: CoresShared}), match("b", 1, Want{Cores: CoresDedicated, Count: 1})
	seq := []*Match{a, a, a, b, a, b, b, b}
	want := []string{"", "", "a", "a", "a", "a", "a", "b"}
	for i, m := range seq {
		got := g.Hysteresis(i+1, "w", m, false)
		name := ""
		if got != nil {
			name = got.Rule
		}
		if name != want[i] {
			t.Errorf("tick %d: in force %q, want %q", i+1, name, want[i])
		}
	}
}

// A phase change puts the new wish in force at once; without it, the wish
// waits out the hysteresis streak.
func TestGuardPhaseChangeSkipsHysteresis(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Hysteresis, cfg.Release = 3, 3
	g := NewGuard(cfg, 1)
	a, b := match("a", 1, Want{Cores: CoresShared}), match("b", 1, Want{Cores: CoresDedicated, Count: 1})
	seq := []struct {
		m     *Match
		phase bool
		want  string
	}{
		{a, false, ""}, {a, false, ""}, {a, false, "a"},
		{b, false, "a"},
		{b, true, "b"}, // the phase change: at once, though b has held 2 ticks
		{a, false, "b"}, {a, false, "b"},
		{nil, true, ""}, // a phase change to no wish lets go at once
		{b, false, ""},
	}
	for i, s := range seq {
		got := g.Hysteresis(i+1, "w", s.m, s.phase)
		name := ""
		if got != nil {
			name = got.Rule
		}
		if name != s.want {
			t.Errorf("tick %d (phase %v): in force %q, want %q", i+1, s.phase, name, s.want)
		}
	}
}
