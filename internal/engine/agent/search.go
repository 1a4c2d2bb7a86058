// Package agent is sculpt's learning agent: it fine-tunes the arrangement
// the rules propose so that every service-level objective is met with the
// most batch throughput, from the outcome each interval shows, and it
// remembers what worked per kind of workload (its learned DNA) in an
// experience file, so a workload recognised anywhere starts from it.
//
// The method is a safe, monotone search over a ladder of throttle levels
// for the batch work (docs/agent.md says why): level 0 is the rules' plan,
// each higher level takes more CPU time (and I/O) from the batch work. The
// objectives' attainment is monotone in the level, give or take noise, so
// the least throttled level that meets them is found by an exponential
// step up and a bisection, each level judged over a few intervals; a
// settled level that starts to violate is left for the last level known to
// meet the objectives (the step back); a settled level with slack is probed
// one step down now and then, less often after each failed probe.
//
// The package never touches the machine or the HAL: it sees outcomes and
// returns levels; internal/engine turns a level into wants, the planner
// into actions, and the guard checks every one.
package agent

import (
	"fmt"
	"math"
	"slices"
)

// SearchConfig tunes the search.
type SearchConfig struct {
	Levels     int // size of the ladder, level 0 (the rules' plan) included
	Judge      int // intervals a level is judged over
	StepBack   int // consecutive violated intervals at a settled level before stepping back
	ProbeEvery int // intervals at a settled level with slack before probing one level down (doubles after each failed probe)
	// Slack is how far under every target (as a fraction of it) a settled
	// level must stay over its last Judge intervals to be probed downward.
	Slack float64
	// MinGain is the least share by which throttling must lower the
	// tightest objective's median value against the rules' plan: a level
	// that fails and did not buy that much says the interference is not
	// the batch work's (or not the part the ladder takes), so the search
	// gives up throttling instead of starving batch work for nothing.
	// 0 turns the check off.
	MinGain float64
}

// DefaultSearch is the search's default tuning.
var DefaultSearch = SearchConfig{Levels: 10, Judge: 3, StepBack: 2, ProbeEvery: 20, Slack: 0.1, MinGain: 0.1}

// Validate checks the tuning.
func (c SearchConfig) Validate() error {
	switch {
	case c.Levels < 2:
		return fmt.Errorf("levels %d: want at least 2", c.Levels)
	case c.Judge < 1:
		return fmt.Errorf("judge %d: want at least 1 interval", c.Judge)
	case c.StepBack < 1:
		return fmt.Errorf("step_back %d: want at least 1 interval", c.StepBack)
	case c.ProbeEvery < 1:
		return fmt.Errorf("probe_every %d: want at least 1 interval", c.ProbeEvery)
	case c.Slack < 0 || c.Slack >= 1:
		return fmt.Errorf("slack %g: want 0..1", c.Slack)
	case c.MinGain < 0 || c.MinGain >= 1:
		return fmt.Errorf("min_gain %g: want 0..1", c.MinGain)
	}
	return nil
}

// Outcome is one interval's result for the search.
type Outcome struct {
	// Known: every objective had its signal this interval. An interval
	// without is not judged.
	Known bool
	// Met: every objective was met.
	Met bool
	// Slack is the smallest 1 - value/target over the objectives: how far
	// under its target the tightest one was (negative when violated).
	Slack float64
	// Batch is the throughput of the batch work this interval (CPU cores),
	// the price the level charged; 0 when unknown.
	Batch float64
}

// Move is a change of level the search chose, and why.
type Move struct {
	From, To int
	Why      string
}

// Search finds the least throttled level that meets the objectives. It is
// deterministic: the same outcomes give the same moves.
type Search struct {
	cfg     SearchConfig
	level   int
	good    map[int]bool // levels judged to meet the objectives
	fail    map[int]bool // levels judged to violate them
	window  []Outcome    // outcomes judged at the current level
	settled bool
	// trusted: the level came from experience; one passing judgment
	// settles it without bisecting downward.
	trusted   bool
	streak    int // consecutive violations while settled
	since     int // intervals since settling (or the last probe)
	probeWait int
	probing   bool // judging level-1 from a settled level
	probeFrom int
	intervals int // judged intervals since the search began
	settledAt int // intervals when it last settled (0: never)
	// gaveUp: the objectives were violated at the ladder's top, so no level
	// meets them; the search went back to the rules' plan (attainment
	// being lost at every level, batch throughput decides) and climbs again
	// at retryAt, waiting twice as long after each time it gives up.
	gaveUp    bool
	retryAt   int
	retryWait int
	// seen holds the latest values (1 - slack: the tightest objective's
	// value over its target) judged at each level, and paid the batch
	// throughput at each, for the gain check.
	seen, paid map[int][]float64
}

