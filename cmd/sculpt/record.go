package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/trace"
	"sculpt/internal/workload"
)

func init() { register(newRecordCmd) }

// labelRules maps workloads to labels from --label arguments.
type labelRules struct {
	all      string         // --label NAME
	byPID    map[int]string // --label PID=NAME
	byCgroup map[string]string
	used     map[string]bool // keys that matched a workload
}

var labelName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:+-]*$`)

func parseLabels(args []string) (*labelRules, error) {
	r := &labelRules{byPID: map[int]string{}, byCgroup: map[string]string{}, used: map[string]bool{}}
	for _, a := range args {
		key, name, keyed := strings.Cut(a, "=")
		if !keyed {
			name = a
		}
		if !labelName.MatchString(name) {
			return nil, usagef("--label %s: a label is letters, digits and ._:+- (e.g. memcached, pgbench-ro)", flagValue(a))
		}
		switch {
		case !keyed:
			if r.all != "" && r.all != name {
				return nil, usagef("--label %s: a label for every workload is already given (%q); use PID=NAME or /cgroup=NAME for more", flagValue(a), r.all)
			}
			r.all = name
		case strings.HasPrefix(key, "/"):
			r.byCgroup[key] = name
		default:
			pid, err := strconv.Atoi(key)
			if err != nil || pid <= 0 {
				return nil, usagef("--label %s: before '=' give a PID or a cgroup path starting with /", flagValue(a))
			}
			r.byPID[pid] = name
		}
	}
	return r, nil
}

// label returns the label of a workload: a PID or cgroup rule that matches
// it, else the label for every workload, else "".
func (r *labelRules) label(w *workload.Workload) string {
	for _, p := range w.Procs {
		if l, ok := r.byPID[p.PID]; ok {
			r.used[strconv.Itoa(p.PID)] = true
			return l
		}
	}
	paths := []string{w.Cgroups.V2}
	for _, p := range w.Cgroups.V1 {
		paths = append(paths, p)
	}
	for key, l := range r.byCgroup {
		for _, p := range paths {
			if p != "" && (p == key || strings.HasPrefix(p, strings.TrimSuffix(key, "/")+"/")) {
				r.used[key] = true
				return l
			}
		}
	}
	return r.all
}

func (r *labelRules) unused() []string {
	var out []string
	for pid := range r.byPID {
		if !r.used[strconv.Itoa(pid)] {
			out = append(out, strconv.Itoa(pid))
		}
	}
	for key := range r.byCgroup {
		if !r.used[key] {
			out = append(out, key)
		}
	}
	return out
}

func newRecordCmd(a *app) *cobra.Command {
	var (
		out      string
		dur      time.Duration
		interval time.Duration
		pids     []int
		without  []string
		cgroups  []string
		all      bool
		labels   []string
	)
	cmd := &cobra.Command{
		Use:   "record",
		Short: "Record workloads' telemetry frames to a trace file for training",
		Long: `Sample the selected workloads (all of them by default) every --interval and write
their raw telemetry frames to a trace (docs/trace-format.md). A name ending in .gz
is gzip-compressed. Labels name the kind of program, for training archetypes:
  --label NAME         every recorded workload gets NAME
  --label PID=NAME     the workload holding PID gets NAME (repeatable)
  --label /CG=NAME     workloads in cgroup /CG (or below) get NAME
