package dna

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"sculpt/internal/telemetry"
)

// LabelledSeries is one workload's frames from one recording, oldest first.
type LabelledSeries struct {
	Label  string
	Source string // e.g. "file.trace:workload-id", for messages
	Frames []telemetry.Frame
}

// TrainOptions tune Train. The zero value of a field takes the default.
type TrainOptions struct {
	Shape   ModelShape
	Epochs  int
	Seed    uint64
	LR      float64
	Batch   int
	Workers int // gradient workers; the result depends on it, so it is fixed (2), not the CPU count
	// PhaseFrames is how many newest frames the phase detector embeds
	// (PhaseRule.Frames).
	PhaseFrames int
	// Prototypes is the most clusters per label in the catalog.
	Prototypes int
	// Kinds gives the behavioural kind of labels (LABEL -> KIND) beyond
	// the built-in ZooKinds and labels that are kinds themselves; a label
	// without one is refused (ResolveKinds).
	Kinds map[string]string
	// Progress, if set, is called after every epoch.
	Progress func(TrainProgress)
}

// TrainProgress reports one finished epoch.
type TrainProgress struct {
	Epoch, Epochs int
	Loss          float64 // mean masked squared error over the epoch's windows
	Elapsed       time.Duration
}

// DefaultTrainOptions are the defaults of `sculpt train`.
func DefaultTrainOptions() TrainOptions {
	return TrainOptions{
		Shape:  ModelShape{Hidden: 12, Latent: 16, Dec: 32, Window: 6},
		Epochs: 30, Seed: 1, LR: 3e-3, Batch: 32, Workers: 2, PhaseFrames: 1, Prototypes: 4,
	}
}

func (o *TrainOptions) fill() {
	d := DefaultTrainOptions()
	if o.Shape.Hidden <= 0 {
		o.Shape.Hidden = d.Shape.Hidden
	}
	if o.Shape.Latent <= 0 {
		o.Shape.Latent = d.Shape.Latent
	}
	if o.Shape.Dec <= 0 {
		o.Shape.Dec = d.Shape.Dec
	}
	if o.Shape.Window <= 0 {
		o.Shape.Window = d.Shape.Window
	}
	if o.Epochs <= 0 {
		o.Epochs = d.Epochs
	}
	if o.LR <= 0 {
		o.LR = d.LR
	}
	if o.Batch <= 0 {
		o.Batch = d.Batch
	}
	if o.Workers <= 0 {
		o.Workers = d.Workers
	}
	if o.Prototypes <= 0 {
		o.Prototypes = d.Prototypes
	}
	if o.PhaseFrames <= 0 {
		o.PhaseFrames = d.PhaseFrames
	}
}

// minPresence is the share of training frames in which a feature must be
// present for the model to read it; rarer ones (e.g. hardware counters on a
// VM) are left out, so a machine that has them does not feed the encoder
// inputs it never learned.
const minPresence = 0.01

// stdFloor bounds a feature's deviation (in transformed units) from below.
const stdFloor = 0.1

// FrameGenes returns the genes of each frame on its own (nil for a frame
// without an interval).
func FrameGenes(frames []telemetry.Frame) []Genes {
	out := make([]Genes, len(frames))
	for i := range frames {
		if frames[i].Interval > 0 {
			out[i], _ = ComputeGenes(frames[i : i+1])
		}
	}
	return out
}

