package engine

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"sculpt/internal/hal"
	"sculpt/internal/workload"
)

// Guard keeps the engine safe: it never lets an action touch PID 1, kernel
// threads (they are never in a discovered workload, and an action whose
// process is not a member of its workload is refused), sculpt itself or
// the protected set; it holds a budget of actions per interval and a
// cool-down per workload, applies hysteresis, and freezes a workload whose
// arrangement is undone and redone over and over (ping-pong).
//
// Its state is the history of each workload, keyed by workload ID; time is
// counted in ticks (intervals). It is not safe for concurrent use.
type Guard struct {
	cfg       Config
	self      int
	ancestors []int // sculpt's ancestors, protected when cfg.Protected.Ancestors
	ws        map[string]*guardState
}

type guardState struct {
	cand       string // signature seen at the last tick ("" none)
	candMatch  *Match
	streak     int // consecutive ticks of cand
	stable     string
	stableM    *Match
	applied    string // signature of the arrangement sculpt applied ("" none)
	lastChange int    // tick of the last change of arrangement
	changed    bool   // lastChange is set
	undone     bool   // undone since the last apply
	redos      []int  // ticks at which an undone arrangement was applied again
	frozen     string // why it is frozen ("" not)
	seen       int
}

// NewGuard returns a guard with the config's limits; self is sculpt's PID.
func NewGuard(cfg Config, self int) *Guard {
	return &Guard{cfg: cfg, self: self, ws: map[string]*guardState{}}
}

func (g *Guard) state(id string) *guardState {
	s := g.ws[id]
	if s == nil {
		s = &guardState{}
		g.ws[id] = s
	}
	return s
}

// Excluded says why a workload may never be touched ("" when it may),
// naming the setting (protected.*, docs/config.md) that excludes it.
// comms, when given, is parallel to pids.
func (g *Guard) Excluded(id, name string, pids []int, comms []string, cgroups []string) string {
	procName := func(i int) string {
		if i < len(comms) && comms[i] != "" {
			return fmt.Sprintf("PID %d (%s)", pids[i], comms[i])
		}
		return fmt.Sprintf("PID %d", pids[i])
	}
	for i, p := range pids {
		switch {
		case p == 1:
			return "holds PID 1, the init process"
		case p == 2:
			return "holds kthreadd"
		case p == g.self:
			return "is sculpt itself"
		case g.cfg.Protected.Ancestors && slices.Contains(g.ancestors, p):
			return fmt.Sprintf("holds %s, which started sculpt (your shell, terminal or supervisor): protected.ancestors", procName(i))
		case slices.Contains(g.cfg.Protected.PIDs, p):
			return fmt.Sprintf("holds protected %s: protected.pids", procName(i))
		}
	}
	for _, pat := range g.cfg.Protected.Workloads {
		if ok, _ := path.Match(pat, id); ok {
			return fmt.Sprintf("matches protected workload %q: protected.workloads", pat)
		}
	}
	for _, pat := range g.cfg.Protected.Names {
		if ok, _ := path.Match(pat, name); ok {
			return fmt.Sprintf("matches protected name %q: protected.names", pat)
		}
		for _, c := range comms {
			if ok, _ := path.Match(pat, c); ok {
				return fmt.Sprintf("process %s matches protected name %q: protected.names", c, pat)
			}
		}
	}
	for _, pre := range g.cfg.Protected.Cgroups {
		for _, cg := range cgroups {
			if cg == pre || strings.HasPrefix(cg, strings.TrimSuffix(pre, "/")+"/") {
				return fmt.Sprintf("is in protected cgroup %s: protected.cgroups", pre)
			}
		}
	}
	return ""
}

// ExcludedWorkload is Excluded for a discovered workload.
func (g *Guard) ExcludedWorkload(w *workload.Workload) string {
	pids := make([]int, len(w.Procs))
	comms := make([]string, len(w.Procs))
	for i, p := range w.Procs {
		pids[i], comms[i] = p.PID, p.Comm
	}
	cgs := make([]string, 0, 1+len(w.Cgroups.V1))
	if w.Cgroups.V2 != "" {
		cgs = append(cgs, w.Cgroups.V2)
	}
	for _, p := range w.Cgroups.V1 {
		cgs = append(cgs, p)
	}
	return g.Excluded(w.ID, w.Name, pids, comms, cgs)
}

// SetAncestors sets the PIDs of the processes that started sculpt,
// protected when Config.Protected.Ancestors is set.
func (g *Guard) SetAncestors(pids []int) { g.ancestors = slices.Clone(pids) }

// Exclusion is a workload the guard never touches, and why.
type Exclusion struct {
	Workload string `json:"workload"`
	Name     string `json:"name"`
	Reason   string `json:"reason"`
}

func matchSignature(m *Match) string {
	if m == nil {
		return ""
	}
	return m.Rule + ": " + m.Want.Signature()
}

