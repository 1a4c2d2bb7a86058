package sim

import (
	"context"
	"math"
	"slices"
	"time"
)

// EngineResult is `sculpt bench engine`'s line for one scenario: the mean
// reward of each policy over the run (simulated), how many intervals
// sculpt took to reach 95% of the oracle's reward, sculpt's objective
// violations (service-intervals over their p99) and actions.
type EngineResult struct {
	Simulated     bool          `json:"simulated"`
	Scenario      string        `json:"scenario"`
	Topology      string        `json:"topology"`
	Oracle        float64       `json:"oracle"`
	Sculpt        float64       `json:"sculpt"`
	Rules         float64       `json:"rules"`
	Static        float64       `json:"static"`
	None          float64       `json:"none"`
	DecisionsTo95 int           `json:"decisions_to_95"` // -1: never within the run
	Violations    int           `json:"objective_violations"`
	Actions       int           `json:"actions"`
	OracleSearch  time.Duration `json:"oracle_search_ns"`
	OracleEvals   int           `json:"oracle_evaluated"`
}

// BenchScenario runs sc under every policy.
func BenchScenario(ctx context.Context, sc *Scenario, steps int) (*EngineResult, error) {
	res := map[string]*Result{}
	for _, p := range Policies {
		r, err := Run(ctx, sc, p, steps)
		if err != nil {
			return nil, err
		}
		res[p] = r
	}
	out := &EngineResult{Simulated: true, Scenario: sc.Name, Topology: sc.Topology,
		Oracle: res[PolicyOracle].MeanReward, Sculpt: res[PolicySculpt].MeanReward, Rules: res[PolicyRules].MeanReward,
		Static: res[PolicyStatic].MeanReward, None: res[PolicyNone].MeanReward,
		Violations: res[PolicySculpt].Violations, Actions: res[PolicySculpt].Actions}
	for _, st := range res[PolicyOracle].Oracle {
		out.OracleSearch += st.Took
		out.OracleEvals += st.Evaluated
	}
	out.DecisionsTo95 = decisionsTo95(res[PolicySculpt].Steps, res[PolicyOracle].Steps)
	return out, nil
}

// decisionsTo95 is the number of decisions (intervals after the first,
// whose reward is that of the arrangement every policy starts from) until
// sculpt's reward reaches 95% of the oracle's in the same interval (-1:
// never within the run).
func decisionsTo95(s, o []StepResult) int {
	for i := 1; i < len(s) && i < len(o); i++ {
		if s[i].Reward >= 0.95*o[i].Reward-1e-9 {
			return i
		}
	}
	return -1
}

// EngineSummary sums up a bench over scenarios.
type EngineSummary struct {
	Simulated bool `json:"simulated"`
	Summary   bool `json:"summary"`
	Scenarios int  `json:"scenarios"`
	// MedianDecisionsTo95 counts a scenario that never got there as the
	// run's length + 1.
	MedianDecisionsTo95 float64 `json:"median_decisions_to_95"`
	Reached95           int     `json:"reached_95"`
	// WorstSculptVsRules is the most sculpt fell below the rules alone,
	// relative ((sculpt - rules) / rules; negative is below).
	WorstSculptVsRules float64       `json:"worst_sculpt_vs_rules"`
	WorstScenario      string        `json:"worst_scenario"`
	MeanOracle         float64       `json:"mean_oracle"`
	MeanSculpt         float64       `json:"mean_sculpt"`
	MeanRules          float64       `json:"mean_rules"`
	MeanStatic         float64       `json:"mean_static"`
	MeanNone           float64       `json:"mean_none"`
	Took               time.Duration `json:"took_ns"`
}

// Summarize sums results up; steps is the run length.
func Summarize(rs []*EngineResult, steps int) EngineSummary {
	s := EngineSummary{Simulated: true, Summary: true, Scenarios: len(rs), WorstSculptVsRules: math.Inf(1)}
	var d []float64
	for _, r := range rs {
		x := float64(r.DecisionsTo95)
		if r.DecisionsTo95 < 0 {
			x = float64(steps + 1)
		} else {
			s.Reached95++
		}
		d = append(d, x)
		if r.Rules > 0 {
			if g := (r.Sculpt - r.Rules) / r.Rules; g < s.WorstSculptVsRules {
				s.WorstSculptVsRules, s.WorstScenario = round(g, 4), r.Scenario
			}
		}
		s.MeanOracle += r.Oracle / float64(len(rs))
		s.MeanSculpt += r.Sculpt / float64(len(rs))
		s.MeanRules += r.Rules / float64(len(rs))
		s.MeanStatic += r.Static / float64(len(rs))
		s.MeanNone += r.None / float64(len(rs))
	}
	slices.Sort(d)
	if n := len(d); n > 0 {
		s.MedianDecisionsTo95 = (d[(n-1)/2] + d[n/2]) / 2
	}
	if math.IsInf(s.WorstSculptVsRules, 1) {
		s.WorstSculptVsRules = 0
	}
	s.MeanOracle, s.MeanSculpt, s.MeanRules = round(s.MeanOracle, 4), round(s.MeanSculpt, 4), round(s.MeanRules, 4)
	s.MeanStatic, s.MeanNone = round(s.MeanStatic, 4), round(s.MeanNone, 4)
	return s
}
