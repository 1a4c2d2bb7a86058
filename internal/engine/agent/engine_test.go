package agent_test

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/engine/agent"
	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/workload"
)

// machine is a fake HAL holding what the engine sets: each process's class
// and cpu cgroup, each cgroup's quota; it counts what each interval applied.
type machine struct {
	policy  map[int]string
	cgroup  map[int]string
	quota   map[string]int64
	shares  map[string]uint64
	idle    map[string]bool
	applied int
}

func (m *machine) Capabilities() hal.Capabilities {
	y := hal.Yes("fake")
	return hal.Capabilities{Pin: y, Sched: y, Cpuset: y, CPUWeight: y, CPUQuota: y, Cgroups: y}
}

func (m *machine) Snapshot(_ context.Context, pids []int) (*hal.Arrangement, error) {
	arr := &hal.Arrangement{}
	for _, p := range pids {
		cg := m.cgroup[p]
		if cg == "" {
			cg = "/"
		}
		q, ok := m.quota[cg]
		if !ok {
			q = -1
		}
		pol := m.policy[p]
		if pol == "" {
			pol = "other"
		}
		arr.Processes = append(arr.Processes, hal.ProcessState{PID: p,
			Threads: []hal.ThreadState{{TID: p, CPUs: []int{0, 1}, Policy: pol}},
			Cgroups: map[string]string{"cpu": cg},
			CPU:     &hal.CPULimits{Cgroup: cg, Shares: m.sharesOf(cg), QuotaUS: q, PeriodUS: 100000, Idle: m.idle[cg]}})
	}
	return arr, nil
}

func (m *machine) Apply(_ context.Context, a hal.Action) (hal.Action, error) {
	m.applied++
	switch a := a.(type) {
	case hal.SetSched:
		old := m.policy[a.PID]
		m.policy[a.PID] = a.Policy
		return hal.SetSched{PID: a.PID, Policy: old}, nil
	case hal.CreateCgroup:
		return hal.RemoveCgroup(a), nil
	case hal.MoveToCgroup:
		old := m.cgroup[a.PID]
		m.cgroup[a.PID] = a.Cgroup
		return hal.MoveToCgroup{PID: a.PID, Cgroup: old, Controllers: a.Controllers}, nil
	case hal.SetCgroupCPU:
		old, ok := m.quota[a.Cgroup]
		if !ok {
			old = -1
		}
		if a.QuotaUS != nil {
			m.quota[a.Cgroup] = *a.QuotaUS
		}
		if a.Weight != nil {
			m.shares[a.Cgroup] = 2 + (*a.Weight-1)*262142/9999
		}
		if a.Idle != nil {
			m.idle[a.Cgroup] = *a.Idle
		}
		return hal.SetCgroupCPU{Cgroup: a.Cgroup, QuotaUS: &old}, nil
	}
	return hal.Steps{}, nil
}

func (m *machine) sharesOf(cg string) uint64 {
	if s, ok := m.shares[cg]; ok {
		return s
	}
	return 1024
}

func vm() *topology.Topology {
	return &topology.Topology{
		CPUs: []topology.CPU{
			{ID: 0, Online: true, CoreID: 0, Node: 0, ThreadSiblings: []int{0}},
			{ID: 1, Online: true, CoreID: 1, Node: 0, ThreadSiblings: []int{1}},
		},
		Nodes: []topology.Node{{ID: 0, CPUs: []int{0, 1}, Distances: []int{10}}},
	}
}

