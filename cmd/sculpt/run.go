package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/workload"
)

// recoverAtStart finds a journal left by a sculpt that did not stop cleanly
// and undoes it (or, with keep, adopts it). No journal file: nothing to do.
func (a *app) recoverAtStart(ctx context.Context, path string, keep bool) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := journal.Open(path)
	if err != nil {
		return fmt.Errorf("journal left by an earlier run: %w", err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			a.log.Warn("closing journal", "path", path, "err", err)
		}
	}()
	if j.Len() == 0 {
		return nil
	}
	if keep {
		a.log.Info("adopting changes left in the journal (--keep)", "journal", path, "entries", j.Len())
		return nil
	}
	be, err := linux.New(a.roots, linux.Options{Journal: j})
	if err != nil {
		return err
	}
	a.log.Info("undoing changes left in the journal by an earlier run", "journal", path, "entries", j.Len())
	steps, err := RecoverJournal(ctx, be, j, false)
	toStderr := *a // keep stdout for the run's own output (JSON lines)
	toStderr.stdout = a.stderr
	printRevert(&toStderr, path, steps, j.Len())
	if err != nil {
		return fmt.Errorf("recover journal %s: %w", path, err)
	}
	return nil
}

func init() { register(newRunCmd) }

func newRunCmd(a *app) *cobra.Command {
	var (
		mode     string
		interval time.Duration
		forDur   time.Duration
		window   time.Duration
		top      int
		asJSON   bool
		pids     []int
		cgroups  []string
		keep     bool
		jpath    string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent loop (observe mode: a live view of every workload's DNA)",
		Long: `Run sculpt's loop every --interval until interrupted or until --for has passed.

In observe mode sculpt discovers the workloads, samples their telemetry and prints
their DNA each interval: a table of the busiest workloads, or one JSON object per
line with --json. It changes nothing on the machine.`,
		Example: `  sculpt run                       # observe every workload, 5 s interval
  sculpt run --interval 1s --for 30s --json > dna.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch mode {
			case "observe":
			case "advise", "apply":
				return usagef("--mode %s is not available yet: the planner and guard come with the engine (issue 4); use --mode observe", mode)
			default:
				return usagef("--mode %q: want observe, advise or apply", mode)
			}
			if interval <= 0 {
				return usagef("--interval must be a positive duration, got %v", interval)
			}
			if forDur < 0 {
				return usagef("--for must not be negative, got %v", forDur)
			}
			if window <= 0 {
				window = interval
			}
			if err := a.recoverAtStart(cmd.Context(), journalPath(jpath), keep); err != nil {
				return err
			}
			sel := workload.Selector{PIDs: pids, Cgroups: cgroups, All: len(pids) == 0 && len(cgroups) == 0}
			obsv, sampler, err := a.newObserver(sel, window)
			if err != nil {
				return err
			}
			defer a.closeSampler(sampler)
			ctx := cmd.Context()
			var deadline <-chan time.Time
			if forDur > 0 {
				t := time.NewTimer(forDur)
				defer t.Stop()
				deadline = t.C
			}
			a.log.Info("sculpt running", "mode", mode, "interval", interval, "for", forDur)
			if _, err := obsv.Tick(ctx); err != nil {
				if errors.Is(err, workload.ErrNoSuchProcess) || errors.Is(err, workload.ErrNoSuchCgroup) {
					return usageError{err}
				}
				return err
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			enc := json.NewEncoder(a.stdout)
			for {
				select {
				case <-ctx.Done():
					a.log.Info("sculpt stopping", "reason", "signal")
					return nil
				case <-deadline:
					a.log.Info("sculpt stopping", "reason", "--for elapsed")
					return nil
				case <-tick.C:
				}
				obs, err := obsv.Tick(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for _, r := range obs.Reports {
					if r.Err != nil {
						a.log.Warn("collector failed", "collector", r.Name, "err", r.Err)
					}
				}
				if asJSON {
					if err := enc.Encode(toJSON(obs)); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(a.stdout, "--- %s  %d workloads (top %d by CPU)\n", obs.Time.Format(time.TimeOnly), len(obs.DNA), min(top, len(obs.DNA)))
				if err := writeTable(a.stdout, obs.DNA, top); err != nil {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "observe", "observe (DNA only); advise and apply come with the engine")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between sweeps")
	f.DurationVar(&forDur, "for", 0, "stop after this long (0: until interrupted)")
	f.DurationVar(&window, "window", 0, "history each DNA is computed over (default: one interval)")
	f.IntVar(&top, "top", 15, "rows in the live table")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per interval")
	f.IntSliceVar(&pids, "pid", nil, "observe only the process tree rooted at this PID (repeatable)")
	f.StringArrayVar(&cgroups, "cgroup", nil, "observe only this cgroup (repeatable)")
	f.BoolVar(&keep, "keep", false, "adopt changes left in the journal by a sculpt that crashed, instead of undoing them")
	f.StringVar(&jpath, "journal", "", "journal file (default $SCULPT_JOURNAL or "+journal.DefaultPath+")")
	return cmd
}
