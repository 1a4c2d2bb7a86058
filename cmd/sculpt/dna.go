package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/workload"
)

func init() { register(newDNACmd) }

func newDNACmd(a *app) *cobra.Command {
	var (
		pids    []int
		without []string
		cgroups []string
		all     bool
		window  time.Duration
		step    time.Duration
		asJSON  bool
		model   string
	)
	cmd := &cobra.Command{
		Use:   "dna",
		Short: "Profile workloads over a window and print their DNA",
		Long: `Profile the selected workloads (all of them by default) over --window and print
their genes and archetype. Genes this machine cannot measure are absent, not zero;
see docs/genes.md.`,
		Example: `  sculpt dna --pid 4242
  sculpt dna --cgroup /system.slice/nginx.service --window 10s --json
  sculpt dna --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window <= 0 {
				return usagef("--window must be a positive duration, got %v", window)
			}
			for _, p := range pids {
				if p <= 0 {
					return usagef("--pid %d: a process ID is a positive number", p)
				}
			}
			if step <= 0 || step > window {
				step = min(time.Second, window)
			}
			tel, err := telemetryOptions(without)
			if err != nil {
				return err
			}
			sel := workload.Selector{PIDs: pids, Cgroups: cgroups, All: all}
			obsv, sampler, err := a.newObserver(sel, window, tel)
			if err != nil {
				return err
			}
			defer a.closeObserver(sampler)
			if m := a.loadDNAModel(model); m != nil {
				obsv.SetModel(m)
			}
			ctx := cmd.Context()
			obs, err := obsv.Tick(ctx)
			if err != nil {
				return selectionError(err)
			}
			fmt.Fprintf(a.stderr, "sculpt: sampling %d workload(s) for %v\n", len(obs.Workloads), window)
			start := time.Now()
			var exited []int
			for time.Since(start) < window {
				wait := min(step, window-time.Since(start))
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
				if obs, err = obsv.Tick(ctx); err != nil {
					return err
				}
				exited = append(exited, obs.Exited...)
			}
			obs.Exited = exited
			for _, pid := range exited {
				fmt.Fprintf(a.stderr, "sculpt: pid %d exited during the window; it is left out\n", pid)
			}
			if asJSON {
				return writeJSON(a, toJSON(obs))
			}
			if len(obs.DNA) <= 4 {
				return writeDetail(a.stdout, obs.DNA)
			}
			return writeTable(a.stdout, obs.DNA, 0)
		},
	}
	f := cmd.Flags()
	f.IntSliceVar(&pids, "pid", nil, "profile the process tree rooted at this PID (repeatable)")
	f.StringArrayVar(&cgroups, "cgroup", nil, "profile the processes in this cgroup path (repeatable)")
	f.BoolVar(&all, "all", false, "profile every workload (the default when nothing is selected)")
	f.DurationVar(&window, "window", 5*time.Second, "how long to observe before printing")
	f.DurationVar(&step, "step", time.Second, "sampling step within the window")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&model, "model", "", modelFlagHelp)
	withoutFlag(f, &without)
	return cmd
}
