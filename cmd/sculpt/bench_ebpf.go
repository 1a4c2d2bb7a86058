package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"sculpt/internal/telemetry"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchEBPFCmd) }

func newBenchEBPFCmd(a *app) *cobra.Command {
	var (
		opts   telemetry.EBPFBenchOptions
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "ebpf",
		Short: "Cost of the eBPF collector: added ns per system call, CPU of reading its maps for N workloads",
		Long: `Times a tight loop of getppid, of 1-byte pipe write+read and of 64-byte request/reply
round trips over loopback TCP (two threads, process CPU time) without the eBPF
collector, with it attached, and without it again, in interleaved rounds (thread CPU
time, so other tenants' load does not count), then the CPU time of one Collect with
the collector's maps holding --workloads processes. Figures are medians over the
rounds. Needs root and kernel BTF.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Rounds < 1 || opts.Calls < 2 || opts.Workloads < 1 {
				return usagef("--rounds %d, --calls %d, --workloads %d: want at least 1, 2, 1", opts.Rounds, opts.Calls, opts.Workloads)
			}
			res, err := telemetry.MeasureEBPFOverhead(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, res)
			}
			return writeEBPFBenchTable(a.stdout, res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Rounds, "rounds", 7, "interleaved rounds (without, with, without the collector)")
	f.IntVar(&opts.Calls, "calls", 200000, "system calls timed per round and mode")
	f.IntVar(&opts.Workloads, "workloads", 1000, "processes in the maps for the map-read measurement")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func writeEBPFBenchTable(w io.Writer, r telemetry.EBPFOverhead) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "system call\twithout ns\twith ns\tadded ns\tratio\t")
	row := func(name string, off, on, added float64) {
		ratio := 0.0
		if off > 0 {
			ratio = on / off
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", name, off, on, added, ratio)
	}
	row("getppid", r.GetppidNsOff, r.GetppidNsOn, r.GetppidNsAdded)
	row("pipe write/read (per call)", r.PipeNsOff, r.PipeNsOn, r.PipeNsAdded)
	row("loopback TCP request+reply (per round trip, process CPU)", r.ReqNsOff, r.ReqNsOn, r.ReqNsAdded)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nmap read: %d processes, %d channel entries: %.3f ms CPU per Collect = %.3f%% of one core at a 1 s interval\n(medians of %d rounds, %d calls each; thread CPU time)\n",
		r.Workloads, r.Channels, r.CollectCPUSec*1e3, r.CoreFracAt1s*100, r.Rounds, r.Calls)
	return err
}
