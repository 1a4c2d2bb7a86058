package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/bench"
)

func init() { register(newBenchCmd) }

// benchSubcommands are the benchmarks under "sculpt bench"; a new one adds
// itself here (from its own file's init, like register).
var benchSubcommands = []func(*app) *cobra.Command{newBenchProfilerCmd}

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench <name>",
		Short: "Measure sculpt against a floor and a peer on this machine",
		Long: `Each benchmark measures sculpt against the least work that could produce the
same result (the floor) and a widely used peer, interleaved so all see the same
machine, and reports ratios.`,
		Args: cobra.ArbitraryArgs,
	}
	for _, add := range benchSubcommands {
		cmd.AddCommand(add(a))
	}
	var names []string
	for _, c := range cmd.Commands() {
		names = append(names, c.Name())
	}
	cmd.RunE = func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("bench: name a benchmark (%s)", strings.Join(names, ", "))
		}
		return usagef("bench: unknown benchmark %q (have %s)", args[0], strings.Join(names, ", "))
	}
	return cmd
}

func newBenchProfilerCmd(a *app) *cobra.Command {
	var (
		ns      []int
		asJSON  bool
		minCPU  time.Duration
		command []string
		busy    bool
		pace    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "profiler",
		Short: "CPU cost of one per-process telemetry sweep (sculpt vs reading the files vs prometheus/procfs)",
		Long: `Starts N sleeping processes, one workload each, and measures the CPU time of a
sweep of sculpt's procfs collector, of only reading the full file set (the
floor), of only reading the files the collector read in that sweep (floor-read:
its idle skip reads less), of prometheus/procfs reading the same information,
and of a whole agent tick (workload discovery plus every default collector).
Then, unless --busy=false, it replaces N/10 of the processes by busy loops and
measures sculpt, both floors and the tick again, pausing --pace before every
sweep so that each busy loop runs in between. Progress goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range ns {
				if n < 1 {
					return usagef("--n %d: want a positive number of processes", n)
				}
			}
			if minCPU <= 0 {
				return usagef("--min-cpu %v: want a positive duration", minCPU)
			}
			if len(command) == 0 {
				return usagef("--command: want a program to start")
			}
			if pace <= 0 {
				return usagef("--pace %v: want a positive duration", pace)
			}
			res, err := bench.Profiler(cmd.Context(), bench.ProfilerOptions{
				Roots: a.roots, Ns: ns, MinCPU: minCPU, Command: command, NoBusy: !busy, Pace: pace,
			}, a.stderr)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, res)
			}
			return writeProfilerTable(a.stdout, res)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&ns, "n", []int{100, 1000}, "numbers of processes to sweep")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.DurationVar(&minCPU, "min-cpu", time.Second, "CPU time each method must spend per N before the measurement stops")
	f.StringSliceVar(&command, "command", []string{"/bin/sleep", "3600"}, "the process to start N times")
	f.BoolVar(&busy, "busy", true, "also measure with N/10 of the processes busy")
	f.DurationVar(&pace, "pace", 200*time.Millisecond, "pause before each sweep of the busy case")
	return cmd
}

func writeProfilerTable(w io.Writer, res *bench.ProfilerResult) error {
	m := res.Machine
	fmt.Fprintf(w, "machine: %d CPUs, %s, %s, %s\n\n", m.CPUs, m.CPUModel, m.Kernel, m.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tsweeps\tfloor ms\tfloor-read ms\tsculpt ms\tprocfs ms\tsculpt/floor\tsculpt/floor-read\tprocfs/floor\tsculpt core% at 1s\tagent RSS MiB\t")
	for _, r := range res.Runs {
		fmt.Fprintf(tw, "%d\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", r.N, r.Sweeps,
			r.Floor.CPUSecPerSweep*1e3, r.FloorRead.CPUSecPerSweep*1e3, r.Sculpt.CPUSecPerSweep*1e3, r.Procfs.CPUSecPerSweep*1e3,
			r.SculptRatio, r.SculptReadRatio, r.ProcfsRatio, r.SculptCPUPercent, float64(r.AgentRSSBytes)/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tbusy\tsweeps\tidle/sweep\tfloor ms\tfloor-read ms\tsculpt ms\tsculpt/floor\tsculpt/floor-read\tsculpt core% at 1s\tfull tick ms\ttick core% at 1s\t")
	for _, r := range res.Runs {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.3f\t%.2f\t\n", r.N, 0, r.Sweeps, r.Idle,
			r.Floor.CPUSecPerSweep*1e3, r.FloorRead.CPUSecPerSweep*1e3, r.Sculpt.CPUSecPerSweep*1e3,
			r.SculptRatio, r.SculptReadRatio, r.SculptCPUPercent, r.Tick.CPUSecPerSweep*1e3, r.TickCPUPercent)
		if b := r.Busy; b != nil {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%.2f\t%.3f\t%.2f\t\n", r.N, b.Busy, b.Sweeps, b.Idle,
				b.Floor.CPUSecPerSweep*1e3, b.FloorRead.CPUSecPerSweep*1e3, b.Sculpt.CPUSecPerSweep*1e3,
				b.SculptRatio, b.SculptReadRatio, b.SculptPercent, b.Tick.CPUSecPerSweep*1e3, b.TickCPUPercent)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nfull tick by part (CPU ms per tick, on the sweeping thread):")
	for _, r := range res.Runs {
		fmt.Fprintf(w, "  N=%d: %s\n", r.N, formatParts(r.TickParts))
		if r.Busy != nil {
			fmt.Fprintf(w, "  N=%d, %d busy: %s\n", r.N, r.Busy.Busy, formatParts(r.Busy.TickParts))
		}
	}
	_, err := fmt.Fprintln(w, "\nms: CPU (user+system) per sweep; core% at 1s: share of one core at a 1 s interval; floor: the full file set;\n"+
		"floor-read: the files sculpt read in that sweep; full tick: discovery of all of /proc plus every default collector;\n"+
		"idle/sweep: processes sculpt found not to have run since their last full read.")
	return err
}

// formatParts lists parts as "name ms" sorted by name.
func formatParts(parts map[string]float64) string {
	names := make([]string, 0, len(parts))
	for k := range parts {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]string, len(names))
	for i, k := range names {
		out[i] = fmt.Sprintf("%s %.3f", k, parts[k])
	}
	return strings.Join(out, ", ")
}