// The learning agent driving the real engine over 120 intervals of a
// seeded synthetic co-location (the service's p99 falls as the two
// spinners' total quota falls): the guard's budget holds in every
// interval, the protected workload is never touched, the spinners never
// get less than the floor, and the service's objective is met in at least
// 95% of the intervals after the agent settles.
func TestLearnerThroughTheEngine(t *testing.T) {
	m := &machine{policy: map[int]string{}, cgroup: map[int]string{}, quota: map[string]int64{}, shares: map[string]uint64{}, idle: map[string]bool{}}
	cfg := engine.DefaultConfig()
	cfg.Hysteresis, cfg.Budget = 1, 4
	cfg.Objectives = []engine.Objective{{Workload: "svc", P99: 2 * time.Millisecond}}
	cfg.Protected.Names = []string{"sshd"}
	l, err := agent.New(agent.Options{Config: cfg.Agent})
	if err != nil {
		t.Fatal(err)
	}
	e := engine.New(engine.Options{Mode: engine.ModeApply, HAL: m, Topology: vm(), Rules: engine.LoadDefaultRules(), Config: cfg, Self: 999999, Agent: l})
	rng := rand.New(rand.NewPCG(7, 7))
	svcGenes := dna.Genes{"cpu_util": 0.3, "ctx_vol_rate": 20000, "sockets": 2, "comm_peers": 1}
	hog := dna.Genes{"cpu_util": 1.0, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0, "runq_delay_frac": 0.5}
	var met, judged, settledAt int
	for tick := 1; tick <= 120; tick++ {
		// The spinners' CPU is their quota; the service's p99 follows it:
		// 2 ms at 0.5 cores of batch work, 35% worse per 0.25 cores more.
		batch := 2.0
		for _, p := range []int{20, 30} {
			if q, ok := m.quota[m.cgroup[p]]; ok && q > 0 {
				batch -= 1 - float64(q)/100000
			}
		}
		p99 := 0.0017 * math.Pow(1.35, (batch-0.5)/0.25) * math.Exp(0.05*rng.NormFloat64())
		g := dna.Genes{}
		for k, v := range svcGenes {
			g[k] = v
		}
		g["req_p99_s"] = p99
		obs := &engine.Observation{}
		for _, w := range []struct {
			id    string
			pid   int
			genes dna.Genes
			kind  string
		}{{"svc", 10, g, "latency-critical-server"}, {"hog1", 20, hog, "cpu-bound-batch"}, {"hog2", 30, hog, "cpu-bound-batch"}, {"sshd", 40, hog, "cpu-bound-batch"}} {
			obs.Workloads = append(obs.Workloads, workload.Workload{ID: w.id, Name: w.id, Kind: workload.KindTree, Procs: []workload.Proc{{PID: w.pid, Comm: w.id}}})
			obs.DNA = append(obs.DNA, dna.DNA{ID: w.id, Name: w.id, PIDs: []int{w.pid}, Genes: w.genes, Archetype: w.kind})
		}
		m.applied = 0
		st, err := e.Step(context.Background(), obs)
		if err != nil {
			t.Fatal(err)
		}
		if m.applied > cfg.Budget {
			t.Fatalf("tick %d: %d actions applied, budget %d", tick, m.applied, cfg.Budget)
		}
		if m.policy[40] != "" || m.cgroup[40] != "" {
			t.Fatalf("tick %d: the protected workload was touched", tick)
		}
		for _, p := range []int{20, 30} {
			if q, ok := m.quota[m.cgroup[p]]; ok && q > 0 && float64(q)/100000 < cfg.Agent.FloorCPU-1e-9 {
				t.Fatalf("tick %d: pid %d quota %d µs, under the floor", tick, p, q)
			}
		}
		if st.Agent != nil && st.Agent.Settled && settledAt == 0 {
			settledAt = tick
		}
		if settledAt > 0 && tick > settledAt && len(st.Agent.Objectives) == 1 {
			judged++
			if st.Agent.Objectives[0].Met {
				met++
			}
		}
	}
	if settledAt == 0 || settledAt > 40 {
		t.Fatalf("settled at interval %d, want within 40 (30 of the agent's plus the rules' hysteresis and budget)", settledAt)
	}
	if att := float64(met) / float64(judged); att < 0.95 {
		t.Errorf("objective met in %.3f of the intervals after settling, want >= 0.95", att)
	}
	t.Logf("settled at interval %d; objective met in %d of %d intervals after", settledAt, met, judged)
}
