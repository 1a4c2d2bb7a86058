package engine

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sculpt/internal/dna"
)

// scriptedAgent records what the engine shows it and caps every batch
// workload at quota cores.
type scriptedAgent struct {
	quota  float64
	inputs []AgentInput
}

func (a *scriptedAgent) Adjust(in AgentInput) AgentOutput {
	a.inputs = append(a.inputs, in)
	var out AgentOutput
	for _, w := range in.Workloads {
		if w.Role == RoleBatch && w.Want != nil {
			want := *w.Want
			want.CPUQuota = a.quota
			out.Adjustments = append(out.Adjustments, Adjustment{Workload: w.ID, Want: want, Reason: "scripted"})
		}
	}
	out.State = &AgentState{Agent: "scripted", Level: 1, Objectives: in.Outcome.Objectives}
	return out
}

// The adjust step: the engine measures the objective from the service's
// genes, shows the agent the service and the batch work the rules demoted,
// plans the agent's quota (a cpu cgroup of its own for a process tree),
// and does not roll back the batch progress the agent gave up on purpose.
func TestEngineAdjustStep(t *testing.T) {
	f := newFakeHAL(10, 20)
	cfg := DefaultConfig()
	cfg.Hysteresis, cfg.Cooldown, cfg.Rollback.After = 1, 0, 1
	cfg.Objectives = []Objective{{Workload: "svc", P99: 2 * time.Millisecond}}
	ag := &scriptedAgent{quota: 0.5}
	var audit bytes.Buffer
	e := New(Options{Mode: ModeApply, HAL: f, Topology: vm2(), Rules: LoadDefaultRules(), Config: cfg, Audit: &audit, Self: 999999, Agent: ag})
	svc := dna.Genes{}
	for k, v := range svcGenes {
		svc[k] = v
	}
	svc["req_p99_s"] = 0.003
	st := step(t, e, obsOf(wl{"svc", 10, svc}, wl{"hog", 20, hogGenes}))

	in := ag.inputs[0]
	if len(in.Outcome.Objectives) != 1 {
		t.Fatalf("objectives shown %+v", in.Outcome.Objectives)
	}
	o := in.Outcome.Objectives[0]
	if !o.Known || o.Met || o.Value != 0.003 || o.Target != 0.002 || o.Source != "ebpf" || o.Objective != "p99 <= 2ms" {
		t.Errorf("objective status %+v, want p99 3ms measured against 2ms, violated", o)
	}
	roles := map[string]string{}
	for _, w := range in.Workloads {
		roles[w.ID] = w.Role
	}
	if roles["svc"] != RoleService || roles["hog"] != RoleBatch || in.Outcome.BatchThroughput != 1.0 {
		t.Errorf("roles %v batch %v, want svc service, hog batch at 1 core", roles, in.Outcome.BatchThroughput)
	}
	if st.Agent == nil || st.Agent.Agent != "scripted" {
		t.Errorf("step's agent state %+v", st.Agent)
	}
	cg := SculptCgroup("hog")
	if f.cgroup[20] != cg || f.limits[cg].QuotaUS != 50000 || f.policy[20] != "idle" {
		t.Fatalf("hog: cgroup %q quota %d policy %s; want moved to %s, 50000µs, idle (applied %v)", f.cgroup[20], f.limits[cg].QuotaUS, f.policy[20], cg, f.applied)
	}
	if !strings.Contains(audit.String(), `"event":"adjusted"`) || !strings.Contains(audit.String(), `"reason":"scripted"`) {
		t.Errorf("no adjusted event in the audit log")
	}
	// The hog gets far less done now; the agent keeps it so: no rollback.
	starved := dna.Genes{"cpu_util": 0.3, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0}
	for range 3 {
		st = step(t, e, obsOf(wl{"svc", 10, svc}, wl{"hog", 20, starved}))
		if len(st.Undone) > 0 {
			t.Fatalf("rolled back the agent's throttling: %v", st.Undone)
		}
	}
	// Throttled, the hog no longer looks CPU-bound to the rules; it stays
	// the batch work the agent holds it as.
	if f.policy[20] != "idle" || len(st.Plan.Decisions) == 0 || decisionOf(st.Plan, "hog").Rule != "batch-idle-small" {
		t.Errorf("throttled hog: policy %s, decision %+v; want still batch-idle-small", f.policy[20], decisionOf(st.Plan, "hog"))
	}
	// The agent lifts the quota: one action, back to no limit, no cool-down
	// (the arrangement is the same but for what the agent tunes).
	ag.quota = -1
	st = step(t, e, obsOf(wl{"svc", 10, svc}, wl{"hog", 20, starved}))
	if f.limits[cg].QuotaUS != -1 {
		t.Errorf("quota not lifted: %d (refused %v)", f.limits[cg].QuotaUS, st.Refused)
	}
	var kinds []string
	for _, a := range st.Applied {
		kinds = append(kinds, a.Action.Kind())
	}
	if len(kinds) != 1 || kinds[0] != "cgroup-cpu" {
		t.Errorf("lifting applied %v, want one cgroup-cpu", kinds)
	}
}

