package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/bench"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchColocationCmd) }

func newBenchColocationCmd(a *app) *cobra.Command {
	var (
		opts    bench.ColocationOptions
		asJSON  bool
		service string
		antags  []string
		slo     sloFlags
		plotF   string
		sloFrom string
	)
	cmd := &cobra.Command{
		Use:   "colocation",
		Short: "A latency-critical service next to stress-ng antagonists: alone, Linux default, best static setting, sculpt",
		Long: `Runs memcached and nginx on 127.0.0.1, driven by open-loop clients at a fixed
rate (--rate over 4 connections, pipelined, latency counted from each request's
scheduled send time; --nginx-client wrk drives nginx with wrk, closed loop), in:
  alone                 the floor;
  default               next to stress-ng antagonists, Linux defaults;
  static:<setting>      next to them under a static hand setting (pin, nice,
                        idle, shares, pin+idle); the best by median p99 is the peer;
  sculpt                next to them under "sculpt run --mode apply" started
                        before the load, with no labels or hints.
Every case runs --runs times, interleaved. Reports the service's p50/p99 latency
and throughput, the antagonists' stress-ng bogo ops/s and the ratios. Needs root
and memcached, nginx and stress-ng, and wrk for --nginx-client wrk
(scripts/bench-deps.sh installs them).
Progress goes to stderr, under a bar of the runs when stderr is a terminal.`,
		Example: `  sculpt bench colocation --runs 5 --duration 10s
  sculpt bench colocation --service memcached --antagonists cpu --cases alone,default --runs 1 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPlotFlag(plotF); err != nil {
				return err
			}
			if sloFrom != "" {
				res, err := readSLOResult(sloFrom)
				if err != nil {
					return usagef("--slo-from %s: %v", flagValue(sloFrom), err)
				}
				return finishSLO(a, res, asJSON, plotF)
			}
			switch service {
			case "both":
				opts.Services = []string{"memcached", "nginx"}
			case "memcached", "nginx":
				opts.Services = []string{service}
			default:
				return usagef("--service %s: want memcached, nginx or both", flagValue(service))
			}
			for _, k := range antags {
				if !slices.Contains([]string{"cpu", "cache", "vm", "io"}, k) {
					return usagef("--antagonists: %q: want cpu, cache, vm or io", k)
				}
			}
			opts.Antagonists = antags
			for _, c := range opts.Cases {
				if !slices.Contains([]string{bench.CaseAlone, bench.CaseDefault, bench.CaseStatic, bench.CaseSculpt}, c) {
					return usagef("--cases: %q: want alone, default, static or sculpt", c)
				}
			}
			for _, s := range opts.Static {
				if !slices.Contains(bench.StaticSettings, s) {
					return usagef("--static: %q: want %s", s, strings.Join(bench.StaticSettings, ", "))
				}
			}
			if opts.Runs < 1 {
				return usagef("--runs %d: want at least 1", opts.Runs)
			}
			if opts.Duration < time.Second {
				return usagef("--duration %v: want at least 1s", opts.Duration)
			}
			if opts.Rate <= 0 {
				return usagef("--rate %v: want a positive request rate", opts.Rate)
			}
			if opts.NginxClient != bench.NginxClientOpen && opts.NginxClient != bench.NginxClientWrk {
				return usagef("--nginx-client %s: want open or wrk", flagValue(opts.NginxClient))
			}
			if opts.SculptRules != "" {
				abs, err := filepath.Abs(opts.SculptRules)
				if err != nil {
					return usagef("--sculpt-rules %s: %v", flagValue(opts.SculptRules), err)
				}
				if _, err := a.loadRules(opts.SculptRules); err != nil {
					return usagef("--sculpt-rules %s: %v", flagValue(opts.SculptRules), err)
				}
				opts.SculptRules = abs
			}
			if opts.Sculpt == "" {
				self, err := os.Executable()
				if err != nil {
					return fmt.Errorf("find the sculpt binary for the sculpt case: %w (give --sculpt)", err)
				}
				opts.Sculpt = self
			}
			opts.Roots = a.roots
			so, err := slo.parse(opts)
			if err != nil {
				return err
			}
			if so != nil {
				res, err := bench.ColocationSLO(cmd.Context(), *so, a.stderr)
				if err != nil {
					return err
				}
				return finishSLO(a, res, asJSON, plotF)
			}
			bar := a.newProgress(-1, "bench colocation: runs")
			if bar.active() {
				opts.OnRun = func(done, total int) {
					bar.setMax(int64(total))
					bar.set(int64(done), "")
				}
			}
			res, err := bench.Colocation(cmd.Context(), opts, bar.writer(a.stderr))
			bar.done()
			if err != nil {
				return err
			}
			if plotF != "" {
				files, err := writeColocationPlot(plotF, res)
				for _, f := range files {
					fmt.Fprintf(a.stderr, "plot: %s\n", f)
				}
				if err != nil {
					return err
				}
			}
			if asJSON {
				return writeJSON(a, res)
			}
			return writeColocationTable(a.stdout, res)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.IntVar(&opts.Runs, "runs", 5, "runs of every case (interleaved)")
	f.DurationVar(&opts.Duration, "duration", 10*time.Second, "measured time per run")
	f.DurationVar(&opts.Warmup, "warmup", 2*time.Second, "load offered before measuring")
	f.DurationVar(&opts.Settle, "settle", 6*time.Second, "sculpt case: load offered before measuring, for the agent to act")
	f.StringVar(&service, "service", "both", "memcached, nginx or both")
	f.StringSliceVar(&antags, "antagonists", []string{"cpu", "cache", "vm", "io"}, "stress-ng antagonists: cpu, cache, vm, io")
	f.StringSliceVar(&opts.Cases, "cases", []string{bench.CaseAlone, bench.CaseDefault, bench.CaseStatic, bench.CaseSculpt}, "cases to run")
	f.StringSliceVar(&opts.Static, "static", bench.StaticSettings, "static hand settings to try")
	f.Float64Var(&opts.Rate, "rate", 5000, "offered requests per second of the open-loop clients (memcached; nginx unless --nginx-client wrk)")
	f.StringVar(&opts.NginxClient, "nginx-client", bench.NginxClientOpen, "nginx's load: open (open-loop HTTP client at --rate) or wrk (closed loop)")
	f.StringVar(&opts.Sculpt, "sculpt", "", "sculpt binary for the sculpt case (default: this one)")
	f.DurationVar(&opts.SculptInterval, "sculpt-interval", time.Second, "sculpt case: the agent's --interval")
	f.StringVar(&opts.SculptRules, "sculpt-rules", "", "sculpt case: the agent's --rules (default: its embedded rules)")
	f.StringSliceVar(&slo.factors, "slo", nil, "service-level objectives: p99 <= FACTOR x alone (e.g. 1.5,1.25); runs alone, the oracle grid, the rules and the agent instead of --cases")
	f.StringSliceVar(&slo.quotas, "slo-quotas", []string{"1", "0.5", "0.25"}, "--slo: the grid's CPU quota levels for the antagonists together, in cores (besides none)")
	f.StringSliceVar(&slo.classes, "slo-classes", []string{bench.ClassIdle}, "--slo: the grid's scheduling classes for the antagonists: other, idle")
	f.Float64Var(&slo.share, "slo-share", 0.95, "--slo: share of intervals within the objective that meets it")
	f.StringVar(&slo.weight, "slo-quota-weight", "min", "--slo: the antagonists' cgroup weight at the grid's quota levels: min (cpu.shares 2) or default")
	f.BoolVar(&slo.warm, "slo-warm", false, "--slo: also run the agent warm (its experience from the cold run)")
	f.StringVar(&plotF, "plot", "", "draw every run's p99 per case (with --slo: p99 against antagonist CPU) into this PNG (-<service> added for both services)")
	f.StringVar(&sloFrom, "slo-from", "", "report (and --plot) a saved --slo --json result instead of running")
	f.StringVar(&opts.KeepDir, "keep-outputs", "", "keep every program's output (the agent's log included) under this directory")
	return cmd
}

func writeColocationTable(w io.Writer, res *bench.ColocationResult) error {
	m := res.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s; load average before: %.2f %.2f %.2f\n", m.CPUs, m.CPUModel, m.Kernel,
		res.LoadAvgBefore[0], res.LoadAvgBefore[1], res.LoadAvgBefore[2])
	fmt.Fprintf(w, "%d runs per case, %.0f s measured each; median [min-max]\n", res.Runs, res.DurationSec)
	var kinds []string
	for k := range res.Antagonists {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "antagonist %s: stress-ng %s\n", k, res.Antagonists[k])
	}
	if res.Grouping != "" {
		fmt.Fprintf(w, "the service and each antagonist in a cgroup of its own under %s\n", res.Grouping)
	}
	for _, s := range res.Services {
		fmt.Fprintf(w, "\n%s: %s\n", s.Service, s.Load)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		hdr := "case\tp50 µs\tp99 µs\treq/s"
		for _, k := range kinds {
			hdr += "\t" + k + " ops/s"
		}
		fmt.Fprintln(tw, hdr+"\tp99/alone\tp99/best static\tantagonists/default (min)\t")
		for _, c := range s.Cases {
			if c.Unavailable != "" {
				fmt.Fprintf(tw, "%s\tunavailable (below)\t\n", c.Name)
				continue
			}
			if c.P99Micros.N == 0 {
				fmt.Fprintf(tw, "%s\tno successful run\t\n", c.Name)
				continue
			}
			row := fmt.Sprintf("%s\t%s\t%s\t%s", c.Name, coloSpread(c.P50Micros), coloSpread(c.P99Micros), coloSpread(c.Throughput))
			for _, k := range kinds {
				if a, ok := c.Antagonists[k]; ok {
					row += "\t" + coloSpread(a)
				} else {
					row += "\t-"
				}
			}
			row += "\t" + coloRatio(c.P99VsAlone) + "\t" + coloRatio(c.P99VsBestStatic) + "\t" + coloRatioPtr(c.AntagonistsVsDefaultMin)
			fmt.Fprintln(tw, row+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range s.Cases {
			fmt.Fprintf(w, "  %s: %s\n", c.Name, c.Setting)
			if c.Unavailable != "" {
				fmt.Fprintf(w, "    %s\n", coloOneLine(c.Unavailable))
			}
		}
		if s.BestStatic != "" {
			fmt.Fprintf(w, "  best static setting (lowest median p99): %s\n", s.BestStatic)
		}
		if t := s.Targets; t != nil {
			fmt.Fprintf(w, "  sculpt targets: p99 <= 1.25x alone: %s; p99 < best static: %s; antagonists >= 0.5x default: %s\n",
				coloYesNo(t.P99WithinAlone), coloYesNo(t.P99BelowBestStatic), coloYesNo(t.AntagonistsHalf))
		}
	}
	return nil
}

func coloSpread(s bench.Spread) string {
	return fmt.Sprintf("%.0f [%.0f-%.0f]", s.Median, s.Min, s.Max)
}

func coloRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r)
}

func coloRatioPtr(r *float64) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *r)
}

func coloYesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func coloOneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return s
}
