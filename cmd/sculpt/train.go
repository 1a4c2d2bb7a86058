package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"sculpt/internal/dna"
	"sculpt/internal/trace"
)

func init() { register(newTrainCmd) }

// loadSeries reads traces (each argument a file or a glob) and returns their
// labelled workloads. Any corrupt, truncated or mismatched trace is an
// error naming it.
func loadSeries(args []string, stderr io.Writer) ([]dna.LabelledSeries, []string, error) {
	var files []string
	for _, a := range args {
		m, err := filepath.Glob(a)
		if err != nil || len(m) == 0 {
			files = append(files, a) // let ReadFile say what is wrong
			continue
		}
		files = append(files, m...)
	}
	var out []dna.LabelledSeries
	for _, f := range files {
		t, err := trace.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		s := dna.SeriesFromTrace(t)
		if len(s) == 0 {
			fmt.Fprintf(stderr, "sculpt: %s has no labelled workload; skipped\n", f)
		}
		out = append(out, s...)
	}
	return out, files, nil
}

func dropLabels(s []dna.LabelledSeries, drop []string) []dna.LabelledSeries {
	if len(drop) == 0 {
		return s
	}
	d := map[string]bool{}
	for _, l := range drop {
		d[l] = true
	}
	var out []dna.LabelledSeries
	for _, x := range s {
		if !d[x.Label] {
			out = append(out, x)
		}
	}
	return out
}

func labelCounts(s []dna.LabelledSeries) string {
	c := map[string]int{}
	for _, x := range s {
		c[x.Label]++
	}
	names := make([]string, 0, len(c))
	for k := range c {
		names = append(names, k)
	}
	sort.Strings(names)
	out := ""
	for i, k := range names {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s×%d", k, c[k])
	}
	return out
}

func addTrainFlags(cmd *cobra.Command, o *dna.TrainOptions) {
	d := dna.DefaultTrainOptions()
	f := cmd.Flags()
	f.IntVar(&o.Epochs, "epochs", d.Epochs, "passes over the training windows")
	f.Uint64Var(&o.Seed, "seed", d.Seed, "random seed (training is deterministic for a seed)")
	f.IntVar(&o.Shape.Hidden, "hidden", d.Shape.Hidden, "GRU units")
	f.IntVar(&o.Shape.Latent, "latent", d.Shape.Latent, "embedding dimensions")
	f.IntVar(&o.Shape.Window, "window", d.Shape.Window, "frames per window")
	f.Float64Var(&o.LR, "lr", d.LR, "Adam learning rate")
	f.IntVar(&o.Prototypes, "prototypes", d.Prototypes, "most catalog clusters per label")
	f.IntVar(&o.PhaseFrames, "phase-frames", d.PhaseFrames, "newest frames the phase-change detector embeds")
	f.StringToStringVar(&o.Kinds, "kind", nil, "LABEL=KIND: the behavioural kind of a label (repeatable; zoo labels and labels that are kinds need none; docs/dna-model.md)")
}

func checkTrainFlags(o *dna.TrainOptions) error {
	if o.Epochs < 1 || o.Epochs > 10000 {
		return usagef("--epochs %d: want 1..10000", o.Epochs)
	}
	if o.Shape.Hidden < 1 || o.Shape.Hidden > 512 || o.Shape.Latent < 1 || o.Shape.Latent > 256 || o.Shape.Window < 1 || o.Shape.Window > 128 {
		return usagef("--hidden %d / --latent %d / --window %d: want 1..512 / 1..256 / 1..128", o.Shape.Hidden, o.Shape.Latent, o.Shape.Window)
	}
	if o.PhaseFrames < 1 || o.PhaseFrames > o.Shape.Window {
		return usagef("--phase-frames %d: want 1..--window (%d)", o.PhaseFrames, o.Shape.Window)
	}
	if o.LR <= 0 || o.LR > 1 {
		return usagef("--lr %v: want 0 < lr <= 1", o.LR)
	}
	return nil
}