// seenKeep is how many values per level the gain check keeps.
const seenKeep = 9

// NewSearch starts a search at level start (0: the rules' plan); trusted
// when start comes from experience.
func NewSearch(cfg SearchConfig, start int, trusted bool) *Search {
	start = max(0, min(start, cfg.Levels-1))
	return &Search{cfg: cfg, level: start, trusted: trusted && start > 0,
		good: map[int]bool{}, fail: map[int]bool{}, probeWait: cfg.ProbeEvery, retryWait: 3 * cfg.ProbeEvery,
		seen: map[int][]float64{}, paid: map[int][]float64{}}
}

// Level is the level in force.
func (s *Search) Level() int { return s.level }

// Settled reports whether the search has settled on its level.
func (s *Search) Settled() bool { return s.settled }

// ConvergedAfter is the number of judged intervals the search took to
// settle first (0 while it has not).
func (s *Search) ConvergedAfter() int { return s.settledAt }

// Observe takes one interval's outcome at the current level and returns
// the move it makes, if any.
func (s *Search) Observe(o Outcome) *Move {
	if !o.Known {
		return nil
	}
	s.intervals++
	if !math.IsInf(o.Slack, 0) && !math.IsNaN(o.Slack) {
		v := append(s.seen[s.level], 1-o.Slack)
		s.seen[s.level] = v[max(0, len(v)-seenKeep):]
		p := append(s.paid[s.level], o.Batch)
		s.paid[s.level] = p[max(0, len(p)-seenKeep):]
	}
	if s.settled {
		return s.observeSettled(o)
	}
	s.window = append(s.window, o)
	v := 0
	for _, w := range s.window {
		if !w.Met {
			v++
		}
	}
	switch {
	case v >= 2 || (v >= 1 && s.cfg.Judge < 3):
		return s.failed(v)
	case len(s.window) >= s.cfg.Judge && v == 0:
		return s.passed()
	case len(s.window) >= s.cfg.Judge+1:
		// One violation in a longer window: judged on one more interval
		// (it was at most one) — pass.
		return s.passed()
	}
	return nil
}

func (s *Search) observeSettled(o Outcome) *Move {
	s.since++
	if s.gaveUp {
		if s.intervals < s.retryAt {
			return nil
		}
		// Time to try again: the load may have changed.
		s.gaveUp = false
		clear(s.good)
		clear(s.fail)
		for l := range s.seen {
			if l != 0 {
				delete(s.seen, l) // the load may have changed; level 0's values are this interval's
				delete(s.paid, l)
			}
		}
		s.fail[0] = true
		s.settled, s.streak, s.window = false, 0, nil
		return s.climb("retrying: the objective could not be met by throttling before")
	}
	s.window = append(s.window, o)
	if len(s.window) > s.cfg.Judge {
		s.window = s.window[1:]
	}
	if !o.Met {
		s.streak++
	} else {
		s.streak = 0
	}
	if s.streak >= s.cfg.StepBack {
		// The settled level no longer holds: the load changed. Step back to
		// the last level known to meet the objectives above it, or climb.
		s.fail[s.level] = true
		delete(s.good, s.level)
		s.settled, s.streak, s.window = false, 0, nil
		why := fmt.Sprintf("objective violated %d intervals in a row at level %d", s.cfg.StepBack, s.level)
		if m := s.noGain(why); m != nil {
			return m
		}
		return s.climb(why)
	}
	if s.level > 0 && s.since >= s.probeWait && len(s.window) >= s.cfg.Judge {
		for _, w := range s.window {
			if !w.Met || w.Slack < s.cfg.Slack {
				return nil
			}
		}
		// Probe one level down: the load may have eased.
		from := s.level
		delete(s.fail, from-1)
		s.probing, s.probeFrom = true, from
		s.settled, s.window, s.since = false, nil, 0
		s.level = from - 1
		return &Move{From: from, To: s.level, Why: fmt.Sprintf("every objective %.0f%%+ under its target for %d intervals: probing one level down", s.cfg.Slack*100, s.cfg.Judge)}
	}
	return nil
}

