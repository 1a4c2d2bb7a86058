package agent

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
)

// Learner is the learning agent behind engine.Agent: one Search over the
// throttle ladder for the batch work, per context (the service whose
// objective binds, by its DNA, and the kinds of batch work beside it),
// started from what worked for the nearest known context.
//
// The ladder: level 0 is the rules' plan (no quota); level l > 0 gives the
// batch work together frac(l) of the machine's CPU time, split evenly,
// never less than the floor each: frac falls geometrically from 0.75 to
// 0.04, so each step takes about the same share of what is left.
type Learner struct {
	cfg   engine.AgentConfig
	x     *Experience
	path  string // "" keeps the experience in memory
	now   func() time.Time
	scfg  SearchConfig
	state learnerState
	// limited are the batch workloads given a quota, to lift it when the
	// agent has nothing to tune any more.
	limited map[string]bool
	// ioBase is each batch workload's block I/O (read, write: bytes/s)
	// as last seen at the rules' plan, what the ladder's I/O caps are a
	// fraction of.
	ioBase  map[string][2]float64
	saveErr error
}

// learnerState is the search in force and its context.
type learnerState struct {
	key      string
	ctx      Context
	search   *Search
	start    string
	fresh    bool // the context began this interval: its outcome is the old arrangement's
	held     int  // intervals settled at the current level since the last record
	met, obs int  // settled intervals met / judged at the current level
	thr      float64
	recorded int // level last recorded (-1: none)
}

// Options configure a Learner.
type Options struct {
	Config engine.AgentConfig
	// Experience is what was learned before (LoadExperience); nil starts
	// with none.
	Experience *Experience
	// Path is where the experience is saved as it grows; "" keeps it in
	// memory.
	Path string
	Now  func() time.Time
}

