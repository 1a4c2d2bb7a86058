package agent

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// env is a seeded synthetic co-location: the service's p99 at throttle
// level l is 0.85 * 1.35^(t-l) of its target times log-normal noise, so
// level t (the threshold) is the least throttling that meets the target
// without noise, and each level less throttled is 35% slower.
type env struct {
	rng   *rand.Rand
	t     int
	sigma float64
}

func newEnv(seed uint64, t int, sigma float64) *env {
	return &env{rng: rand.New(rand.NewPCG(seed, 7)), t: t, sigma: sigma}
}

func (e *env) outcome(l int) Outcome {
	p99 := 0.85 * math.Pow(1.35, float64(e.t-l)) * math.Exp(e.sigma*e.rng.NormFloat64())
	return Outcome{Known: true, Met: p99 <= 1, Slack: 1 - p99}
}

func run(s *Search, e *env, n int) (met, judged int) {
	for range n {
		o := e.outcome(s.Level())
		s.Observe(o)
		if s.Settled() {
			judged++
			if o.Met {
				met++
			}
		}
	}
	return met, judged
}

// Over seeded environments with every threshold, the search settles within
// 30 intervals in the median case, on the threshold or one level above,
// and meets the objective in at least 95% of the intervals after it
// settled.
func TestSearchFindsTheLeastThrottlingThatMeetsTheObjective(t *testing.T) {
	var conv []int
	var met, judged, near, runs int
	for seed := uint64(1); seed <= 40; seed++ {
		for th := 0; th <= 8; th++ {
			e := newEnv(seed, th, 0.08)
			s := NewSearch(DefaultSearch, 0, false)
			m, j := run(s, e, 200)
			met, judged, runs = met+m, judged+j, runs+1
			if !s.Settled() && s.ConvergedAfter() == 0 {
				t.Errorf("seed %d threshold %d: never settled (level %d)", seed, th, s.Level())
				continue
			}
			conv = append(conv, s.ConvergedAfter())
			if l := s.Level(); l == th || l == th+1 {
				near++
			}
		}
	}
	slices.Sort(conv)
	if med := conv[len(conv)/2]; med > 30 {
		t.Errorf("median intervals to settle %d, want <= 30", med)
	}
	if frac := float64(near) / float64(runs); frac < 0.9 {
		t.Errorf("settled on the threshold (or one above) in %.2f of runs, want >= 0.9", frac)
	}
	if att := float64(met) / float64(judged); att < 0.95 {
		t.Errorf("objective met in %.3f of settled intervals, want >= 0.95", att)
	}
	t.Logf("median %d intervals to settle (max %d); on threshold %.2f; attainment %.3f",
		conv[len(conv)/2], conv[len(conv)-1], float64(near)/float64(runs), float64(met)/float64(judged))
}

// A level that meets the objective without throttling is kept: the search
// never throttles what does not need it.
func TestSearchKeepsTheRulesPlanWhenItMeetsTheObjective(t *testing.T) {
	e := newEnv(3, 0, 0.05)
	s := NewSearch(DefaultSearch, 0, false)
	run(s, e, 100)
	if s.Level() != 0 || !s.Settled() {
		t.Errorf("level %d settled %v, want the rules' plan (0) kept", s.Level(), s.Settled())
	}
}

// When the load grows under a settled level, the search steps back up
// within StepBack violated intervals, and settles at the new threshold.
func TestSearchStepsBackWhenTheObjectiveIsViolated(t *testing.T) {
	e := newEnv(5, 2, 0.03)
	s := NewSearch(DefaultSearch, 0, false)
	run(s, e, 60)
	if !s.Settled() || s.Level() < 2 || s.Level() > 3 {
		t.Fatalf("first load: level %d settled %v, want 2 or 3", s.Level(), s.Settled())
	}
	before := s.Level()
	heavier := newEnv(6, 6, 0.03)
	moved := -1
	for i := range 10 {
		if m := s.Observe(heavier.outcome(s.Level())); m != nil && moved < 0 {
			moved = i + 1
			if m.To <= m.From {
				t.Errorf("on violation moved %d -> %d, want up", m.From, m.To)
			}
		}
	}
	if moved < 0 || moved > DefaultSearch.StepBack {
		t.Errorf("stepped back after %d violated intervals, want within %d", moved, DefaultSearch.StepBack)
	}
	run(s, heavier, 80)
	if s.Level() < 6 || s.Level() > 7 || s.Level() <= before {
		t.Errorf("after the load grew: level %d, want 6 or 7", s.Level())
	}
}

// When the load eases, probing finds the lower level again.
func TestSearchProbesDownWhenTheLoadEases(t *testing.T) {
	e := newEnv(9, 6, 0.03)
	s := NewSearch(DefaultSearch, 0, false)
	run(s, e, 60)
	if s.Level() < 6 {
		t.Fatalf("level %d, want >= 6", s.Level())
	}
	lighter := newEnv(10, 2, 0.03)
	run(s, lighter, 400)
	if s.Level() > 3 {
		t.Errorf("after the load eased: level %d, want 2 or 3", s.Level())
	}
}

