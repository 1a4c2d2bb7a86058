package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/workload"
)

// Mode is what the engine does with its plans.
type Mode string

// Modes.
const (
	ModeObserve Mode = "observe" // DNA only: no rules, no plans
	ModeAdvise  Mode = "advise"  // plans, logged and returned, nothing applied
	ModeApply   Mode = "apply"   // plans applied through the HAL
)

// Options configure an Engine.
type Options struct {
	Mode     Mode
	HAL      hal.HAL
	Topology *topology.Topology
	Rules    *RuleSet
	Config   Config
	Agent    Agent     // nil: NopAgent
	Audit    io.Writer // JSON lines; nil: no audit log
	Self     int       // sculpt's PID
	// Ancestors are the PIDs of the processes that started sculpt (its
	// parent, the parent's parent, ... below PID 1): protected when
	// Config.Protected.Ancestors is set.
	Ancestors []int
	// Scrape reads a workload's own metric; nil uses HTTP (Scrape).
	Scrape func(ctx context.Context, m MetricConfig) (float64, error)
	// NRI says that containers' CPU placement, weight and quota are
	// applied through the container runtime (internal/nri) from the
	// plan's decisions, not by the HAL (PlanInput.NRI).
	NRI bool
}

// Engine decides and acts once per observation: rules propose, the agent
// may adjust, the guard filters, the HAL applies; the reward that follows
// is compared with the one before, and a change that made things worse is
// undone. It is not safe for concurrent use, except SetRules.
type Engine struct {
	opts  Options
	guard *Guard
	agent Agent
	tick  int

	mu    sync.Mutex
	rules *RuleSet

	ledger   map[string][]*change // applied, not undone, per workload ID
	fixedIRQ map[int]bool
	// memMoved is the tick sculpt last moved a PID's memory (for its
	// cool-down).
	memMoved map[int]int
	rewards  map[string]Reward
	excluded map[string]bool
	machine  Machine
	enc      *json.Encoder
	client   *http.Client
	// tuned are the workloads whose wants the agent adjusted this
	// interval: their changes are judged by the agent against the
	// objectives, not rolled back for the batch progress they give up.
	tuned map[string]bool
	// throttled holds, per workload the agent gave a quota, the rules'
	// match that made it batch work: kept in force while the quota holds
	// the workload below the demand that matched it.
	throttled map[string]*Match
	// histograms are the last scrape of each workload's latency histogram
	// (an objective's metric), to take the interval's observations.
	histograms map[string]Buckets
	// counters are the last scrape of each workload's throughput counter.
	counters map[string]counterReading
}

// change is what was applied to one workload in one interval.
type change struct {
	tick   int
	sig    string
	rule   string
	before Reward
	undos  []hal.Action // in apply order
	judged bool
	// capped: the want caps the workload's throughput (a CPU quota or an
	// I/O cap): the progress it loses is the price the rule states.
	capped bool
}

// New returns an engine; Options.HAL is needed in apply mode.
func New(opts Options) *Engine {
	if opts.Topology != nil {
		// The engine keeps the IRQ affinities it sets in its own copy.
		t := *opts.Topology
		t.IRQs = slices.Clone(t.IRQs)
		opts.Topology = &t
	}
	e := &Engine{opts: opts, guard: NewGuard(opts.Config, opts.Self), agent: opts.Agent, rules: opts.Rules,
		ledger: map[string][]*change{}, fixedIRQ: map[int]bool{}, memMoved: map[int]int{}, rewards: map[string]Reward{}, excluded: map[string]bool{},
		client: &http.Client{Timeout: scrapeTimeout}, tuned: map[string]bool{}, throttled: map[string]*Match{}, histograms: map[string]Buckets{}, counters: map[string]counterReading{}}
	if e.agent == nil {
		e.agent = NopAgent{}
	}
	e.guard.SetAncestors(opts.Ancestors)
	if opts.Topology != nil {
		e.machine = MachineOf(*opts.Topology)
	}
	if opts.Audit != nil {
		e.enc = json.NewEncoder(opts.Audit)
	}
	return e
}

// SetRules replaces the rules in force (a reload); safe to call from
// another goroutine.
func (e *Engine) SetRules(rs *RuleSet) {
	e.mu.Lock()
	e.rules = rs
	e.mu.Unlock()
	e.audit(AuditRecord{Event: "rules", Reason: fmt.Sprintf("rules from %s in force (%d rules)", rs.Source, len(rs.Rules))})
}

func (e *Engine) currentRules() *RuleSet {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rules
}

// Guard returns the engine's guard (for inspection).
func (e *Engine) Guard() *Guard { return e.guard }

