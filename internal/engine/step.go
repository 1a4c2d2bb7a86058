package engine

import (
	"context"
	"fmt"
	"maps"
	"os"

	"sculpt/internal/hal"
	"sculpt/internal/workload"
)

// interval is one Step's working state, handed from each named step to the
// next.
type interval struct {
	obs     *Observation
	st      *Step
	byID    map[string]*workload.Workload
	seen    map[string]bool
	states  []WorkloadState // workloads with a want in force, in DNA order
	members map[string][]int
	pids    []int
	plan    Plan
}

// Step decides (and in apply mode acts) on one observation, in named steps
// run in a fixed order, each with one job:
//
//   - propose: the rules' wish per workload (the guard's exclusions and
//     hysteresis applied), or the undo of an arrangement no longer wished;
//   - adjust:  the agent judges the objectives over the interval that
//     ended and fine-tunes the wants (NopAgent keeps them);
//   - plan:    the wants and the current arrangement (a HAL snapshot) to
//     one conflict-free plan (MakePlan, pure);
//   - guard:   what the guard lets through (cool-down, budget, membership);
//   - measure: each workload's reward this interval;
//   - apply:   advise prints and audits the plan, apply carries it out;
//   - judge:   changes whose reward fell are rolled back.
func (e *Engine) Step(ctx context.Context, obs *Observation) (*Step, error) {
	e.tick++
	st := &Step{Tick: e.tick, Rewards: map[string]Reward{}}
	if e.opts.Mode == ModeObserve {
		return st, nil
	}
	iv := &interval{obs: obs, st: st, byID: map[string]*workload.Workload{}, seen: map[string]bool{}, members: map[string][]int{}}
	for i := range obs.Workloads {
		iv.byID[obs.Workloads[i].ID] = &obs.Workloads[i]
	}
	e.propose(ctx, iv)
	e.adjust(ctx, iv)
	if err := e.makePlan(ctx, iv); err != nil {
		return st, err
	}
	e.guardPlan(iv)
	e.measure(ctx, iv)
	e.apply(ctx, iv)
	e.judge(ctx, st)
	for id, r := range st.Rewards {
		e.rewards[id] = r
	}
	return st, nil
}

// propose evaluates the rules for every workload the guard may touch and
// keeps, through hysteresis, the wish in force.
func (e *Engine) propose(ctx context.Context, iv *interval) {
	rules := e.currentRules()
	st := iv.st
	for i := range iv.obs.DNA {
		d := &iv.obs.DNA[i]
		w := iv.byID[d.ID]
		if w == nil {
			continue
		}
		iv.seen[d.ID] = true
		if why := e.guard.ExcludedWorkload(w); why != "" {
			if !e.excluded[d.ID] {
				e.excluded[d.ID] = true
				st.Excluded = append(st.Excluded, Exclusion{Workload: d.ID, Name: d.Name, Reason: why})
				e.audit(AuditRecord{Event: "excluded", Workload: d.ID, Name: d.Name, Reason: "never touched: " + why})
			}
			continue
		}
		in := Input{Genes: d.Genes, Archetype: d.Archetype, Confidence: d.Confidence,
			Resembles: d.Resembles, Novel: d.Novel, PhaseChange: d.PhaseChange, Classifier: d.Classifier,
			Kind: d.WorkloadKind, Name: d.Name, ID: d.ID, PIDs: len(d.PIDs), Machine: e.machine}
		if d.Novelty != nil {
			in.Novelty = *d.Novelty
		}
		m, errs := rules.Evaluate(in)
		for _, err := range errs {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s: %v", d.ID, err))
		}
		stable := e.guard.Hysteresis(e.tick, d.ID, m, d.PhaseChange)
		if held, ok := e.throttled[d.ID]; ok && !isBatchClass(wantOfMatch(stable)) && !d.PhaseChange {
			// The agent's quota holds this batch work below the demand that
			// made the rules call it batch: it stays batch work until the
			// agent lifts the quota (or its behaviour changes phase).
			stable = held
		}
		if stable == nil {
			if len(e.ledger[d.ID]) > 0 && e.guard.Frozen(d.ID) == "" {
				e.undoWorkload(ctx, st, d.ID, d.Name, "undone", fmt.Sprintf("no rule has matched for %d intervals", max(e.opts.Config.Hysteresis, e.opts.Config.Release)))
			}
			continue
		}
		// The planner and the agent get a copy: an adjustment must not
		// change the guard's record of the rules' wish.
		mc := *stable
		iv.members[d.ID] = d.PIDs
		iv.pids = append(iv.pids, d.PIDs...)
		iv.states = append(iv.states, WorkloadState{ID: d.ID, Name: d.Name, PIDs: d.PIDs, CPUCgroup: ownCPUCgroup(w), BlkioCgroup: ownCgroup(w, "blkio"),
			Container: w.Kind == workload.KindContainer, Match: &mc})
		e.audit(AuditRecord{Event: "decision", Workload: d.ID, Name: d.Name, Rule: stable.Rule, Archetype: d.Archetype,
			Genes: stable.Genes, Traits: stable.Traits, Want: &stable.Want})
	}
	// Workloads that are gone: nothing to undo (their processes are gone;
	// the journal's revert skips them), forget them.
	forgetGone(e.ledger, iv.seen)
	forgetGone(e.throttled, iv.seen)
	forgetGone(e.histograms, iv.seen)
	forgetGone(e.counters, iv.seen)
	e.guard.Forget(e.tick)
}