func newTrainCmd(a *app) *cobra.Command {
	var (
		in, holdout, exclude []string
		out                  string
		opts                 dna.TrainOptions
	)
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Train the DNA model (sequence autoencoder + archetype catalog) from labelled traces",
		Long: `Train the sequence autoencoder on the labelled workloads of the traces given with
--in (files or globs; see sculpt record), build the archetype catalog (one centroid per
label), calibrate novelty and phase change, and write the model file (docs/dna-model.md).
Every label needs a behavioural kind (idle, cpu-bound-batch, memory-streaming, io-streaming,
small-random-io, network-heavy, ipc-chatty, latency-critical-server): the zoo's labels have
one built in, a label that is a kind is its own, any other is given with --kind LABEL=KIND;
a label without one is refused.
Progress goes to stderr: a bar when stderr is a terminal, else a line per epoch (loss, time). With --holdout, the model is then scored on
those traces (never used in training).`,
		Example: `  sculpt train --in 'testdata/traces/*.trace.gz' --out internal/dna/models/default.model
  sculpt train --in a.trace --in b.trace --out m.model --epochs 30 --seed 7 --holdout c.trace
  sculpt train --in shop.trace --out shop.model --kind checkout=latency-critical-server --kind reindex=io-streaming`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(in) == 0 || out == "" {
				return usagef("train: give --in TRACE... and --out MODEL")
			}
			if err := checkTrainFlags(&opts); err != nil {
				return err
			}
			series, files, err := loadSeries(in, a.stderr)
			if err != nil {
				return usageError{err}
			}
			series = dropLabels(series, exclude)
			if len(series) == 0 {
				return usagef("train: no labelled workload in %d trace(s)", len(files))
			}
			fmt.Fprintf(a.stderr, "sculpt: train: %d trace(s), %d labelled run(s): %s\n", len(files), len(series), labelCounts(series))
			bar := a.newProgress(int64(opts.Epochs), "train: epochs")
			opts.Progress = func(p dna.TrainProgress) {
				if bar.active() {
					bar.set(int64(p.Epoch), fmt.Sprintf("train: loss %.4f", p.Loss))
					return
				}
				fmt.Fprintf(a.stderr, "sculpt: train: epoch %d/%d  loss %.4f  %.1fs\n", p.Epoch, p.Epochs, p.Loss, p.Elapsed.Seconds())
			}
			m, err := dna.Train(series, opts)
			bar.done()
			if err != nil {
				if errors.Is(err, dna.ErrNoKind) {
					return usageError{err}
				}
				return err
			}
			m.Info.Traces = files
			if err := m.WriteFile(out); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "sculpt: train: wrote %s: %d features, %d archetypes %v (%d prototypes), %d windows, %.1fs\n",
				out, len(m.Features), len(m.Catalog.Names()), m.Catalog.Names(), len(m.Catalog.Archetypes), m.Info.Windows, m.Info.Seconds)
			if len(holdout) > 0 {
				test, _, err := loadSeries(holdout, a.stderr)
				if err != nil {
					return usageError{err}
				}
				ev := dna.EvaluateModel(m, test)
				fmt.Fprintf(a.stdout, "holdout: %d run(s), top-1 %.3f on %d windows of known kinds, %.3f of %d windows of unseen kinds flagged novel, %.3f of known windows flagged novel\n",
					ev.Runs, ev.Top1, ev.KnownWindows, ev.UnseenNovel, ev.UnseenWindows, ev.KnownFalseNovel)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&in, "in", nil, "trace file or glob to train on (repeatable)")
	f.StringVar(&out, "out", "", "model file to write")
	f.StringArrayVar(&holdout, "holdout", nil, "trace file or glob to score the model on afterwards (repeatable)")
	f.StringArrayVar(&exclude, "exclude-label", nil, "leave this label out of training (repeatable), e.g. to test novelty")
	addTrainFlags(cmd, &opts)
	return cmd
}

// loadDNAModel returns the model `sculpt dna` and `sculpt run` profile with:
// the file at path, the embedded default when path is "", none for "none".
// A model that cannot be used (missing, corrupt, truncated, made for another
// version) is reported on stderr and nil is returned: the gene classifier
// decides, and the command carries on.
func (a *app) loadDNAModel(path string) *dna.Model {
	if path == "none" {
		return nil
	}
	var (
		m   *dna.Model
		err error
	)
	if path == "" {
		m, err = dna.DefaultModel()
	} else {
		var b []byte
		if b, err = readTrusted(path); err == nil {
			m, err = dna.ParseModel(b, path)
		}
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "sculpt: DNA model unusable, falling back to the gene classifier (%s): %v\n", dna.ClassifierName, err)
		return nil
	}
	return m
}

// modelFlagHelp documents --model for the commands that profile.
const modelFlagHelp = "DNA model file (default: the embedded model; \"none\": the gene classifier only)"