// AuditRecord is one line of the audit log.
type AuditRecord struct {
	Time      time.Time          `json:"time"`
	Tick      int                `json:"tick"`
	Mode      Mode               `json:"mode"`
	Event     string             `json:"event"` // decision, applied, failed, refused, undone, rollback, reward, excluded, frozen, rules
	Workload  string             `json:"workload,omitempty"`
	Name      string             `json:"name,omitempty"`
	Rule      string             `json:"rule,omitempty"`
	Archetype string             `json:"archetype,omitempty"`
	Genes     map[string]float64 `json:"genes,omitempty"`
	Traits    map[string]any     `json:"traits,omitempty"`
	Want      *Want              `json:"want,omitempty"`
	CPUs      []int              `json:"cpus,omitempty"`
	Action    *hal.JSONAction    `json:"action,omitempty"`
	Undo      *hal.JSONAction    `json:"undo,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	Notes     []string           `json:"notes,omitempty"`
	Error     string             `json:"error,omitempty"`
	Before    *Reward            `json:"reward_before,omitempty"`
	Reward    *Reward            `json:"reward,omitempty"`
	Verdict   string             `json:"verdict,omitempty"`
	// Pages and DurationMS are, for a memory move, the pages now on the
	// target node(s) that were not before (read back after the move) and
	// how long the move took.
	Pages      int         `json:"pages,omitempty"`
	DurationMS float64     `json:"duration_ms,omitempty"`
	Agent      *AgentState `json:"agent,omitempty"`
}

func (e *Engine) audit(r AuditRecord) {
	if e.enc == nil {
		return
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Tick, r.Mode = e.tick, e.opts.Mode
	_ = e.enc.Encode(r) // the audit log is best effort; the run goes on
}

func jsonAction(a hal.Action) *hal.JSONAction {
	if a == nil {
		return nil
	}
	return &hal.JSONAction{Action: a}
}

// Step is one interval's result.
type Step struct {
	Tick    int             `json:"tick"`
	Plan    Plan            `json:"plan"`
	Applied []AppliedAction `json:"applied,omitempty"`
	Refused []Refusal       `json:"refused,omitempty"`
	// Excluded are the workloads the guard never touches, each listed in
	// the first step that sees it.
	Excluded []Exclusion       `json:"excluded,omitempty"`
	Undone   []AppliedAction   `json:"undone,omitempty"`
	Rewards  map[string]Reward `json:"rewards,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
	// Agent is the learning agent's state this interval (nil: no agent).
	Agent *AgentState `json:"agent,omitempty"`
}

// AppliedAction is an action the engine applied (or undid), with its undo.
type AppliedAction struct {
	Workload string     `json:"workload"`
	Action   hal.Action `json:"-"`
	Undo     hal.Action `json:"-"`
	Reason   string     `json:"reason"`
	Err      error      `json:"-"`
	// Event is, for an undo, what undid it: "rollback" (the reward fell)
	// or "undone" (released, reverted, or the mode left apply).
	Event string `json:"-"`
	// Gone: the target process exited before the change; nothing changed.
	Gone bool `json:"gone,omitempty"`
}

// applyDecision applies one workload's approved actions and records them.
func (e *Engine) applyDecision(ctx context.Context, st *Step, d Decision) {
	sig := d.Rule + ": " + d.Want.BaseSignature()
	cs := &change{tick: e.tick, sig: sig, rule: d.Rule, before: st.Rewards[d.Workload],
		capped: d.Want.CPUQuota > 0 || d.Want.IOReadMBps > 0 || d.Want.IOWriteMBps > 0}
	if cs.before.Kind == "" {
		cs.before = Reward{Kind: RewardKind(&d.Want)}
	}
	for _, a := range d.Actions {
		start := time.Now()
		undo, err := e.opts.HAL.Apply(ctx, a.Action)
		rec := AuditRecord{Event: "applied", Workload: d.Workload, Name: d.Name, Rule: d.Rule, Genes: d.Genes,
			Action: jsonAction(a.Action), Undo: jsonAction(undo), Reason: a.Reason, Before: ptrReward(st.Rewards[d.Workload])}
		if errors.Is(err, hal.ErrGone) {
			// The process exited between the snapshot and the change:
			// nothing to change, nothing changed.
			rec.Event, rec.Reason = "skipped", "the process exited before the change: "+err.Error()
			e.audit(rec)
			st.Applied = append(st.Applied, AppliedAction{Workload: d.Workload, Action: a.Action, Reason: a.Reason, Gone: true})
			continue
		}
		if m, ok := a.Action.(hal.MemMigrate); ok {
			rec.DurationMS = float64(time.Since(start).Microseconds()) / 1000
			rec.Pages = e.pagesMoved(ctx, m, a.Pages)
			e.memMoved[m.PID] = e.tick
		}
		if err != nil {
			rec.Event, rec.Error = "failed", err.Error()
			if irq, ok := a.Action.(hal.IRQAffinity); ok {
				e.fixedIRQ[irq.IRQ] = true // do not retry every interval
			}
			e.audit(rec)
			st.Applied = append(st.Applied, AppliedAction{Workload: d.Workload, Action: a.Action, Reason: a.Reason, Err: err})
			continue
		}
		e.audit(rec)
		e.noteIRQ(a.Action)
		st.Applied = append(st.Applied, AppliedAction{Workload: d.Workload, Action: a.Action, Undo: undo, Reason: a.Reason})
		cs.undos = append(cs.undos, undo)
	}
	if len(cs.undos) > 0 {
		e.ledger[d.Workload] = append(e.ledger[d.Workload], cs)
		e.guard.Applied(e.tick, d.Workload, sig)
	}
}