// forgetGone drops the entries of workloads not seen this interval.
func forgetGone[V any](m map[string]V, seen map[string]bool) {
	maps.DeleteFunc(m, func(id string, _ V) bool { return !seen[id] })
}

// adjust measures the objectives over the interval that ended and lets the
// agent fine-tune the wants in force. Services with an objective are shown
// to the agent even when no rule matched them; batch work is what the
// rules put in a batch class or what an objective says to maximise.
func (e *Engine) adjust(ctx context.Context, iv *interval) {
	stateOf := map[string]*WorkloadState{}
	for i := range iv.states {
		stateOf[iv.states[i].ID] = &iv.states[i]
	}
	in := AgentInput{Tick: e.tick, Machine: e.machine}
	for i := range iv.obs.DNA {
		d := &iv.obs.DNA[i]
		if !iv.seen[d.ID] || e.excluded[d.ID] {
			continue
		}
		ws := stateOf[d.ID]
		o, hasObj := e.opts.Config.ObjectiveFor(d.ID, d.Name)
		aw := AgentWorkload{ID: d.ID, Name: d.Name, DNA: d}
		if hasObj {
			oc := o
			aw.Objective = &oc
			in.Outcome.Objectives = append(in.Outcome.Objectives, e.objectiveStatus(ctx, o, d))
		}
		if ws != nil {
			aw.Want = &ws.Match.Want
		}
		_, _, isLat := o.Percentile()
		switch {
		case hasObj && isLat:
			aw.Role = RoleService
		case (hasObj && o.Maximize != "") || (ws != nil && isBatchClass(aw.Want)):
			aw.Role = RoleBatch
			in.Outcome.BatchThroughput += d.Genes["cpu_util"]
		default:
			continue
		}
		in.Workloads = append(in.Workloads, aw)
	}
	out := e.agent.Adjust(in)
	iv.st.Agent = out.State
	tuned := map[string]bool{}
	for _, a := range out.Adjustments {
		ws := stateOf[a.Workload]
		if ws == nil {
			continue // the agent adjusts only what the rules arranged
		}
		tuned[a.Workload] = true
		if a.Want.CPUQuota > 0 {
			held := *ws.Match
			e.throttled[a.Workload] = &held
		} else {
			delete(e.throttled, a.Workload)
		}
		if a.Want.Signature() == ws.Match.Want.Signature() {
			continue
		}
		ws.Match.Want = a.Want
		e.audit(AuditRecord{Event: "adjusted", Workload: ws.ID, Name: ws.Name, Rule: ws.Match.Rule, Want: &ws.Match.Want,
			Reason: a.Reason, Agent: out.State})
	}
	// A quota the agent set and no longer speaks for (the workload left
	// its view) is lifted: the agent's fine-tuning ends with its role.
	for id := range e.throttled {
		if ws := stateOf[id]; ws != nil && !tuned[id] {
			ws.Match.Want.CPUQuota = -1
			if ws.Match.Want.IOReadMBps <= 0 {
				ws.Match.Want.IOReadMBps = -1 // the agent's caps go with its quota; a rule's stay
			}
			if ws.Match.Want.IOWriteMBps <= 0 {
				ws.Match.Want.IOWriteMBps = -1
			}
			tuned[id] = true
			delete(e.throttled, id)
			e.audit(AuditRecord{Event: "adjusted", Workload: ws.ID, Name: ws.Name, Rule: ws.Match.Rule, Want: &ws.Match.Want,
				Reason: "quota and I/O caps lifted: the agent no longer weighs this workload"})
		}
	}
	e.tuned = tuned
}