// Without an agent, a batch workload's lost progress rolls its demotion
// back only when no service has an objective it was traded for.
func TestRollbackWeighsObjectives(t *testing.T) {
	for _, withObjective := range []bool{false, true} {
		f := newFakeHAL(10, 20)
		cfg := DefaultConfig()
		cfg.Hysteresis, cfg.Cooldown, cfg.Rollback.After = 1, 0, 1
		if withObjective {
			cfg.Objectives = []Objective{{Workload: "svc", P99: 2 * time.Millisecond}}
		}
		e := New(Options{Mode: ModeApply, HAL: f, Topology: vm2(), Rules: LoadDefaultRules(), Config: cfg, Self: 999999})
		step(t, e, obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes}))
		if f.policy[20] != "idle" {
			t.Fatalf("hog not demoted: %s", f.policy[20])
		}
		starved := dna.Genes{"cpu_util": 0.2, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0}
		undone := false
		for range 3 {
			undone = undone || len(step(t, e, obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, starved})).Undone) > 0
		}
		if undone == withObjective {
			t.Errorf("objective %v: rolled back %v; want a rollback only without an objective", withObjective, undone)
		}
	}
}

// Objectives read from the application's own metrics: a latency histogram
// over the interval since the last scrape, a throughput counter's rate.
func TestObjectivesFromApplicationMetrics(t *testing.T) {
	var lat, jobs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jobs" {
			fmt.Fprintf(w, "# TYPE jobs_total counter\njobs_total %d\n", 1000*jobs.Add(1))
			return
		}
		// Each scrape: 100 more requests, all under 1 ms, then (from the
		// third scrape) 100 more all between 2 and 4 ms.
		k := lat.Add(1)
		fast, slow := 100*k, int64(0)
		if k >= 3 {
			slow = 100 * (k - 2)
		}
		fmt.Fprintf(w, "# TYPE lat_seconds histogram\nlat_seconds_bucket{le=\"0.001\"} %d\nlat_seconds_bucket{le=\"0.002\"} %d\nlat_seconds_bucket{le=\"0.004\"} %d\nlat_seconds_bucket{le=\"+Inf\"} %d\nlat_seconds_sum 1\nlat_seconds_count %d\n",
			fast, fast, fast+slow, fast+slow, fast+slow)
	}))
	defer srv.Close()
	f := newFakeHAL(10, 20)
	cfg := DefaultConfig()
	cfg.Hysteresis = 1
	cfg.Objectives = []Objective{
		{Workload: "svc", P99: 2 * time.Millisecond, Metric: &ObjectiveMetric{URL: srv.URL + "/lat", Name: "lat_seconds"}},
		{Workload: "hog", Maximize: "throughput", Metric: &ObjectiveMetric{URL: srv.URL + "/jobs", Name: "jobs_total"}},
	}
	ag := &scriptedAgent{quota: -1}
	e := New(Options{Mode: ModeApply, HAL: f, Topology: vm2(), Rules: LoadDefaultRules(), Config: cfg, Self: 999999, Agent: ag})
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	status := func(i int) (ObjectiveStatus, ObjectiveStatus) {
		in := ag.inputs[i]
		return in.Outcome.Objectives[0], in.Outcome.Objectives[1]
	}
	step(t, e, o)
	if lat, thr := status(0); lat.Known || thr.Known {
		t.Errorf("first scrape: %+v %+v, want both unknown (an interval needs two scrapes)", lat, thr)
	}
	step(t, e, o)
	if lat, thr := status(1); !lat.Known || !lat.Met || lat.Value > 0.001 || !thr.Known || thr.Value <= 0 || thr.Source != "metric" {
		t.Errorf("second: latency %+v throughput %+v; want p99 under 1ms met and a positive rate", lat, thr)
	}
	step(t, e, o) // this interval: 100 fast, 100 slow
	if lat, _ := status(2); !lat.Known || lat.Met || lat.Value < 0.002 || lat.Value > 0.004 {
		t.Errorf("third: latency %+v, want the interval's p99 between 2 and 4 ms, violated", lat)
	}
}
