package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"sculpt/internal/dna"
)

func init() { benchSubcommands = append(benchSubcommands, newBenchDNACmd) }

func newBenchDNACmd(a *app) *cobra.Command {
	var (
		trainIn, testIn []string
		asJSON          bool
		opts            dna.TrainOptions
		splices         int
	)
	cmd := &cobra.Command{
		Use:   "dna",
		Short: "Learned DNA vs genes alone on held-out recordings (accuracy, novelty, phase change, speed)",
		Long: `Train the DNA model on --train traces and score it on --test traces (recordings
never used in training): top-1 archetype accuracy on known kinds, the similarity of the
same program across runs, the share of unseen kinds (test labels absent from training)
flagged novel, intervals until a phase change is flagged (two test runs of different
kinds spliced), inference time per workload and training time. The baseline is nearest
neighbour on the same windows' normalised genes, on the same splits. Progress goes to stderr.`,
		Example: `  sculpt bench dna --train 'testdata/traces/*-1.trace.gz' --test 'testdata/traces/*-2.trace.gz'`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(trainIn) == 0 || len(testIn) == 0 {
				return usagef("bench dna: give --train TRACE... and --test TRACE...")
			}
			if err := checkTrainFlags(&opts); err != nil {
				return err
			}
			train, _, err := loadSeries(trainIn, a.stderr)
			if err != nil {
				return usageError{err}
			}
			test, _, err := loadSeries(testIn, a.stderr)
			if err != nil {
				return usageError{err}
			}
			if len(train) == 0 || len(test) == 0 {
				return usagef("bench dna: %d labelled training run(s), %d test run(s): need both", len(train), len(test))
			}
			opts.Progress = func(p dna.TrainProgress) {
				if p.Epoch == p.Epochs || p.Epoch%5 == 0 {
					fmt.Fprintf(a.stderr, "sculpt: bench dna: epoch %d/%d loss %.4f %.1fs\n", p.Epoch, p.Epochs, p.Loss, p.Elapsed.Seconds())
				}
			}
			// Time inference in this thread's CPU time, so the machine's other
			// load does not count.
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			res, err := dna.BenchDNA(train, test, dna.BenchOptions{Train: opts, MaxSplices: splices,
				Progress: func(s string) { fmt.Fprintf(a.stderr, "sculpt: bench dna: %s\n", s) },
				Clock:    threadCPUTime})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, struct {
					*dna.BenchResult
					CPUs      int    `json:"cpus"`
					GoVersion string `json:"go_version"`
				}{res, runtime.NumCPU(), runtime.Version()})
			}
			return writeBenchDNA(a.stdout, res)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&trainIn, "train", nil, "trace file or glob to train on (repeatable)")
	f.StringArrayVar(&testIn, "test", nil, "held-out trace file or glob to score on (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.IntVar(&splices, "splices", 100, "pairs of test runs spliced for the phase-change test")
	addTrainFlags(cmd, &opts)
	return cmd
}

// threadCPUTime is the calling thread's user+system CPU time
// (getrusage(RUSAGE_THREAD)); the caller locks itself to its thread.
func threadCPUTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func writeBenchDNA(w io.Writer, r *dna.BenchResult) error {
	fmt.Fprintf(w, "train: %d runs, %d frames (%.2f workload-hours), trained in %.1fs (loss %.4f); test: %d runs\n",
		r.TrainRuns, r.TrainFrames, r.TrainHours, r.TrainSeconds, r.TrainLoss, r.TestRuns)
	fmt.Fprintf(w, "known kinds: %s\nunseen kinds: %s\nmodel: GRU %d, latent %d, window %d, %d features\n\n",
		strings.Join(r.KnownLabels, ", "), orNone(r.UnseenLabels), r.Model.Hidden, r.Model.Latent, r.Model.Window, len(r.Features))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tlearned\tgenes-1nn\ttarget\t")
	row := func(name, f string, l, b float64, target string) {
		fmt.Fprintf(tw, "%s\t"+f+"\t"+f+"\t%s\t\n", name, l, b, target)
	}
	L, B := r.Learned, r.Baseline
	row("top-1 (windows of known kinds)", "%.3f", L.Top1, B.Top1, ">= 0.95")
	row("top-1 (runs, majority)", "%.3f", L.Top1Runs, B.Top1Runs, "")
	row("top-1 kind (windows of known kinds)", "%.3f", L.Top1Kind, B.Top1Kind, "")
	row("top-1 kind (runs, majority)", "%.3f", L.Top1KindRuns, B.Top1KindRuns, "")
	row("kind changes / 100 intervals (raw)", "%.1f", L.KindFlips, B.KindFlips, "")
	row(fmt.Sprintf("kind changes / 100 intervals (held %d)", dna.KindHold), "%.1f", L.HeldKindFlips, B.HeldKindFlips, "low")
	row("same program across runs (cosine)", "%.3f", L.SameProgramCosine, B.SameProgramCosine, "high")
	row("different programs (cosine)", "%.3f", L.OtherProgramCosine, B.OtherProgramCosine, "low")
	row("unseen kinds flagged novel (windows)", "%.3f", L.UnseenNovel, B.UnseenNovel, ">= 0.80")
	row("unseen kinds flagged novel (runs)", "%.3f", L.UnseenRunsNovel, B.UnseenRunsNovel, "")
	row("known kinds flagged novel (windows)", "%.3f", L.KnownFalseNovel, B.KnownFalseNovel, "low")
	row("phase change detected", "%.3f", L.PhaseDetected, B.PhaseDetected, "")
	row("phase change within 2 intervals", "%.3f", L.PhaseWithin2, B.PhaseWithin2, "")
	row("phase change median intervals", "%.0f", L.PhaseMedian, B.PhaseMedian, "<= 2")
	row("phase false flags / 1000 intervals", "%.1f", L.PhaseFalsePer1000, B.PhaseFalsePer1000, "low")
	row("inference µs / workload (CPU)", "%.1f", L.InferenceMicros, B.InferenceMicros, "< 20")
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nlearned inference: the model's work per workload per sweep; + %.1f µs of per-frame features (both CPU time)\n", L.FeatureMicros)
	fmt.Fprintf(w, "learned kind confidence (threshold: share of known windows kept, kind accuracy of those; in use: %.2f):", dna.MinConfidence)
	for _, p := range L.KindConfidence {
		fmt.Fprintf(w, " %.2f: %.3f %.3f;", p.Threshold, p.Kept, p.Accuracy)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "phase: %d splices of two test runs of different kinds; baseline: nearest neighbour on the same windows' normalised genes\n", L.PhaseSplices)
	for _, m := range []dna.MethodResult{L, B} {
		if len(m.ConfusedWith) > 0 {
			fmt.Fprintf(w, "%s mostly confuses:", m.Method)
			for k, v := range m.ConfusedWith {
				fmt.Fprintf(w, " %s->%s", k, v)
			}
			fmt.Fprintln(w)
		}
	}
	return nil
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