// wantOfMatch is m's want, nil for no match.
func wantOfMatch(m *Match) *Want {
	if m == nil {
		return nil
	}
	return &m.Want
}

// isBatchClass reports whether the rules put the workload in a batch
// scheduling class: the work they recognised as batch, which the agent may
// throttle. Busy work of unknown kind that only shares the CPUs is not.
func isBatchClass(w *Want) bool { return w != nil && (w.Sched == "batch" || w.Sched == "idle") }

// makePlan snapshots the arranged workloads' processes and plans.
func (e *Engine) makePlan(ctx context.Context, iv *interval) error {
	if len(iv.states) > 0 && e.opts.HAL != nil {
		arr, err := e.opts.HAL.Snapshot(ctx, iv.pids)
		if err != nil {
			return fmt.Errorf("snapshot of %d processes: %w", len(iv.pids), err)
		}
		for i := range iv.states {
			for _, pid := range iv.states[i].PIDs {
				if ps := arr.Process(pid); ps != nil {
					iv.states[i].Procs = append(iv.states[i].Procs, *ps)
				}
			}
		}
	}
	var caps hal.Capabilities
	if e.opts.HAL != nil {
		caps = e.opts.HAL.Capabilities()
	}
	iv.plan = MakePlan(PlanInput{Topology: e.opts.Topology, Caps: caps, Workloads: iv.states,
		ReserveShared: e.opts.Config.ReserveSharedCPUs, FixedIRQs: e.fixedIRQ, NRI: e.opts.NRI,
		MigrateBudget: int64(e.opts.Config.MigrateMiB) << 20, PageSize: int64(os.Getpagesize()), MemoryCooling: e.memoryCooling()})
	return nil
}

// guardPlan keeps what the guard lets through and records the refusals.
func (e *Engine) guardPlan(iv *interval) {
	plan, refused := e.guard.Filter(e.tick, iv.plan, iv.members)
	iv.plan = plan
	iv.st.Plan, iv.st.Refused = plan, refused
	for _, r := range refused {
		e.audit(AuditRecord{Event: "refused", Workload: r.Workload, Action: jsonAction(r.Action), Reason: r.Reason})
	}
}

// measure computes this interval's reward of every arranged workload: the
// "before" of anything applied now, the "after" of what was applied
// earlier.
func (e *Engine) measure(ctx context.Context, iv *interval) {
	wantOf := map[string]*Want{}
	for i := range iv.states {
		wantOf[iv.states[i].ID] = &iv.states[i].Match.Want
	}
	for i := range iv.obs.DNA {
		d := &iv.obs.DNA[i]
		w, ok := wantOf[d.ID]
		if !ok && len(e.ledger[d.ID]) == 0 {
			continue
		}
		kind := RewardKind(w)
		if cs := e.ledger[d.ID]; len(cs) > 0 {
			kind = cs[len(cs)-1].before.Kind
		}
		iv.st.Rewards[d.ID] = ComputeReward(kind, d.Genes, e.metricFor(ctx, d.ID, d.Name))
	}
}

// apply audits the plan and, in apply mode, carries it out.
func (e *Engine) apply(ctx context.Context, iv *interval) {
	for _, d := range iv.plan.Decisions {
		e.audit(AuditRecord{Event: "plan", Workload: d.Workload, Name: d.Name, Rule: d.Rule, Genes: d.Genes, Want: &d.Want, CPUs: d.CPUs, Notes: d.Notes})
		if e.opts.Mode != ModeApply || len(d.Actions) == 0 {
			for _, a := range d.Actions {
				e.audit(AuditRecord{Event: "advised", Workload: d.Workload, Name: d.Name, Rule: d.Rule, Action: jsonAction(a.Action), Reason: a.Reason})
			}
			continue
		}
		e.applyDecision(ctx, iv.st, d)
	}
}