// Hysteresis records what the rules want for a workload at tick and
// returns the arrangement in force: a new wish must hold for Hysteresis
// consecutive ticks before it replaces the one in force, and no wish for
// Release ticks before an arrangement in force is let go. On an interval
// whose DNA shows a phase change (phase), the wish takes force at once:
// the workload is known to behave differently now, and waiting out the
// streak would keep an arrangement made for its old behaviour. The
// returned match carries the newest genes when the wish is unchanged.
func (g *Guard) Hysteresis(tick int, id string, m *Match, phase bool) *Match {
	s := g.state(id)
	s.seen = tick
	sig := matchSignature(m)
	if sig == s.cand {
		s.streak++
	} else {
		s.cand, s.streak = sig, 1
	}
	s.candMatch = m
	need := g.cfg.Hysteresis
	if sig == "" && s.stable != "" {
		need = max(need, g.cfg.Release) // letting go of an arrangement
	}
	if s.streak >= need || phase {
		s.stable, s.stableM = sig, m
	}
	if s.stable == sig {
		s.stableM = m
	}
	return s.stableM
}

// Frozen says why a workload is frozen ("" when it is not).
func (g *Guard) Frozen(id string) string { return g.state(id).frozen }

// Refusal is a planned action the guard did not let through, and why.
type Refusal struct {
	Workload string     `json:"workload"`
	Action   hal.Action `json:"-"`
	Reason   string     `json:"reason"`
}

// Filter returns the part of p the guard lets through at tick, and what it
// held back. members maps each workload ID to its PIDs (an action whose
// process is not among them is refused).
func (g *Guard) Filter(tick int, p Plan, members map[string][]int) (Plan, []Refusal) {
	out := p
	out.Decisions = nil
	var refused []Refusal
	budget := g.cfg.Budget
	for _, d := range p.Decisions {
		s := g.state(d.Workload)
		refuseAll := func(why string) {
			for _, a := range d.Actions {
				refused = append(refused, Refusal{Workload: d.Workload, Action: a.Action, Reason: why})
			}
			d.Actions = nil
		}
		sig := d.Rule + ": " + d.Want.BaseSignature()
		switch {
		case len(d.Actions) == 0:
		case s.frozen != "":
			refuseAll("frozen: " + s.frozen)
		case s.changed && s.applied != sig && tick-s.lastChange < g.cfg.Cooldown:
			refuseAll(fmt.Sprintf("cooling down: arrangement changed at interval %d, next change allowed at %d", s.lastChange, s.lastChange+g.cfg.Cooldown))
		case s.undone && s.applied == "" && g.wouldFreeze(tick, s):
			s.frozen = fmt.Sprintf("ping-pong: its arrangement was undone and redone %d times within %d intervals; sculpt leaves it alone", len(s.redos)+1, g.cfg.PingPong.Window)
			refuseAll("frozen: " + s.frozen)
		}
		var keep []PlannedAction
		for _, a := range d.Actions {
			if pid := hal.TargetPID(a.Action); pid > 0 {
				if why := g.Excluded("", "", []int{pid}, nil, nil); why != "" {
					refused = append(refused, Refusal{Workload: d.Workload, Action: a.Action, Reason: "target " + why})
					continue
				}
				if !slices.Contains(members[d.Workload], pid) {
					refused = append(refused, Refusal{Workload: d.Workload, Action: a.Action, Reason: fmt.Sprintf("pid %d is not a member of the workload", pid)})
					continue
				}
			}
			if budget <= 0 {
				refused = append(refused, Refusal{Workload: d.Workload, Action: a.Action, Reason: fmt.Sprintf("budget of %d actions per interval spent", g.cfg.Budget)})
				continue
			}
			budget--
			keep = append(keep, a)
		}
		d.Actions = keep
		out.Decisions = append(out.Decisions, d)
	}
	return out, refused
}

func (g *Guard) wouldFreeze(tick int, s *guardState) bool {
	n := 0
	for _, t := range s.redos {
		if tick-t <= g.cfg.PingPong.Window {
			n++
		}
	}
	return n+1 >= g.cfg.PingPong.Flips
}

// Applied records that the arrangement sig (rule: want) was applied to a
// workload at tick.
func (g *Guard) Applied(tick int, id, sig string) {
	s := g.state(id)
	if s.undone {
		s.redos = append(s.redos, tick)
		s.undone = false
	}
	if s.applied != sig {
		s.lastChange, s.changed = tick, true
	}
	s.applied = sig
}

// Undone records that what sculpt applied to a workload was undone at tick
// (it stopped matching, or its reward got worse).
func (g *Guard) Undone(tick int, id string) {
	s := g.state(id)
	s.applied = ""
	s.undone = true
	s.lastChange, s.changed = tick, true
}

// Forget drops workloads not seen since before tick.
func (g *Guard) Forget(tick int) {
	for id, s := range g.ws {
		if s.seen < tick {
			delete(g.ws, id)
		}
	}
}