// passed records the current level as meeting the objectives and moves
// down (bisecting toward the highest failing level below) or settles.
func (s *Search) passed() *Move {
	s.good[s.level] = true
	s.window = nil
	if s.probing {
		s.probing = false
		s.probeWait = s.cfg.ProbeEvery
	}
	lo := -1 // highest level below known to fail
	for l := range s.fail {
		if l < s.level && l > lo {
			lo = l
		}
	}
	if s.level == 0 || lo == s.level-1 || s.trusted {
		s.trusted = false
		s.settle()
		return nil
	}
	from := s.level
	if lo < 0 && !s.anyFailBelow() {
		// Nothing below has failed: the rules' plan (or a lower level) may
		// be enough; bisect toward 0.
		lo = -1
	}
	s.level = (lo + 1 + from) / 2
	if s.level == from {
		s.settle()
		return nil
	}
	return &Move{From: from, To: s.level, Why: fmt.Sprintf("level %d met every objective: trying less throttling", from)}
}

func (s *Search) anyFailBelow() bool {
	for l := range s.fail {
		if l < s.level {
			return true
		}
	}
	return false
}

// failed records the current level as violating and moves up.
func (s *Search) failed(v int) *Move {
	s.fail[s.level] = true
	delete(s.good, s.level)
	s.window = nil
	s.trusted = false
	why := fmt.Sprintf("objective violated in %d intervals at level %d", v, s.level)
	if s.probing {
		s.probing = false
		s.probeWait *= 2
		from := s.level
		s.level = s.probeFrom
		s.good[s.level] = true
		s.settled, s.since, s.streak = true, 0, 0
		return &Move{From: from, To: s.level, Why: why + ": probe failed, back to the last level that met it"}
	}
	if m := s.noGain(why); m != nil {
		return m
	}
	return s.climb(why)
}

// noGain gives up throttling when the failing level has taken at least
// three quarters of the batch work's throughput at the rules' plan (level 0) and the
// tightest objective's median value is not MinGain lower in return: what
// stands between the service and its objective is not the CPU time the
// ladder takes from the batch work, and taking more only starves it. Like
// giving up at the ladder's top, it goes back to the rules' plan and tries
// again later. A level that took less proves nothing either way: a quota
// the batch work does not reach takes nothing, and some services gain
// only when the batch work is nearly stopped, and neither does one
// judged on fewer than two intervals or without the batch throughput.
func (s *Search) noGain(why string) *Move {
	cur, base := s.seen[s.level], s.seen[0]
	if s.cfg.MinGain == 0 || s.level == 0 || len(cur) < 2 || len(base) < 2 {
		return nil
	}
	mc, mb := median(cur), median(base)
	pc, pb := median(s.paid[s.level]), median(s.paid[0])
	if pb <= 0 || pc > pb/4 || mc < mb*(1-s.cfg.MinGain) {
		return nil
	}
	return s.giveUp(s.level, fmt.Sprintf("%s, and throttling did not help: its median was %.0f%% of the target against %.0f%% at the rules' plan, with the batch work's throughput down from %.2f to %.2f cores (at least %.0f%% less wanted)",
		why, 100*mc, 100*mb, pb, pc, 100*s.cfg.MinGain))
}

// giveUp goes back to the rules' plan and schedules a retry, waiting twice
// as long after each time it gives up.
func (s *Search) giveUp(from int, why string) *Move {
	s.level = 0
	s.gaveUp, s.retryAt = true, s.intervals+s.retryWait
	s.retryWait *= 2
	return s.settleMove(from, fmt.Sprintf("%s: back to the rules' plan, trying again in %d intervals", why, s.retryAt-s.intervals))
}

func median(v []float64) float64 {
	c := slices.Clone(v)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}

// climb moves up from a failing level: to the lowest level known to meet
// the objectives above it (bisecting when there is room between), or by an
// exponential step when none is known.
func (s *Search) climb(why string) *Move {
	from := s.level
	hi := -1
	for l := range s.good {
		if l > from && (hi < 0 || l < hi) {
			hi = l
		}
	}
	switch {
	case hi == from+1:
		s.level = hi
		return s.settleMove(from, why+": back to the last level that met it")
	case hi > 0:
		s.level = (from + hi + 1) / 2
	case from == s.cfg.Levels-1:
		// No level meets the objectives: attainment is lost whatever the
		// level, so the batch work keeps its throughput (the rules' plan).
		return s.giveUp(from, why+": the ladder's top, so throttling batch work cannot meet the objective")
	default:
		s.level = min(s.cfg.Levels-1, max(from*2, from+2))
	}
	return &Move{From: from, To: s.level, Why: why}
}

func (s *Search) settle() {
	s.settled, s.since, s.streak, s.window = true, 0, 0, nil
	if s.settledAt == 0 {
		s.settledAt = s.intervals
	}
}

func (s *Search) settleMove(from int, why string) *Move {
	s.settle()
	if from == s.level {
		return nil
	}
	return &Move{From: from, To: s.level, Why: why}
}
