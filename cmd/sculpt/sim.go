package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/sim"
)

func init() {
	register(newSimCmd)
	benchSubcommands = append(benchSubcommands, newBenchEngineCmd)
}

func newSimCmd(a *app) *cobra.Command {
	var (
		scenario string
		seed     int64
		policy   string
		steps    int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run sculpt's engine on a simulated server (results are simulated)",
		Long: `Plays a scenario (a YAML file, docs/sim.md, or one generated from --random SEED)
on the modelled server of internal/sim under a policy: sculpt (rules and the
learning agent), rules (no agent), static (exclusive cores for services once),
none (Linux defaults) or oracle (the best arrangement the search finds for each
phase). Prints the reward per interval and the mean. Nothing on this machine is
touched; every figure is simulated.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var sc *sim.Scenario
			switch {
			case scenario != "" && cmd.Flags().Changed("random"):
				return usagef("sim: give --scenario or --random, not both")
			case scenario != "":
				var err error
				if sc, err = sim.LoadScenario(scenario); err != nil {
					return usagef("sim: %v", err)
				}
			case cmd.Flags().Changed("random"):
				if seed < 0 {
					return usagef("sim: --random %d: want a seed >= 0", seed)
				}
				sc = sim.Random(uint64(seed))
			default:
				return usagef("sim: give --scenario FILE or --random SEED")
			}
			if steps < 0 {
				return usagef("sim: --steps %d: want >= 0", steps)
			}
			res, err := sim.Run(cmd.Context(), sc, policy, steps)
			if err != nil {
				if strings.HasPrefix(err.Error(), "policy ") {
					return usagef("sim: --%v", err)
				}
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				return enc.Encode(res)
			}
			fmt.Fprintf(a.stdout, "SIMULATED: scenario %s on %s, policy %s\n", res.Scenario, res.Topology, res.Policy)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "step\treward\tviolations\tactions\tworkloads (score)")
			for _, st := range res.Steps {
				var parts []string
				for _, n := range simKeys(st.Workloads) {
					parts = append(parts, fmt.Sprintf("%s %.2f", n, st.Workloads[n].Score))
				}
				fmt.Fprintf(tw, "%d\t%.3f\t%d\t%d\t%s\n", st.Step, st.Reward, st.Violations, st.Actions, strings.Join(parts, ", "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "mean reward %.3f (simulated), %d objective violations, %d actions\n", res.MeanReward, res.Violations, res.Actions)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&scenario, "scenario", "", "a scenario file (docs/sim.md)")
	f.Int64Var(&seed, "random", 0, "generate a scenario from this seed")
	f.StringVar(&policy, "policy", sim.PolicySculpt, "sculpt, rules, static, none or oracle")
	f.IntVar(&steps, "steps", 0, "intervals to run (0: the scenario's)")
	f.BoolVar(&asJSON, "json", false, "print the run as JSON")
	return cmd
}

func simKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func newBenchEngineCmd(a *app) *cobra.Command {
	var (
		dir    string
		seeds  string
		steps  int
		asJSON bool
		plotF  string
	)
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "sculpt's engine against the oracle, the rules alone, a static policy and none, on simulated scenarios",
		Long: `Runs every scenario of --scenarios DIR (*.yaml) and of --random seeds A-B under
each policy on the simulated server and reports, per scenario, the mean reward
of the oracle, sculpt, the rules alone, a static CPU manager and no sculpt, the
intervals sculpt took to reach 95% of the oracle's reward, its objective
violations and actions; then a summary. All results are simulated. A progress bar
goes to stderr when it is a terminal.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotFlag(plotF); err != nil {
				return err
			}
			var scs []*sim.Scenario
			if dir != "" {
				files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
				if err != nil {
					return usagef("bench engine: --scenarios %s: %v", dir, err)
				}
				if len(files) == 0 {
					if _, err := os.Stat(dir); err != nil {
						return usagef("bench engine: --scenarios %s: %v", dir, err)
					}
					return usagef("bench engine: --scenarios %s: no *.yaml scenario in it", dir)
				}
				sort.Strings(files)
				for _, f := range files {
					sc, err := sim.LoadScenario(f)
					if err != nil {
						return usagef("bench engine: %v", err)
					}
					scs = append(scs, sc)
				}
			}
			if seeds != "" {
				lo, hi, err := parseSeedRange(seeds)
				if err != nil {
					return usagef("bench engine: --seeds %q: %v", seeds, err)
				}
				for s := lo; s <= hi; s++ {
					scs = append(scs, sim.Random(s))
				}
			}
			if len(scs) == 0 {
				return usagef("bench engine: give --scenarios DIR and/or --seeds A-B")
			}
			t0 := time.Now()
			var rs []*sim.EngineResult
			enc := json.NewEncoder(a.stdout)
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(a.stdout, "SIMULATED: mean reward per policy (1 = every objective met, batch work as fast as alone)")
				fmt.Fprintln(tw, "scenario\ttopology\toracle\tsculpt\trules\tstatic\tnone\tdecisions_to_95\tviolations\tactions\toracle search")
			}
			bar := a.newProgress(int64(len(scs)), "bench engine: scenarios")
			for _, sc := range scs {
				r, err := sim.BenchScenario(cmd.Context(), sc, steps)
				if err != nil {
					bar.done()
					return fmt.Errorf("bench engine: scenario %s: %w", sc.Name, err)
				}
				bar.add(1)
				rs = append(rs, r)
				if asJSON {
					if err := enc.Encode(r); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%d\t%v (%d)\n", r.Scenario, r.Topology, r.Oracle, r.Sculpt, r.Rules, r.Static, r.None,
					r.DecisionsTo95, r.Violations, r.Actions, r.OracleSearch.Round(time.Millisecond), r.OracleEvals)
			}
			n := steps
			if n <= 0 && len(scs) > 0 {
				n = scs[0].Steps
			}
			bar.done()
			sum := sim.Summarize(rs, n)
			sum.Took = time.Since(t0)
			if plotF != "" {
				if err := writeEnginePlot(plotF, rs); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "plot: %s\n", plotF)
			}
			if asJSON {
				return enc.Encode(sum)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%d scenarios (simulated): median decisions to 95%% of the oracle %.1f (%d reached it); mean reward oracle %.3f, sculpt %.3f, rules %.3f, static %.3f, none %.3f; sculpt vs rules at worst %+.1f%% (%s); took %v\n",
				sum.Scenarios, sum.MedianDecisionsTo95, sum.Reached95, sum.MeanOracle, sum.MeanSculpt, sum.MeanRules, sum.MeanStatic, sum.MeanNone,
				100*sum.WorstSculptVsRules, sum.WorstScenario, sum.Took.Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "scenarios", "", "a directory of scenario files (*.yaml)")
	f.StringVar(&seeds, "seeds", "", "generated scenarios from seeds A-B (inclusive), e.g. 1-20")
	f.IntVar(&steps, "steps", 0, "intervals per run (0: each scenario's)")
	f.BoolVar(&asJSON, "json", false, "one JSON object per scenario, then a summary object")
	f.StringVar(&plotF, "plot", "", "draw the mean reward per scenario and policy into this PNG")
	return cmd
}

func parseSeedRange(s string) (uint64, uint64, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		b = a
	}
	lo, err1 := strconv.ParseUint(a, 10, 64)
	hi, err2 := strconv.ParseUint(b, 10, 64)
	if err1 != nil || err2 != nil || hi < lo {
		return 0, 0, fmt.Errorf("want A-B with 0 <= A <= B")
	}
	if hi-lo > 10000 {
		return 0, 0, fmt.Errorf("at most 10000 seeds")
	}
	return lo, hi, nil
}
