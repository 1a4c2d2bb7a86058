package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/engine/agent"
	"sculpt/internal/hal"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// Policies that arrange the simulated server.
const (
	PolicyNone   = "none"   // Linux defaults: nothing is changed
	PolicyStatic = "static" // a static CPU manager: services get exclusive whole cores once, the rest share what is left
	PolicyRules  = "rules"  // sculpt's engine with its default rules, no agent
	PolicySculpt = "sculpt" // sculpt's engine: rules plus the learning agent
	PolicyOracle = "oracle" // the oracle's best arrangement for each phase
)

// Policies lists them.
var Policies = []string{PolicySculpt, PolicyRules, PolicyStatic, PolicyNone, PolicyOracle}

// StepResult is one interval of a run.
type StepResult struct {
	Step       int                       `json:"step"`
	Reward     float64                   `json:"reward"`
	Violations int                       `json:"objective_violations"`
	Actions    int                       `json:"actions"`
	Workloads  map[string]WorkloadResult `json:"workloads"`
}

// WorkloadResult is one workload's outcome in one interval.
type WorkloadResult struct {
	CPU        float64 `json:"cpu"`
	P99Millis  float64 `json:"p99_ms,omitempty"`
	Throughput float64 `json:"throughput"`
	Score      float64 `json:"score"`
}

// Result is a whole run. Everything in it is simulated.
type Result struct {
	Simulated  bool          `json:"simulated"`
	Scenario   string        `json:"scenario"`
	Topology   string        `json:"topology"`
	Policy     string        `json:"policy"`
	MeanReward float64       `json:"mean_reward"`
	Violations int           `json:"objective_violations"`
	Actions    int           `json:"actions"`
	Steps      []StepResult  `json:"steps"`
	Oracle     []SearchStats `json:"oracle_searches,omitempty"`
}