// pagesMoved is how many of pid's pages reached m.ToNodes: offBefore (the
// pages off them when planned) less those still off them now, read back
// through the HAL (0 when it cannot be read).
func (e *Engine) pagesMoved(ctx context.Context, m hal.MemMigrate, offBefore int) int {
	arr, err := e.opts.HAL.Snapshot(ctx, []int{m.PID})
	if err != nil {
		return 0
	}
	ps := arr.Process(m.PID)
	if ps == nil || ps.PageNodes == nil {
		return 0
	}
	return max(offBefore-remotePages(ps.PageNodes, m.ToNodes), 0)
}

// memoryCooling returns the PIDs whose memory sculpt moved within the
// cool-down, and forgets older moves.
func (e *Engine) memoryCooling() map[int]bool {
	out := map[int]bool{}
	for pid, t := range e.memMoved {
		if e.tick-t < max(e.opts.Config.Cooldown, 1) {
			out[pid] = true
		} else {
			delete(e.memMoved, pid)
		}
	}
	return out
}

func ptrReward(r Reward) *Reward {
	if r.Kind == "" {
		return nil
	}
	return &r
}

// judge compares the reward after each change, Rollback.After intervals
// on, with the reward before it, and undoes the workload's changes when it
// got worse.
func (e *Engine) judge(ctx context.Context, st *Step) {
	for _, id := range sortedIDs(e.ledger) {
		after, ok := st.Rewards[id]
		if !ok {
			continue
		}
		for _, c := range e.ledger[id] {
			if c.judged || e.tick-c.tick < e.opts.Config.Rollback.After {
				continue
			}
			c.judged = true
			if e.tuned[id] || (c.before.Kind == RewardProgress && e.latencyObjectives()) {
				// Batch progress given up for the objectives is the price
				// meant to be paid: the agent judges it against them (and
				// steps back itself); without an agent, a demotion stands
				// while a service has an objective to meet.
				e.audit(AuditRecord{Event: "reward", Workload: id, Rule: c.rule, Before: ptrReward(c.before), Reward: &after,
					Verdict: "kept: batch progress traded for the objectives"})
				continue
			}
			if c.capped && c.before.Kind == RewardProgress {
				e.audit(AuditRecord{Event: "reward", Workload: id, Rule: c.rule, Before: ptrReward(c.before), Reward: &after,
					Verdict: "kept: the rule caps its throughput, and the progress it loses is the price it states"})
				continue
			}
			worse := len(c.before.Parts) > 0 && Worse(c.before, after, e.opts.Config.Rollback)
			verdict := "kept"
			if worse {
				verdict = "rolled back"
			}
			e.audit(AuditRecord{Event: "reward", Workload: id, Rule: c.rule, Before: ptrReward(c.before), Reward: &after, Verdict: verdict})
			if worse {
				e.undoWorkload(ctx, st, id, "", "rollback", fmt.Sprintf("reward fell from %.3f to %.3f after %s", c.before.Value, after.Value, c.rule))
				break
			}
		}
	}
}

// latencyObjectives reports whether the config names a latency objective.
func (e *Engine) latencyObjectives() bool {
	for _, o := range e.opts.Config.Objectives {
		if _, _, ok := o.Percentile(); ok {
			return true
		}
	}
	return false
}

// noteIRQ records an interrupt's new affinity in the engine's topology.
func (e *Engine) noteIRQ(a hal.Action) {
	irq, ok := a.(hal.IRQAffinity)
	if !ok || e.opts.Topology == nil {
		return
	}
	for i := range e.opts.Topology.IRQs {
		if e.opts.Topology.IRQs[i].Number == irq.IRQ {
			e.opts.Topology.IRQs[i].SMPAffinity = slices.Clone(irq.CPUs)
		}
	}
}