// Train fits the sequence autoencoder to the labelled series, then builds
// the archetype catalog (one centroid per label) and calibrates novelty and
// phase change on the same data. It is deterministic for a given Seed,
// input and option set.
func Train(series []LabelledSeries, opts TrainOptions) (*Model, error) {
	opts.fill()
	start := time.Now()
	if len(series) == 0 {
		return nil, errors.New("train: no labelled series")
	}
	seriesLabels := make([]string, len(series))
	for i, s := range series {
		if s.Label == "" {
			return nil, fmt.Errorf("train: series %s has no label", s.Source)
		}
		seriesLabels[i] = s.Label
	}
	kinds, err := ResolveKinds(seriesLabels, opts.Kinds)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	genes := make([][]Genes, len(series))
	counts := map[string]int{}
	total := 0
	for i, s := range series {
		genes[i] = FrameGenes(s.Frames)
		for _, g := range genes[i] {
			if g == nil {
				continue
			}
			total++
			for name := range g {
				counts[name]++
			}
		}
	}
	if total < opts.Shape.Window {
		return nil, fmt.Errorf("train: %d frames with an interval, need at least %d", total, opts.Shape.Window)
	}
	m := &Model{Shape: opts.Shape}
	for _, name := range ModelFeatures {
		if float64(counts[name]) >= minPresence*float64(total) {
			m.Features = append(m.Features, name)
		}
	}
	if len(m.Features) == 0 {
		return nil, errors.New("train: no feature is present in the training frames")
	}
	// Normalisation over present values.
	F := len(m.Features)
	sum, sq, n := make([]float64, F), make([]float64, F), make([]float64, F)
	for _, gs := range genes {
		for _, g := range gs {
			for j, name := range m.Features {
				if v, ok := g[name]; ok {
					x := transformFeature(name, v)
					sum[j] += x
					sq[j] += x * x
					n[j]++
				}
			}
		}
	}
	m.Mean, m.Std = make([]float64, F), make([]float64, F)
	for j := range m.Features {
		mean := sum[j] / n[j]
		m.Mean[j] = mean
		m.Std[j] = math.Max(stdFloor, math.Sqrt(math.Max(0, sq[j]/n[j]-mean*mean)))
	}
	if err := m.init(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	// Rows and windows.
	rows := make([][][]float64, len(series))
	type win struct{ s, end int }
	var wins []win
	for i, gs := range genes {
		for _, g := range gs {
			if g != nil {
				rows[i] = append(rows[i], m.RowFromGenes(g))
			}
		}
		for e := range rows[i] {
			wins = append(wins, win{i, e})
		}
	}
	W := opts.Shape.Window
	window := func(w win, dst [][]float64) {
		for k := 0; k < W; k++ {
			idx := w.end - (W - 1) + k
			if idx < 0 {
				dst[k] = nil
			} else {
				dst[k] = rows[w.s][idx]
			}
		}
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x5eed5eed))
	m.params = make([]float64, m.l.n)
	m.l.initParams(m.params, rng)
	opt := newAdam(m.l.n, opts.LR)
	workers := make([]*trainer, opts.Workers)
	grads := make([][]float64, opts.Workers)
	bufs := make([][][]float64, opts.Workers)
	losses := make([]float64, opts.Workers)
	for k := range workers {
		workers[k] = newTrainer(m.l)
		grads[k] = make([]float64, m.l.n)
		bufs[k] = make([][]float64, W)
	}
	order := make([]int, len(wins))
	for i := range order {
		order[i] = i
	}
	g := make([]float64, m.l.n)
	var epochLoss float64
	for ep := 1; ep <= opts.Epochs; ep++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		epochLoss = 0
		for b := 0; b < len(order); b += opts.Batch {
			batch := order[b:min(b+opts.Batch, len(order))]
			var wg sync.WaitGroup
			for k := range workers {
				wg.Add(1)
				go func(k int) {
					defer wg.Done()
					clear(grads[k])
					losses[k] = 0
					for i := k; i < len(batch); i += len(workers) {
						window(wins[batch[i]], bufs[k])
						losses[k] += workers[k].lossGrad(m.params, bufs[k], grads[k])
					}
				}(k)
			}
			wg.Wait()
			clear(g)
			for k := range workers {
				addTo(g, grads[k])
				epochLoss += losses[k]
			}
			scale := 1 / float64(len(batch))
			var norm float64
			for i := range g {
				g[i] *= scale
				norm += g[i] * g[i]
			}
			if norm = math.Sqrt(norm); norm > 5 { // clip exploding gradients
				for i := range g {
					g[i] *= 5 / norm
				}
			}
			opt.step(m.params, g)
		}
		epochLoss /= float64(len(wins))
		if opts.Progress != nil {
			opts.Progress(TrainProgress{Epoch: ep, Epochs: opts.Epochs, Loss: epochLoss, Elapsed: time.Since(start)})
		}
	}
	// Catalog from full windows; phase calibration from every window in order.
	emb := m.NewEmbedder()
	var vecs [][]float64
	var labels []string
	var seqs [][][]float64
	m.Phase = PhaseRule{Alpha: 0.3, Hold: 2, Warmup: W, Frames: opts.PhaseFrames}
	K := m.Phase.frames(W)
	buf := make([][]float64, W)
	for i := range series {
		var seq [][]float64
		for e := range rows[i] {
			window(win{i, e}, buf)
			z := emb.Embed(buf)
			if e >= W-1 {
				vecs = append(vecs, z)
				labels = append(labels, series[i].Label)
			}
			seq = append(seq, emb.Embed(buf[W-K:]))
		}
		seqs = append(seqs, seq)
	}
	if len(vecs) == 0 {
		return nil, fmt.Errorf("train: no series has %d frames with an interval (a full window)", W)
	}
	cat, err := BuildArchetypes(vecs, labels, kinds, 0.99, opts.Prototypes)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	m.Catalog = cat
	m.Phase.Floor = phaseFloor(cat)
	m.Phase.Threshold = calibratePhase(m.Phase, seqs)
	m.Info = TrainInfo{Seed: opts.Seed, Epochs: opts.Epochs, Windows: len(wins), Loss: epochLoss,
		Seconds: time.Since(start).Seconds(), TrainedAt: time.Now().UTC().Truncate(time.Second)}
	return m, nil
}

// phaseQuantile places the phase threshold: the detector's score on the
// steady training series (each holds one kind) stays under it this share of
// the time. Two consecutive intervals above it are needed to flag.
var phaseQuantile = 0.99

// calibratePhase returns the phaseQuantile of the detector's scores over
// the training series (scored with the mean always following, as if nothing
// were ever flagged).
func calibratePhase(r PhaseRule, seqs [][][]float64) float64 {
	var scores []float64
	for _, s := range seqs {
		scores = append(scores, phaseScores(r, s)...)
	}
	if len(scores) == 0 {
		return math.Inf(1)
	}
	return quantile(scores, phaseQuantile)
}

// phaseFloor is the least distance that can count as a shift: a quarter of
// the median archetype spread.
func phaseFloor(c ArchetypeCatalog) float64 {
	sp := make([]float64, len(c.Archetypes))
	for i, a := range c.Archetypes {
		sp[i] = a.Spread
	}
	return quantile(sp, 0.5) / 4
}