// epoch is the simulated clock's start (fixed: output is a function of the
// scenario and seed only).
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Run plays scenario sc under policy for steps intervals (0: the
// scenario's). Each interval the model gives every workload's outcome and
// its frame of telemetry; the reward is that of the arrangement in force
// during the interval; then the policy acts.
func Run(ctx context.Context, sc *Scenario, policy string, steps int) (*Result, error) {
	if !slices.Contains(Policies, policy) {
		return nil, fmt.Errorf("policy %q: want one of %v", policy, Policies)
	}
	hw, err := LoadHardware(sc.Topology)
	if err != nil {
		return nil, err
	}
	if steps <= 0 {
		steps = sc.Steps
	}
	srv := NewServer(hw)
	res := &Result{Simulated: true, Scenario: sc.Name, Topology: hw.Name, Policy: policy}
	slo := map[string]float64{}
	progs := map[string]Program{}
	nodeOf := map[string]int{}
	for i, w := range sc.Workloads {
		p, err := w.program()
		if err != nil {
			return nil, err
		}
		progs[w.Name] = p
		slo[w.Name] = w.SLOMillis / 1000
		nd := int((sc.Seed + uint64(i)*7919) % uint64(len(hw.Topo.Nodes)))
		if w.Node != nil && *w.Node >= 0 && *w.Node < len(hw.Topo.Nodes) {
			nd = *w.Node
		}
		nodeOf[w.Name] = nd
	}
	var eng *engine.Engine
	// As sculpt run: the DNA (and the objectives' latency) over one interval,
	// so the agent judges the arrangement of the interval that just ended.
	prof := dna.NewProfiler(sc.Interval)
	if policy == PolicyRules || policy == PolicySculpt {
		cfg := engine.DefaultConfig()
		for _, w := range sc.Workloads {
			if w.SLOMillis > 0 {
				cfg.Objectives = append(cfg.Objectives, engine.Objective{Workload: w.Name, P99: time.Duration(w.SLOMillis * float64(time.Millisecond))})
			} else {
				cfg.Objectives = append(cfg.Objectives, engine.Objective{Workload: w.Name, Maximize: "throughput"})
			}
		}
		opts := engine.Options{Mode: engine.ModeApply, HAL: srv, Topology: hw.Topo, Rules: engine.LoadDefaultRules(), Config: cfg, Self: 1}
		if policy == PolicySculpt {
			l, err := agent.New(agent.Options{Config: cfg.Agent, Now: func() time.Time { return epoch }})
			if err != nil {
				return nil, err
			}
			opts.Agent = l
		}
		eng = engine.New(opts)
	}
	oracleKey := ""
	staticHeld := map[string][]int{}
	for step := range steps {
		now := epoch.Add(time.Duration(step+1) * sc.Interval)
		for i, w := range sc.Workloads {
			if step == w.Start {
				p := progs[w.Name]
				srv.start(w.Name, 1000+100*i, uint64(100+w.Start), p, defaultPlacement(hw, p, nodeOf[w.Name]))
			}
			if w.Stop != 0 && step == w.Stop {
				srv.stop(w.Name)
			}
		}
		key := fmt.Sprint(step >= 0)
		for _, name := range sc.names() {
			if sp := srv.byName[name]; sp != nil {
				f := sc.scaleAt(name, step)
				sp.prog = progs[name].scaled(f)
				key += fmt.Sprintf("|%s*%g", name, f)
			}
		}
		world, names := srv.world(slo)
		outs := Evaluate(world)
		sr := StepResult{Step: step + 1, Reward: Reward(world, outs), Workloads: map[string]WorkloadResult{}}
		var frames []telemetry.Frame
		var ws []workload.Workload
		for i, name := range names {
			o := outs[i]
			wr := WorkloadResult{CPU: round(o.CPU, 4), Throughput: round(o.Throughput, 4), Score: round(o.Score, 4)}
			if world.Progs[i].Kind == KindService {
				wr.P99Millis = round(o.P99*1000, 4)
				if s := slo[name]; s > 0 && o.P99 > s {
					sr.Violations++
				}
			}
			sr.Workloads[name] = wr
			sp := srv.byName[name]
			id := "cg:" + sp.cgroup
			frames = append(frames, frame(id, now, sc.Interval, world.Progs[i], world.Place[i], o, hw))
			ws = append(ws, workload.Workload{ID: id, Name: name, Kind: workload.KindCgroup,
				Cgroups: workload.Cgroups{V2: sp.cgroup}, Procs: []workload.Proc{{PID: sp.pid, StartTime: sp.start, Comm: name}}})
		}
		before := srv.Applied
		switch policy {
		case PolicyRules, PolicySculpt:
			prof.Observe(frames)
			obs := &engine.Observation{Time: now, Workloads: ws}
			for _, w := range ws {
				d := prof.Profile(w.ID)
				if d == nil {
					continue
				}
				d.Name, d.WorkloadKind, d.PIDs, d.Cgroup = w.Name, string(w.Kind), w.PIDs(), w.Cgroups.V2
				obs.DNA = append(obs.DNA, *d)
			}
			if _, err := eng.Step(ctx, obs); err != nil {
				return nil, fmt.Errorf("step %d: %w", step+1, err)
			}
		case PolicyOracle:
			if key != oracleKey {
				oracleKey = key
				a, _, st := Search(world)
				res.Oracle = append(res.Oracle, st)
				if _, err := applyArrangement(ctx, srv, names, world, a); err != nil {
					return nil, err
				}
			}
		case PolicyStatic:
			if err := static(ctx, srv, names, world, staticHeld); err != nil {
				return nil, err
			}
		}
		sr.Actions = srv.Applied - before
		sr.Reward = round(sr.Reward, 6)
		res.Steps = append(res.Steps, sr)
		res.MeanReward += sr.Reward
		res.Violations += sr.Violations
		res.Actions += sr.Actions
	}
	res.MeanReward = round(res.MeanReward/float64(max(len(res.Steps), 1)), 6)
	return res, nil
}

// static is a static CPU manager (the kubelet's static policy): each
// service, when it arrives, gets exclusive whole cores for its request
// (its demand with half again of headroom, as the rules ask), lowest free cores first and
// CPU 0 kept for the system; everything else runs on the CPUs no service
// holds. Memory, classes and interrupts are left alone.
func static(ctx context.Context, s *Server, names []string, w *World, held map[string][]int) error {
	taken := map[int]bool{0: true}
	for n, cpus := range held {
		if s.byName[n] == nil {
			delete(held, n)
			continue
		}
		for _, c := range cpus {
			taken[c] = true
		}
	}
	online := s.hw.Topo.OnlineCPUs()
	for i, n := range names {
		if w.Progs[i].Kind != KindService || held[n] != nil {
			continue
		}
		want := dedicatedCount(w.Progs[i])
		var got []int
		for _, c := range online {
			if len(got) >= want || len(taken)+len(got) >= len(online) {
				break
			}
			if !taken[c] {
				got = append(got, c)
			}
		}
		if len(got) > 0 {
			held[n] = got
			for _, c := range got {
				taken[c] = true
			}
		}
	}
	var shared []int
	for _, c := range online {
		if !taken[c] || c == 0 {
			shared = append(shared, c)
		}
	}
	for _, n := range names {
		sp := s.byName[n]
		cpus := shared
		if h := held[n]; h != nil {
			cpus = h
		}
		if !slices.Equal(sp.place.Threads[0].CPUs, cpus) {
			if _, err := s.Apply(ctx, hal.PinThreads{PID: sp.pid, CPUs: slices.Clone(cpus)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
