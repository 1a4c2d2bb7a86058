package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"sculpt/internal/bench"
)

// sloFlags are bench colocation's service-level-objective flags.
type sloFlags struct {
	factors []string
	quotas  []string
	classes []string
	share   float64
	warm    bool
	weight  string
}

// parse checks the flags and returns the SLO options (nil without --slo).
func (f sloFlags) parse(co bench.ColocationOptions) (*bench.SLOOptions, error) {
	if len(f.factors) == 0 {
		return nil, nil
	}
	o := &bench.SLOOptions{ColocationOptions: co, Share: f.share, Warm: f.warm, Classes: f.classes, QuotaWeight: f.weight}
	for _, s := range f.factors {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 1 || v > 100 {
			return nil, usagef("--slo %s: want factors of the p99 alone above 1, e.g. 1.5,1.25", flagValue(s))
		}
		o.Factors = append(o.Factors, v)
	}
	for _, s := range f.quotas {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v <= 0 || v > 4096 {
			return nil, usagef("--slo-quotas %s: want CPU quotas in cores above 0, e.g. 1,0.5,0.25", flagValue(s))
		}
		o.Quotas = append(o.Quotas, v)
	}
	for _, c := range f.classes {
		if c != bench.ClassOther && c != bench.ClassIdle {
			return nil, usagef("--slo-classes %s: want other or idle", flagValue(c))
		}
	}
	if f.weight != "min" && f.weight != "default" {
		return nil, usagef("--slo-quota-weight %s: want min or default", flagValue(f.weight))
	}
	if f.share <= 0 || f.share > 1 {
		return nil, usagef("--slo-share %v: want a share in (0, 1]", f.share)
	}
	if co.NginxClient == bench.NginxClientWrk {
		return nil, usagef("--nginx-client wrk: --slo needs the open-loop client (per-interval p99)")
	}
	return o, nil
}

func writeSLOReport(w io.Writer, res *bench.SLOResult) error {
	m := res.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s; load average before: %.2f %.2f %.2f, after: %.2f %.2f %.2f\n", m.CPUs, m.CPUModel, m.Kernel,
		res.LoadAvgBefore[0], res.LoadAvgBefore[1], res.LoadAvgBefore[2], res.LoadAvgAfter[0], res.LoadAvgAfter[1], res.LoadAvgAfter[2])
	fmt.Fprintf(w, "%d runs, %.0f s measured per case in 1 s intervals; objective met at >= %.0f%% of intervals; median [min-max] over runs\n",
		res.Runs, res.DurationSec, res.Share*100)
	for _, s := range res.Services {
		fmt.Fprintf(w, "\n%s: %s\n", s.Service, s.Load)
		for _, f := range s.Factors {
			fmt.Fprintf(w, "objective p99 <= %gx alone: server-side (eBPF) %s µs; in client terms %s µs; oracle per run: %s\n",
				f.Factor, coloSpread(f.TargetServerMicros), coloSpread(f.TargetClientMicros), sloOracles(f.Oracles))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "case\tclient p99 µs\tserver p99 µs\twithin (server)\twithin (client)\tantagonists cores\tvs oracle\tconverge (agent)\tconverge (series)\t")
			for _, c := range f.Cases {
				conv := sloSpread2(c.ConvergedAfter, 0)
				if c.NotConverged > 0 {
					conv += fmt.Sprintf(" (%d never)", c.NotConverged)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", c.Name, coloSpread(c.ClientP99Micros), coloSpread(c.ServerP99Micros),
					sloSpread2(c.Attainment, 2), sloSpread2(c.ClientAttainment, 2), sloSpread2(c.AntagonistCPU, 2), sloSpread2(c.VsOracle, 2),
					sloSpread2(c.AgentConvergedAfter, 0), conv)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		sig := s.Signal
		rho := "n/a (fewer than 3 arrangements)"
		if sig.Spearman != nil {
			rho = fmt.Sprintf("%.2f", *sig.Spearman)
		}
		fmt.Fprintf(w, "signal: Spearman(server p99, client p99) over %d arrangements = %s; median client/server ratio %.2f\n",
			len(sig.Arrangements), rho, sig.RatioClientServer)
		for i, a := range sig.Arrangements {
			fmt.Fprintf(w, "  %s: server %.0f µs, client %.0f µs\n", a, sig.ServerMicros[i], sig.ClientMicros[i])
		}
	}
	return nil
}

func sloOracles(os []string) string {
	out := make([]string, len(os))
	for i, o := range os {
		if o == "" {
			o = "none met it"
		}
		out[i] = o
	}
	return strings.Join(out, "; ")
}

func sloSpread2(s bench.Spread, prec int) string {
	if s.N == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f [%.*f-%.*f]", prec, s.Median, prec, s.Min, prec, s.Max)
}

// readSLOResult reads a result that --slo --json printed.
func readSLOResult(path string) (*bench.SLOResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res bench.SLOResult
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(res.Services) == 0 {
		return nil, fmt.Errorf("%s: no services: not a --slo --json result", path)
	}
	return &res, nil
}

// finishSLO prints the result and draws the plot.
func finishSLO(a *app, res *bench.SLOResult, asJSON bool, plotFile string) error {
	if plotFile != "" {
		files, err := writeSLOPlot(plotFile, res)
		if err != nil {
			return err
		}
		for _, f := range files {
			fmt.Fprintf(a.stderr, "plot: %s\n", f)
		}
	}
	if asJSON {
		return writeJSON(a, res)
	}
	return writeSLOReport(a.stdout, res)
}