// undoWorkload applies the undos of everything applied to a workload,
// newest first, through the HAL.
func (e *Engine) undoWorkload(ctx context.Context, st *Step, id, name, event, why string) {
	cs := e.ledger[id]
	for i := len(cs) - 1; i >= 0; i-- {
		for j := len(cs[i].undos) - 1; j >= 0; j-- {
			u := cs[i].undos[j]
			rec := AuditRecord{Event: event, Workload: id, Name: name, Rule: cs[i].rule, Action: jsonAction(u), Reason: why}
			var err error
			if e.opts.Mode == ModeApply {
				if _, err = e.opts.HAL.Apply(ctx, u); err == nil {
					e.noteIRQ(u)
				}
			}
			if err != nil && !errors.Is(err, hal.ErrGone) {
				rec.Error = err.Error()
			}
			e.audit(rec)
			st.Undone = append(st.Undone, AppliedAction{Workload: id, Action: u, Reason: why, Err: err, Event: event})
		}
	}
	delete(e.ledger, id)
	e.guard.Undone(e.tick, id)
}

// metricFor scrapes the configured metric of a workload, nil when none is
// configured or the scrape fails (the failure is audited).
func (e *Engine) metricFor(ctx context.Context, id, name string) *MetricReading {
	for _, m := range e.opts.Config.Metrics {
		okID, _ := path.Match(m.Workload, id)
		okName, _ := path.Match(m.Workload, name)
		if !okID && !okName {
			continue
		}
		var v float64
		var err error
		if e.opts.Scrape != nil {
			v, err = e.opts.Scrape(ctx, m)
		} else {
			v, err = Scrape(ctx, e.client, m.URL, m.Metric, m.Labels)
		}
		if err != nil {
			e.audit(AuditRecord{Event: "metric", Workload: id, Name: name, Error: err.Error()})
			return nil
		}
		return &MetricReading{Value: v, Target: m.Target, Better: m.Better}
	}
	return nil
}

// Applied counts the actions applied and not undone.
func (e *Engine) Applied() int {
	n := 0
	for _, cs := range e.ledger {
		for _, c := range cs {
			n += len(c.undos)
		}
	}
	return n
}

// ownCPUCgroup is a workload's own cgroup in the cpu controller's
// hierarchy, "" when it has none of its own (a process tree in the root
// cgroup, or a cpu cgroup that is a parent shared with others).
func ownCPUCgroup(w *workload.Workload) string { return ownCgroup(w, "cpu") }

// ownCgroup is a workload's own cgroup in controller ctrl's hierarchy (v1,
// or the unified one), "" when it has none of its own.
func ownCgroup(w *workload.Workload, ctrl string) string {
	p, ok := w.Cgroups.V1[ctrl]
	if !ok {
		p = w.Cgroups.V2
	}
	if p == "" || p == "/" {
		return ""
	}
	switch w.Kind {
	case workload.KindContainer:
		if strings.Contains(p, w.Name) {
			return p
		}
	case workload.KindUnit:
		if path.Base(p) == w.Name {
			return p
		}
	case workload.KindCgroup:
		if w.ID == "cg:"+p {
			return p
		}
	}
	return ""
}

// RevertAll undoes, newest first, everything the engine applied and has
// not undone, through the HAL (for a HAL without a journal; with one,
// revert the journal instead).
func (e *Engine) RevertAll(ctx context.Context) []AppliedAction {
	st := &Step{}
	for _, id := range sortedIDs(e.ledger) {
		e.undoWorkload(ctx, st, id, "", "undone", "sculpt is stopping")
	}
	return st.Undone
}

// sortedIDs returns map keys in order (for stable output).
func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Note writes a free-form event to the audit log (e.g. a rules reload that
// failed).
func (e *Engine) Note(event, reason string) {
	e.audit(AuditRecord{Event: event, Reason: reason})
}

// MarshalJSON writes the action and its undo with their kinds.
func (a AppliedAction) MarshalJSON() ([]byte, error) {
	type out struct {
		Workload string          `json:"workload"`
		Action   *hal.JSONAction `json:"action,omitempty"`
		Undo     *hal.JSONAction `json:"undo,omitempty"`
		Reason   string          `json:"reason"`
		Error    string          `json:"error,omitempty"`
	}
	o := out{Workload: a.Workload, Action: jsonAction(a.Action), Undo: jsonAction(a.Undo), Reason: a.Reason}
	if a.Err != nil {
		o.Error = a.Err.Error()
	}
	return json.Marshal(o)
}

// MarshalJSON writes the refused action with its kind.
func (r Refusal) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Workload string          `json:"workload"`
		Action   *hal.JSONAction `json:"action,omitempty"`
		Reason   string          `json:"reason"`
	}{r.Workload, jsonAction(r.Action), r.Reason})
}