A PID or cgroup rule wins over the label for every workload. Recording stops after
--for, on Ctrl-C/SIGTERM, or when every selected process has exited; the trace is
written to a temporary file and renamed into place when it is complete. Progress
goes to stderr: a bar when stderr is a terminal, else a line every 10 s.`,
		Example: `  sculpt record --out memcached.trace.gz --pid 4242 --label memcached --for 10m
  sculpt record --out mix.trace --pid 100 --pid 200 --label 100=fio-randread --label 200=idle`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("--out: name the trace file to write")
			}
			if interval <= 0 {
				return usagef("--interval must be a positive duration, got %v", interval)
			}
			if dur < 0 {
				return usagef("--for must not be negative, got %v", dur)
			}
			for _, p := range pids {
				if p <= 0 {
					return usagef("--pid %d: a process ID is a positive number", p)
				}
			}
			rules, err := parseLabels(labels)
			if err != nil {
				return err
			}
			sel := workload.Selector{PIDs: pids, Cgroups: cgroups, All: all}
			tel, err := telemetryOptions(without)
			if err != nil {
				return err
			}
			obsv, sampler, err := a.newObserver(sel, 2*interval, tel)
			if err != nil {
				return err
			}
			defer a.closeObserver(sampler)
			ctx := cmd.Context()
			obs, err := obsv.Tick(ctx)
			if err != nil {
				return selectionError(err)
			}
			host := trace.Host{CPUs: runtime.NumCPU(), Sculpt: version}
			host.Hostname, _ = os.Hostname()
			if b, err := os.ReadFile(a.roots.ProcPath("sys/kernel/osrelease")); err == nil {
				host.Kernel = strings.TrimSpace(string(b))
			}
			tf, err := trace.Create(out, trace.Header{
				Interval: interval, Start: obs.Time, Host: host, Labels: labels,
				Command: strings.Join(os.Args, " "),
			})
			if err != nil {
				return err
			}
			defer tf.Abort() // no-op after a successful Close
			write := func() error {
				for i := range obs.Workloads {
					w := &obs.Workloads[i]
					if !tf.Defined(w.ID) {
						if err := tf.Define(trace.WorkloadInfo{ID: w.ID, Name: w.Name, Kind: string(w.Kind), Label: rules.label(w), PIDs: w.PIDs()}); err != nil {
							return err
						}
					}
				}
				frames := obsv.Frames()
				var iv time.Duration
				if len(frames) > 0 {
					iv = frames[0].Interval
				}
				if err := tf.WriteTick(obs.Time, iv, frames); err != nil {
					return err
				}
				return tf.Flush()
			}
			if err := write(); err != nil {
				return err
			}
			forTxt := "until interrupted"
			if dur > 0 {
				forTxt = "for " + dur.String()
			}
			fmt.Fprintf(a.stderr, "sculpt: record: %d workload(s) every %v %s to %s\n", len(obs.Workloads), interval, forTxt, out)
			start := time.Now()
			lastReport := start
			tick := time.NewTicker(interval)
			defer tick.Stop()
			stopped := ""
			// A bar over --for in seconds, or a spinner counting ticks without it.
			barMax := int64(-1)
			if dur > 0 {
				barMax = int64(dur.Round(time.Second) / time.Second)
			}
			bar := a.newProgress(barMax, "record")
			defer bar.done()
		loop:
			for dur == 0 || time.Since(start) < dur {
				select {
				case <-ctx.Done():
					stopped = "interrupted"
					break loop
				case <-tick.C:
				}
				obs, err = obsv.Tick(ctx)
				if err != nil {
					if ctx.Err() != nil {
						stopped = "interrupted"
						break
					}
					if errors.Is(err, workload.ErrNoSuchProcess) {
						stopped = "every selected process exited"
						break
					}
					return err
				}
				for _, pid := range obs.Exited {
					fmt.Fprintf(a.stderr, "sculpt: record: pid %d exited\n", pid)
				}
				if err := write(); err != nil {
					return err
				}
				if bar.active() {
					desc := fmt.Sprintf("record: %d frames", tf.Frames())
					if dur > 0 {
						bar.set(int64(time.Since(start)/time.Second), desc)
					} else {
						bar.set(int64(tf.Ticks()), desc)
					}
				} else if time.Since(lastReport) >= 10*time.Second {
					lastReport = time.Now()
					fmt.Fprintf(a.stderr, "sculpt: record: %v, %d ticks, %d frames, %d workload(s)\n",
						time.Since(start).Round(time.Second), tf.Ticks(), tf.Frames(), len(obs.Workloads))
				}
			}
			bar.done()
			if err := tf.Close(); err != nil {
				return err
			}
			for _, k := range rules.unused() {
				fmt.Fprintf(a.stderr, "sculpt: record: warning: --label %s=... matched no recorded workload\n", k)
			}
			size := int64(0)
			if st, err := os.Stat(out); err == nil {
				size = st.Size()
			}
			msg := fmt.Sprintf("sculpt: record: wrote %s: %d ticks, %d frames, %d bytes", out, tf.Ticks(), tf.Frames(), size)
			if stopped != "" {
				msg += " (" + stopped + ")"
			}
			fmt.Fprintln(a.stderr, msg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "trace file to write (.gz: compressed)")
	f.DurationVar(&dur, "for", 0, "stop after this long (0: until interrupted or every selected process exits)")
	f.DurationVar(&interval, "interval", time.Second, "sampling interval")
	f.IntSliceVar(&pids, "pid", nil, "record the process tree rooted at this PID (repeatable)")
	f.StringArrayVar(&cgroups, "cgroup", nil, "record the processes in this cgroup path (repeatable)")
	f.BoolVar(&all, "all", false, "record every workload (the default when nothing is selected)")
	f.StringArrayVar(&labels, "label", nil, "label: NAME for all, or PID=NAME, or /cgroup=NAME (repeatable)")
	withoutFlag(f, &without)
	return cmd
}