// New returns a learner; the config must be valid (engine.ParseConfig
// checks it).
func New(o Options) (*Learner, error) {
	sc := SearchConfig{Levels: o.Config.Levels, Judge: o.Config.Judge, StepBack: o.Config.StepBack,
		ProbeEvery: o.Config.ProbeEvery, Slack: o.Config.Slack, MinGain: o.Config.MinGain}
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	x := o.Experience
	if x == nil {
		x = &Experience{}
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Learner{cfg: o.Config, x: x, path: o.Path, now: now, scfg: sc, limited: map[string]bool{}, ioBase: map[string][2]float64{}}, nil
}

// Experience returns what the learner knows now.
func (l *Learner) Experience() *Experience { return l.x }

// Ladder names the learner's throttle ladder (experience is kept per
// ladder).
func (l *Learner) Ladder() string { return fmt.Sprintf("cpu-quota-geometric/%d", l.cfg.Levels) }

// Fraction is the share of the machine's CPU time the batch work keeps at
// level lvl (1 at level 0).
func (l *Learner) Fraction(lvl int) float64 {
	if lvl <= 0 {
		return 1
	}
	const top, bottom = 0.75, 0.04
	if l.cfg.Levels <= 2 {
		return top
	}
	r := math.Pow(bottom/top, 1/float64(l.cfg.Levels-2))
	return top * math.Pow(r, float64(lvl-1))
}

// quota is the CPU quota (cores) of each of n batch workloads at level lvl
// on a machine of cpus CPUs; -1 (no limit) at level 0.
func (l *Learner) quota(lvl, n, cpus int) float64 {
	if lvl <= 0 || n == 0 {
		return -1
	}
	q := l.Fraction(lvl) * float64(max(cpus, 1)) / float64(n)
	return math.Max(q, l.cfg.FloorCPU)
}

// Adjust implements engine.Agent.
func (l *Learner) Adjust(in engine.AgentInput) engine.AgentOutput {
	var services, batch []engine.AgentWorkload
	for _, w := range in.Workloads {
		switch w.Role {
		case engine.RoleService:
			services = append(services, w)
		case engine.RoleBatch:
			batch = append(batch, w)
		}
	}
	// Forget what is kept of workloads no longer in view (a long run sees
	// thousands come and go).
	present := map[string]bool{}
	for _, w := range in.Workloads {
		present[w.ID] = true
	}
	maps.DeleteFunc(l.ioBase, func(id string, _ [2]float64) bool { return !present[id] })
	maps.DeleteFunc(l.limited, func(id string, _ bool) bool { return !present[id] })
	sort.Slice(services, func(i, j int) bool { return services[i].ID < services[j].ID })
	if len(services) == 0 || len(batch) == 0 {
		return l.idle(in, batch, services)
	}
	svc := services[0]
	ctx := Context{Ladder: l.Ladder(), Service: svc.DNA.Archetype, Resembles: svc.DNA.Resembles, Embedding: slices.Clone(svc.DNA.Embedding)}
	for _, b := range batch {
		if !slices.Contains(ctx.Batch, b.DNA.Archetype) {
			ctx.Batch = append(ctx.Batch, b.DNA.Archetype)
		}
	}
	slices.Sort(ctx.Batch)
	key := svc.ID + "|" + strings.Join(ctx.Batch, ",")
	var move *Move
	s := &l.state
	if key != s.key || svc.DNA.PhaseChange {
		l.recordIfSettled()
		l.begin(key, ctx, svc.DNA)
	} else {
		met, slack := in.Outcome.Met()
		o := Outcome{Known: in.Outcome.Known(), Met: met, Slack: slack, Batch: in.Outcome.BatchThroughput}
		if s.fresh {
			s.fresh = false // this interval ran under the old arrangement
		} else {
			move = s.search.Observe(o)
			l.account(o, in.Outcome.BatchThroughput, move)
		}
	}
	lvl := s.search.Level()
	q := l.quota(lvl, len(batch), in.Machine.CPUs)
	st := &engine.AgentState{Agent: "sculpt", Level: lvl, Levels: l.cfg.Levels, Settled: s.search.Settled(),
		ConvergedAfter: s.search.ConvergedAfter(), Context: fmt.Sprintf("%s (%s) beside %s", svc.Name, ctxKind(ctx), strings.Join(ctx.Batch, ", ")),
		Start: s.start, Objectives: in.Outcome.Objectives, BatchCPU: in.Outcome.BatchThroughput}
	why := fmt.Sprintf("agent level %d of %d: batch work keeps %.0f%% of the CPU time", lvl, l.cfg.Levels-1, 100*l.Fraction(lvl))
	if move != nil {
		st.Move = fmt.Sprintf("level %d -> %d: %s", move.From, move.To, move.Why)
		why += "; " + st.Move
	}
	if obj := describe(in.Outcome); obj != "" {
		why += " (" + obj + ")"
	}
	out := engine.AgentOutput{State: st}
	for _, b := range batch {
		if b.Want == nil {
			continue
		}
		w := *b.Want
		w.CPUQuota = q
		w.IOReadMBps, w.IOWriteMBps = l.ioCaps(b, lvl)
		if q > 0 {
			l.limited[b.ID] = true
		}
		out.Adjustments = append(out.Adjustments, engine.Adjustment{Workload: b.ID, Want: w, Reason: why})
	}
	return out
}

// liftIO is the rules' cap (MB/s), or -1 (lift) where the rules set none
// and the agent may have capped the workload.
func (l *Learner) liftIO(id string, rules float64) float64 {
	if rules <= 0 && l.limited[id] {
		return -1
	}
	return rules
}

// ioMinMBps is the block I/O (MB/s) below which a batch workload's reads
// or writes are not capped: too little to weigh on a disk.
const ioMinMBps = 1.0

// ioCaps are a batch workload's block I/O caps (MB/s; -1 lifts) at level
// lvl: the ladder's share of the I/O it did at the rules' plan, for reads
// and writes of at least ioMinMBps there, never below the floor. At level
// 0 its I/O is remembered and any cap the agent set is lifted.
func (l *Learner) ioCaps(b engine.AgentWorkload, lvl int) (read, write float64) {
	if lvl == 0 {
		if b.DNA != nil {
			l.ioBase[b.ID] = [2]float64{b.DNA.Genes["io_read_bps"], b.DNA.Genes["io_write_bps"]}
		}
		return l.liftIO(b.ID, b.Want.IOReadMBps), l.liftIO(b.ID, b.Want.IOWriteMBps)
	}
	base := l.ioBase[b.ID]
	cap := func(bps, rules float64) float64 {
		mb := bps / 1e6
		if mb < ioMinMBps {
			return rules
		}
		c := math.Max(l.Fraction(lvl)*mb, l.cfg.FloorIOMBps)
		if rules > 0 {
			c = math.Min(c, rules)
		}
		return c
	}
	return cap(base[0], b.Want.IOReadMBps), cap(base[1], b.Want.IOWriteMBps)
}

// begin starts the search of a new context: from the nearest experience
// (Nearest: the same kind, or for a novel service an embedding very like
// one learned), else from the rules' plan.
func (l *Learner) begin(key string, ctx Context, d *dna.DNA) {
	s := &l.state
	*s = learnerState{key: key, ctx: ctx, fresh: true, recorded: -1}
	switch e, _, ok := l.x.Nearest(ctx); {
	case ok:
		s.search = NewSearch(l.scfg, e.Level, true)
		s.start = fmt.Sprintf("experience: level %d, learned with %s (%s) beside %s", e.Level, orKind(e.Resembles, e.Service), e.Service, strings.Join(e.Batch, ", "))
	case d.Novel || unknownKind(ctx.Service):
		s.search = NewSearch(l.scfg, 0, false)
		s.start = "rules: the service's DNA is novel and like nothing learned"
	default:
		s.search = NewSearch(l.scfg, 0, false)
		s.start = "rules: no experience of this kind yet"
	}
}

// account keeps the settled level's record and stores it in the experience
// once it has held for a judgment window.
func (l *Learner) account(o Outcome, thr float64, move *Move) {
	s := &l.state
	if move != nil || !s.search.Settled() {
		s.held, s.met, s.obs, s.thr = 0, 0, 0, 0
		return
	}
	if !o.Known {
		return
	}
	s.held++
	s.obs++
	if o.Met {
		s.met++
	}
	s.thr += thr
	if s.held >= l.cfg.Judge && s.recorded != s.search.Level() {
		l.record()
	}
}

func (l *Learner) recordIfSettled() {
	s := &l.state
	if s.search != nil && s.search.Settled() && s.obs > 0 && s.recorded != s.search.Level() {
		l.record()
	}
}

// record stores the settled level of the current context and saves the
// experience file (a failed save is kept for Err and retried next time).
func (l *Learner) record() {
	s := &l.state
	if unknownKind(s.ctx.Service) && len(s.ctx.Embedding) == 0 {
		return // nothing to recognise it by later
	}
	l.x.Record(s.ctx, s.search.Level(), s.thr/float64(max(s.obs, 1)), float64(s.met)/float64(max(s.obs, 1)), s.obs, l.now())
	s.recorded = s.search.Level()
	if l.path != "" {
		l.saveErr = l.x.Save(l.path)
	}
}

// idle (a state with Levels 0) lifts the quotas the agent set when there is nothing to trade: no
// service with a latency objective, or no batch work beside it.
func (l *Learner) idle(in engine.AgentInput, batch, services []engine.AgentWorkload) engine.AgentOutput {
	l.recordIfSettled()
	l.state = learnerState{}
	why := "no batch work to weigh"
	if len(services) == 0 {
		why = "no service with a latency objective"
	}
	out := engine.AgentOutput{State: &engine.AgentState{Agent: "sculpt", Context: why,
		Objectives: in.Outcome.Objectives, BatchCPU: in.Outcome.BatchThroughput}}
	for _, b := range batch {
		if b.Want == nil || !l.limited[b.ID] {
			continue
		}
		w := *b.Want
		w.CPUQuota = -1
		w.IOReadMBps, w.IOWriteMBps = l.liftIO(b.ID, w.IOReadMBps), l.liftIO(b.ID, w.IOWriteMBps)
		out.Adjustments = append(out.Adjustments, engine.Adjustment{Workload: b.ID, Want: w, Reason: "agent: " + why + ": quota and I/O caps lifted"})
		delete(l.limited, b.ID)
	}
	return out
}

// Err is the last failure to save the experience file (nil when saved).
func (l *Learner) Err() error { return l.saveErr }

func describe(o engine.Outcome) string {
	var parts []string
	for _, s := range o.Objectives {
		if !s.Latency {
			continue
		}
		if !s.Known {
			parts = append(parts, fmt.Sprintf("%s %s: not measured", s.Name, s.Objective))
			continue
		}
		verdict := "met"
		if !s.Met {
			verdict = "VIOLATED"
		}
		parts = append(parts, fmt.Sprintf("%s %s: %s, %s", s.Name, s.Objective, time.Duration(s.Value*float64(time.Second)).Round(time.Microsecond), verdict))
	}
	if len(parts) > 0 {
		parts = append(parts, fmt.Sprintf("batch %.2f cores", o.BatchThroughput))
	}
	return strings.Join(parts, "; ")
}

func ctxKind(c Context) string { return orKind(c.Resembles, c.Service) }

func orKind(resembles, kind string) string {
	if resembles != "" {
		return "like " + resembles + ", " + kind
	}
	return kind
}