// A start from experience (trusted) settles in at most a third of the
// intervals a cold start needs, in the median over seeds and thresholds.
func TestSearchWarmStartIsFaster(t *testing.T) {
	var cold, warm []int
	for seed := uint64(1); seed <= 30; seed++ {
		for th := 2; th <= 8; th++ {
			c := NewSearch(DefaultSearch, 0, false)
			run(c, newEnv(seed, th, 0.05), 100)
			w := NewSearch(DefaultSearch, th, true)
			run(w, newEnv(seed+1000, th, 0.05), 100)
			cold, warm = append(cold, c.ConvergedAfter()), append(warm, w.ConvergedAfter())
		}
	}
	slices.Sort(cold)
	slices.Sort(warm)
	mc, mw := cold[len(cold)/2], warm[len(warm)/2]
	if mw*3 > mc {
		t.Errorf("median intervals to settle: warm %d, cold %d; want warm <= cold/3", mw, mc)
	}
	t.Logf("median intervals to settle: cold %d, warm %d", mc, mw)
}

// When even the ladder's top violates the objective, throttling cannot meet
// it: the search goes back to the rules' plan (the batch work keeps its
// throughput, attainment being lost either way), stays there without
// oscillating, and tries again later, less often each time.
func TestSearchGivesUpWhenTheObjectiveIsOutOfReach(t *testing.T) {
	e := newEnv(1, 20, 0.02)
	s := NewSearch(DefaultSearch, 0, false)
	var moves []*Move
	topReached := false
	for range 60 {
		if m := s.Observe(e.outcome(s.Level())); m != nil {
			moves = append(moves, m)
			topReached = topReached || m.To == DefaultSearch.Levels-1
		}
	}
	if !topReached || s.Level() != 0 || !s.Settled() {
		t.Fatalf("level %d settled %v after %d moves (top reached %v), want back at 0", s.Level(), s.Settled(), len(moves), topReached)
	}
	if len(moves) > 6 {
		t.Errorf("%d moves in 60 intervals, want a climb and one return: %+v", len(moves), moves)
	}
	// It tries again later, and gives up again.
	climbs := 0
	for range 400 {
		if m := s.Observe(e.outcome(s.Level())); m != nil && m.From == 0 {
			climbs++
		}
	}
	if climbs < 1 || climbs > 4 {
		t.Errorf("%d retries in 400 intervals, want a few, spaced further apart each time", climbs)
	}
}

// Intervals whose signal is missing are not judged.
func TestSearchIgnoresUnknownIntervals(t *testing.T) {
	s := NewSearch(DefaultSearch, 0, false)
	for range 50 {
		if m := s.Observe(Outcome{Known: false}); m != nil {
			t.Fatalf("moved on unknown outcomes: %+v", m)
		}
	}
	if s.Settled() {
		t.Error("settled without a judged interval")
	}
}

// When throttling the batch work does not lower the service's latency (its
// interference comes from elsewhere), the search gives up after the first
// level it judges instead of climbing the ladder to the floor, goes back to
// the rules' plan and says why; a surface where throttling helps is still
// climbed (TestSearchFindsTheLeastThrottlingThatMeetsTheObjective).
func TestSearchGivesUpThrottlingThatDoesNotHelp(t *testing.T) {
	play := func(cfg SearchConfig, seed uint64) (throttled int, gaveUp *Move, s *Search) {
		rng := rand.New(rand.NewPCG(seed, 3))
		s = NewSearch(cfg, 0, false)
		for range 60 {
			p99 := 1.5 * math.Exp(0.15*rng.NormFloat64()) // whatever the level
			batch := math.Min(1, 1.5*math.Pow(0.75, float64(s.Level())))
			if s.Level() > 0 {
				throttled++
			}
			if m := s.Observe(Outcome{Known: true, Met: p99 <= 1, Slack: 1 - p99, Batch: batch}); m != nil && m.To == 0 && gaveUp == nil {
				gaveUp = m
			}
		}
		return throttled, gaveUp, s
	}
	off := DefaultSearch
	off.MinGain = 0
	fewer, early := 0, 0
	for seed := uint64(1); seed <= 20; seed++ {
		n, m, s := play(DefaultSearch, seed)
		nOff, _, _ := play(off, seed)
		if s.Level() != 0 || m == nil {
			t.Errorf("seed %d: level %d after 60 intervals, want back at the rules' plan", seed, s.Level())
		}
		if m != nil && strings.Contains(m.Why, "throttling did not help") {
			early++
		}
		if n < nOff {
			fewer++
		}
	}
	// Noise over two intervals a level can pass for a gain now and then;
	// without the check every run climbs to the ladder's top first.
	if early < 15 || fewer < 15 {
		t.Errorf("gave up for lack of gain in %d of 20 runs, throttled fewer intervals than without the check in %d; want >= 15 each", early, fewer)
	}
}

// A level whose quota the batch work does not reach takes nothing from it
// and buys nothing: the search keeps climbing through such a plateau to the
// levels that do bind, and finds the threshold there.
func TestSearchClimbsThroughLevelsThatDoNotBind(t *testing.T) {
	near := 0
	for seed := uint64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewPCG(seed, 5))
		s := NewSearch(DefaultSearch, 0, false)
		for range 120 {
			batch := math.Min(1, 2*math.Pow(0.75, float64(s.Level()))) // cores; the quota binds from level 3
			p99 := (0.7 + 0.8*batch) * math.Exp(0.05*rng.NormFloat64())
			s.Observe(Outcome{Known: true, Met: p99 <= 1, Slack: 1 - p99, Batch: batch})
		}
		if l := s.Level(); l == 6 || l == 7 {
			near++
		} else {
			t.Logf("seed %d: level %d (threshold 6)", seed, l)
		}
	}
	if near < 18 {
		t.Errorf("settled on the threshold (or one above) in %d of 20 runs, want >= 18", near)
	}
}
