package dna

import (
	"fmt"
	"math"
	"sort"
	"time"

	"sculpt/internal/telemetry"
	"sculpt/internal/trace"
)

// SeriesFromTrace returns the labelled workloads of a trace, each with its
// frames; unlabelled workloads are left out.
func SeriesFromTrace(t *trace.Trace) []LabelledSeries {
	byID := t.Series()
	var out []LabelledSeries
	for _, w := range t.Workloads {
		if w.Label == "" || len(byID[w.ID]) == 0 {
			continue
		}
		out = append(out, LabelledSeries{Label: w.Label, Source: t.File + ":" + w.ID, Frames: byID[w.ID]})
	}
	return out
}

// withInterval keeps the frames that carry rates.
func withInterval(frames []telemetry.Frame) []telemetry.Frame {
	out := make([]telemetry.Frame, 0, len(frames))
	for _, f := range frames {
		if f.Interval > 0 {
			out = append(out, f)
		}
	}
	return out
}

// method turns a series of frames (all with an interval) into one vector per
// frame: the vector of the window ending at that frame.
type method interface {
	vectors(frames []telemetry.Frame, k int) [][]float64
}

// learned embeds windows with the model.
type learned struct{ m *Model }

func (l learned) vectors(frames []telemetry.Frame, W int) [][]float64 {
	emb := l.m.NewEmbedder()
	rows := make([][]float64, len(frames))
	out := make([][]float64, len(frames))
	for i := range frames {
		rows[i] = l.m.Row(&frames[i])
		out[i] = emb.Embed(rows[max(0, i-W+1) : i+1])
	}
	return out
}

// geneBaseline is the comparison: the window's genes (the same features as
// the model, over the same window), transformed and standardised.
type geneBaseline struct {
	features  []string
	W         int
	mean, std []float64
}

func (b *geneBaseline) raw(frames []telemetry.Frame, k int) [][]float64 {
	out := make([][]float64, len(frames))
	for i := range frames {
		g, _ := ComputeGenes(frames[max(0, i-k+1) : i+1])
		v := make([]float64, len(b.features))
		for j, name := range b.features {
			if x, ok := g[name]; ok {
				v[j] = transformFeature(name, x)
			} else {
				v[j] = math.NaN()
			}
		}
		out[i] = v
	}
	return out
}

func (b *geneBaseline) fit(series [][]telemetry.Frame) {
	F := len(b.features)
	sum, sq, n := make([]float64, F), make([]float64, F), make([]float64, F)
	for _, s := range series {
		for _, v := range b.raw(s, b.W) {
			for j, x := range v {
				if !math.IsNaN(x) {
					sum[j] += x
					sq[j] += x * x
					n[j]++
				}
			}
		}
	}
	b.mean, b.std = make([]float64, F), make([]float64, F)
	for j := range b.features {
		if n[j] == 0 {
			b.std[j] = 1
			continue
		}
		b.mean[j] = sum[j] / n[j]
		b.std[j] = math.Max(stdFloor, math.Sqrt(math.Max(0, sq[j]/n[j]-b.mean[j]*b.mean[j])))
	}
}

func (b *geneBaseline) vectors(frames []telemetry.Frame, k int) [][]float64 {
	out := b.raw(frames, k)
	for _, v := range out {
		for j, x := range v {
			if math.IsNaN(x) {
				v[j] = 0 // absent: the training mean
				continue
			}
			v[j] = math.Max(-clipZ, math.Min(clipZ, (x-b.mean[j])/b.std[j]))
		}
	}
	return out
}

// BenchOptions tune BenchDNA.
type BenchOptions struct {
	Train      TrainOptions
	MaxSplices int // pairs of different kinds spliced for the phase test (default 40)
	// Progress, if set, receives one line per stage.
	Progress func(string)
	// Clock times inference; the CLI passes the calling thread's CPU time so
	// that other load on the machine does not count. Default: wall time.
	Clock func() time.Duration
}

// MethodResult is one method's figures on the test recordings.
type MethodResult struct {
	Method string `json:"method"`
	// Top1 is the share of full windows of known kinds whose nearest
	// archetype (learned) or nearest training window (baseline) has the
	// right label; Top1Runs the share of test runs whose majority is right.
	Top1     float64 `json:"top1"`
	Top1Runs float64 `json:"top1_runs"`
	// Top1Kind is the share of those windows whose prediction has the
	// right behavioural kind (the label's kind in the catalog), whatever
	// the program; Top1KindRuns the same by run majority.
	Top1Kind     float64 `json:"top1_kind"`
	Top1KindRuns float64 `json:"top1_kind_runs"`
	// KindConfidence: for thresholds on the catalog's kind confidence,
	// the share of known windows kept (not novel, confidence at or above
	// it) and the kind accuracy among those kept (MinConfidence).
	KindConfidence []ConfidencePoint `json:"kind_confidence"`
	// KindFlips and HeldKindFlips count, per 100 intervals of known test
	// runs, the intervals whose reported archetype differs from the one
	// before: the raw verdict, and after holding it KindHold intervals.
	KindFlips     float64 `json:"kind_flips_per_100"`
	HeldKindFlips float64 `json:"held_kind_flips_per_100"`
	KnownWindows  int     `json:"known_windows"`
	KnownRuns     int     `json:"known_runs"`
	// UnseenNovel is the share of windows of kinds absent from training
	// flagged novel; UnseenRunsNovel the share of such runs with a majority
	// flagged; KnownFalseNovel the share of known-kind windows flagged novel.
	UnseenNovel     float64 `json:"unseen_novel"`
	UnseenRunsNovel float64 `json:"unseen_runs_novel"`
	UnseenWindows   int     `json:"unseen_windows"`
	KnownFalseNovel float64 `json:"known_false_novel"`
	// SameProgramCosine is the mean cosine similarity between the mean
	// vectors of two runs of the same label (centred on the training mean);
	// OtherProgramCosine the same between runs of different labels.
	SameProgramCosine  float64 `json:"same_program_cosine"`
	OtherProgramCosine float64 `json:"other_program_cosine"`
	SamePairs          int     `json:"same_pairs"`
	// Phase: splices of two test runs of different kinds; intervals from
	// the first frame of the second kind until the flag (median, max over
	// detected), the share detected within 10 intervals, and false flags
	// per 1000 steady intervals (the unspliced test runs).
	PhaseSplices      int               `json:"phase_splices"`
	PhaseDetected     float64           `json:"phase_detected"`
	PhaseWithin2      float64           `json:"phase_within_2"`
	PhaseMedian       float64           `json:"phase_median_intervals"`
	PhaseMax          float64           `json:"phase_max_intervals"`
	PhaseFalsePer1000 float64           `json:"phase_false_per_1000"`
	InferenceMicros   float64           `json:"inference_us_per_workload"`
	FeatureMicros     float64           `json:"features_us_per_frame"`
	ConfusedWith      map[string]string `json:"confused_with,omitempty"`
	Phase             PhaseRule         `json:"phase_rule"`
	PhaseMissed       []string          `json:"phase_missed,omitempty"`
}

// ConfidencePoint is the effect of one kind-confidence threshold.
type ConfidencePoint struct {
	Threshold float64 `json:"threshold"`
	Kept      float64 `json:"kept"`
	Accuracy  float64 `json:"kind_accuracy"`
}

// confidenceThresholds are the thresholds BenchDNA reports.
var confidenceThresholds = []float64{0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5}

// BenchResult is `sculpt bench dna`.
type BenchResult struct {
	TrainRuns    int            `json:"train_runs"`
	TestRuns     int            `json:"test_runs"`
	TrainFrames  int            `json:"train_frames"`
	TrainHours   float64        `json:"train_workload_hours"`
	TrainSeconds float64        `json:"train_seconds"`
	KnownLabels  []string       `json:"known_labels"`
	UnseenLabels []string       `json:"unseen_labels"`
	Model        ModelShape     `json:"model"`
	Features     []string       `json:"features"`
	Learned      MethodResult   `json:"learned"`
	Baseline     MethodResult   `json:"baseline"`
	TrainLoss    float64        `json:"train_loss"`
	LabelsPerRun map[string]int `json:"test_runs_per_label"`
}

// BenchDNA trains on train, evaluates on test (recordings never used in
// training) and compares with the gene nearest-neighbour baseline.
func BenchDNA(train, test []LabelledSeries, opts BenchOptions) (*BenchResult, error) {
	say := func(format string, args ...any) {
		if opts.Progress != nil {
			opts.Progress(fmt.Sprintf(format, args...))
		}
	}
	opts.Train.fill()
	if opts.MaxSplices <= 0 {
		opts.MaxSplices = 100
	}
	res := &BenchResult{TrainRuns: len(train), TestRuns: len(test), LabelsPerRun: map[string]int{}}
	known := map[string]bool{}
	var trainFrames [][]telemetry.Frame
	for _, s := range train {
		known[s.Label] = true
		fs := withInterval(s.Frames)
		trainFrames = append(trainFrames, fs)
		res.TrainFrames += len(fs)
		for _, f := range fs {
			res.TrainHours += f.Interval.Hours()
		}
	}
	unseen := map[string]bool{}
	for _, s := range test {
		res.LabelsPerRun[s.Label]++
		if !known[s.Label] {
			unseen[s.Label] = true
		}
	}
	res.KnownLabels, res.UnseenLabels = sortedSet(known), sortedSet(unseen)
	say("training on %d runs (%d frames)", len(train), res.TrainFrames)
	t0 := time.Now()
	m, err := Train(train, opts.Train)
	if err != nil {
		return nil, err
	}
	res.TrainSeconds = time.Since(t0).Seconds()
	res.TrainLoss = m.Info.Loss
	res.Model, res.Features = m.Shape, m.Features
	say("trained in %.1fs (loss %.4f)", res.TrainSeconds, m.Info.Loss)

	testFrames := make([][]telemetry.Frame, len(test))
	for i, s := range test {
		testFrames[i] = withInterval(s.Frames)
	}
	W := m.Window()

	// Learned.
	lm := learned{m}
	res.Learned = evaluate("learned", lm, m.Catalog, m.Phase, nil, train, trainFrames, test, testFrames, known, W, opts.MaxSplices)
	clock := opts.Clock
	if clock == nil {
		start := time.Now()
		clock = func() time.Duration { return time.Since(start) }
	}
	res.Learned.InferenceMicros, res.Learned.FeatureMicros = timeInference(m, testFrames, clock)
	say("learned: top-1 %.3f, unseen flagged %.3f", res.Learned.Top1, res.Learned.UnseenNovel)

	// Baseline: the same windows' genes, 1-NN for the archetype, centroids
	// for novelty, the same phase rule on gene vectors.
	gb := &geneBaseline{features: m.Features, W: W}
	gb.fit(trainFrames)
	var vecs [][]float64
	var labels []string
	var seqs [][][]float64
	rule := PhaseRule{Alpha: m.Phase.Alpha, Hold: m.Phase.Hold, Warmup: m.Phase.Warmup, Frames: m.Phase.Frames}
	for i, fs := range trainFrames {
		for e, v := range gb.vectors(fs, W) {
			if e >= W-1 {
				vecs = append(vecs, v)
				labels = append(labels, train[i].Label)
			}
		}
		seqs = append(seqs, gb.vectors(fs, m.Phase.frames(W)))
	}
	cat, err := BuildArchetypes(vecs, labels, m.Catalog.KindsByLabel(), m.Catalog.NoveltyQuantile, opts.Train.Prototypes)
	if err != nil {
		return nil, err
	}
	rule.Floor = phaseFloor(cat)
	rule.Threshold = calibratePhase(rule, seqs)
	nn := &nearest{vecs: vecs, labels: labels}
	res.Baseline = evaluate("genes-1nn", gb, cat, rule, nn, train, trainFrames, test, testFrames, known, W, opts.MaxSplices)
	res.Baseline.InferenceMicros = timeBaseline(gb, nn, testFrames, clock)
	say("baseline: top-1 %.3f, unseen flagged %.3f", res.Baseline.Top1, res.Baseline.UnseenNovel)
	return res, nil
}

// nearest is 1-nearest-neighbour over training vectors.
type nearest struct {
	vecs   [][]float64
	labels []string
}

func (n *nearest) label(v []float64) string {
	best, bd := "", math.Inf(1)
	for i, u := range n.vecs {
		if d := dist(u, v); d < bd {
			best, bd = n.labels[i], d
		}
	}
	return best
}

func evaluate(name string, meth method, cat ArchetypeCatalog, rule PhaseRule, nn *nearest,
	train []LabelledSeries, trainFrames [][]telemetry.Frame,
	test []LabelledSeries, testFrames [][]telemetry.Frame, known map[string]bool, W, maxSplices int) MethodResult {
	r := MethodResult{Method: name, ConfusedWith: map[string]string{}, Phase: rule}
	kindOf := cat.KindsByLabel()
	keptN := make([]int, len(confidenceThresholds))
	keptRight := make([]int, len(confidenceThresholds))
	var correctKind, runsRightKind, flips, heldFlips, flipN int
	// Training mean, for centring cosines.
	var center []float64
	var nc float64
	for _, fs := range trainFrames {
		for _, v := range meth.vectors(fs, W) {
			if center == nil {
				center = make([]float64, len(v))
			}
			addTo(center, v)
			nc++
		}
	}
	for i := range center {
		center[i] /= nc
	}
	var correct, knownN, unseenN, unseenNovel, knownNovel int
	var runsRight, runsKnown, runsUnseen, runsUnseenNovel int
	means := make([][]float64, len(test))
	testVecs := make([][][]float64, len(test))
	confusion := map[string]map[string]int{}
	var steady, falseFlags int
	for i, fs := range testFrames {
		vs := meth.vectors(fs, W)
		pv := meth.vectors(fs, rule.frames(W))
		testVecs[i] = vs
		label := test[i].Label
		votes, kindVotes := map[string]int{}, map[string]int{}
		var nNovel, nFull int
		hold := &kindHold{}
		prevRaw, prevHeld := "", ""
		mean := make([]float64, len(center))
		det := NewPhaseDetector(rule)
		for e, v := range vs {
			if flag, _ := det.Observe(pv[e]); flag {
				falseFlags++
			}
			if e >= rule.Warmup {
				steady++
			}
			if e < W-1 {
				continue
			}
			nFull++
			addTo(mean, v)
			mt := cat.Match(v)
			pred := mt.Archetype
			if nn != nil {
				pred = nn.label(v)
			}
			votes[pred]++
			kindVotes[kindOf[pred]]++
			if mt.Novel {
				nNovel++
			}
			if known[label] {
				knownN++
				if kindOf[pred] == kindOf[label] {
					correctKind++
				}
				for t, th := range confidenceThresholds {
					if !mt.Novel && mt.KindConfidence >= th {
						keptN[t]++
						if mt.Kind == kindOf[label] {
							keptRight[t]++
						}
					}
				}
				raw := verdict(mt)
				held, _ := hold.settle(raw, mt.KindConfidence, false)
				if prevRaw != "" {
					flipN++
					if raw != prevRaw {
						flips++
					}
					if held != prevHeld {
						heldFlips++
					}
				}
				prevRaw, prevHeld = raw, held
				if pred == label {
					correct++
				} else {
					if confusion[label] == nil {
						confusion[label] = map[string]int{}
					}
					confusion[label][pred]++
				}
				if mt.Novel {
					knownNovel++
				}
			} else {
				unseenN++
				if mt.Novel {
					unseenNovel++
				}
			}
		}
		if nFull == 0 {
			continue
		}
		for j := range mean {
			mean[j] = mean[j]/float64(nFull) - center[j]
		}
		means[i] = mean
		if known[label] {
			runsKnown++
			if majority(votes) == label {
				runsRight++
			}
			if majority(kindVotes) == kindOf[label] {
				runsRightKind++
			}
		} else {
			runsUnseen++
			if 2*nNovel > nFull {
				runsUnseenNovel++
			}
		}
	}
	r.KnownWindows, r.KnownRuns, r.UnseenWindows = knownN, runsKnown, unseenN
	r.Top1 = frac(correct, knownN)
	r.Top1Runs = frac(runsRight, runsKnown)
	r.Top1Kind = frac(correctKind, knownN)
	r.Top1KindRuns = frac(runsRightKind, runsKnown)
	for t, th := range confidenceThresholds {
		r.KindConfidence = append(r.KindConfidence, ConfidencePoint{Threshold: th, Kept: frac(keptN[t], knownN), Accuracy: frac(keptRight[t], keptN[t])})
	}
	r.KindFlips = 100 * frac(flips, flipN)
	r.HeldKindFlips = 100 * frac(heldFlips, flipN)
	r.UnseenNovel = frac(unseenNovel, unseenN)
	r.UnseenRunsNovel = frac(runsUnseenNovel, runsUnseen)
	r.KnownFalseNovel = frac(knownNovel, knownN)
	for label, c := range confusion {
		r.ConfusedWith[label] = majority(c)
	}
	// Same program across runs: pairs of test runs, and test vs train runs,
	// of the same label from different recordings.
	trainMeans := make([][]float64, len(train))
	for i, fs := range trainFrames {
		vs := meth.vectors(fs, W)
		if len(vs) < W {
			continue
		}
		mean := make([]float64, len(center))
		for _, v := range vs[W-1:] {
			addTo(mean, v)
		}
		for j := range mean {
			mean[j] = mean[j]/float64(len(vs)-W+1) - center[j]
		}
		trainMeans[i] = mean
	}
	var same, other float64
	var nSame, nOther int
	for i := range test {
		if means[i] == nil {
			continue
		}
		for j := range train {
			if trainMeans[j] == nil {
				continue
			}
			c := Cosine(means[i], trainMeans[j])
			if test[i].Label == train[j].Label {
				same += c
				nSame++
			} else {
				other += c
				nOther++
			}
		}
	}
	r.SameProgramCosine = safeDiv(same, float64(nSame))
	r.OtherProgramCosine = safeDiv(other, float64(nOther))
	r.SamePairs = nSame
	// Phase change: splice the end of one test run onto the start of a run
	// of another label, for every ordered pair of labels (the first run of
	// each), up to maxSplices.
	var detected, within2 int
	var delays []float64
	first := map[string]int{}
	var labelsOrder []string
	for i := range test {
		if _, ok := first[test[i].Label]; !ok && len(testFrames[i]) >= 2*W {
			first[test[i].Label] = i
			labelsOrder = append(labelsOrder, test[i].Label)
		}
	}
	for _, la := range labelsOrder {
		for _, lb := range labelsOrder {
			if la == lb || r.PhaseSplices >= maxSplices {
				continue
			}
			a, b := first[la], first[lb]
			// Short series, so the splice count stays affordable.
			fa := testFrames[a][max(0, len(testFrames[a])-4*W):]
			fb := testFrames[b][:min(len(testFrames[b]), 4*W)]
			fs := append(append([]telemetry.Frame(nil), fa...), fb...)
			vs := meth.vectors(fs, rule.frames(W))
			det := NewPhaseDetector(rule)
			r.PhaseSplices++
			hit := false
			for e, v := range vs {
				flag, _ := det.Observe(v)
				if flag && e >= len(fa) {
					d := float64(e - len(fa) + 1)
					delays = append(delays, d)
					detected++
					if d <= 2 {
						within2++
					}
					hit = true
					break
				}
			}
			if !hit {
				r.PhaseMissed = append(r.PhaseMissed, la+"->"+lb)
			}
		}
	}
	r.PhaseDetected = frac(detected, r.PhaseSplices)
	r.PhaseWithin2 = frac(within2, r.PhaseSplices)
	if len(delays) > 0 {
		r.PhaseMedian = quantile(delays, 0.5)
		r.PhaseMax = quantile(delays, 1)
	}
	r.PhaseFalsePer1000 = 1000 * safeDiv(float64(falseFlags), float64(steady))
	return r
}

// timeInference measures, per workload and sweep, the feature extraction
// of the new frame and the model's work after it (projection, the window's
// embedding, the archetype match, the phase vector and detector), on the
// profiler's own path.
func timeInference(m *Model, test [][]telemetry.Frame, clock func() time.Duration) (embedUS, featUS float64) {
	var frames []telemetry.Frame
	for _, fs := range test {
		frames = append(frames, fs...)
		if len(frames) > 2000 {
			break
		}
	}
	if len(frames) == 0 {
		return 0, 0
	}
	t0 := clock()
	rows := make([][]float64, len(frames))
	for i := range frames {
		rows[i] = m.Row(&frames[i])
	}
	featUS = float64((clock() - t0).Nanoseconds()) / 1e3 / float64(len(frames))
	mp := &modelProfiler{m: m, emb: m.NewEmbedder()}
	st := &modelState{det: NewPhaseDetector(m.Phase)}
	W := m.Window()
	n := 0
	t0 = clock()
	for rep := 0; rep < 3; rep++ {
		for _, row := range rows {
			mp.step(st, mp.emb.Project(row), W)
			n++
		}
	}
	embedUS = float64((clock() - t0).Nanoseconds()) / 1e3 / float64(n)
	return embedUS, featUS
}

func timeBaseline(b *geneBaseline, nn *nearest, test [][]telemetry.Frame, clock func() time.Duration) float64 {
	n := 0
	t0 := clock()
	for _, fs := range test {
		if len(fs) > 300 {
			fs = fs[:300]
		}
		for _, v := range b.vectors(fs, b.W) {
			nn.label(v)
			n++
		}
		if n >= 300 {
			break
		}
	}
	return safeDiv(float64((clock()-t0).Nanoseconds())/1e3, float64(n))
}

func majority(votes map[string]int) string {
	best, bn := "", -1
	for k, v := range votes {
		if v > bn || (v == bn && k < best) {
			best, bn = k, v
		}
	}
	return best
}

// Cosine is the cosine similarity of two embeddings (0 when either is
// zero): how alike two workloads' DNA is, whatever its scale.
func Cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

func frac(a, b int) float64 { return safeDiv(float64(a), float64(b)) }

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Evaluation is a model's score on held-out runs.
type Evaluation struct {
	Runs            int
	Top1            float64 // share of full windows of known kinds matched to their label
	KnownWindows    int
	UnseenNovel     float64 // share of full windows of unknown kinds flagged novel
	UnseenWindows   int
	KnownFalseNovel float64 // share of full windows of known kinds flagged novel
}

// EvaluateModel scores a trained model on labelled runs: a label in its
// catalog is a known kind, any other an unseen one.
func EvaluateModel(m *Model, test []LabelledSeries) Evaluation {
	known := map[string]bool{}
	for _, n := range m.Catalog.Names() {
		known[n] = true
	}
	ev := Evaluation{Runs: len(test)}
	var right, kNovel, uNovel int
	lm := learned{m}
	for _, s := range test {
		vs := lm.vectors(withInterval(s.Frames), m.Window())
		for e := m.Window() - 1; e < len(vs); e++ {
			mt := m.Catalog.Match(vs[e])
			if known[s.Label] {
				ev.KnownWindows++
				if mt.Archetype == s.Label {
					right++
				}
				if mt.Novel {
					kNovel++
				}
			} else {
				ev.UnseenWindows++
				if mt.Novel {
					uNovel++
				}
			}
		}
	}
	ev.Top1 = frac(right, ev.KnownWindows)
	ev.KnownFalseNovel = frac(kNovel, ev.KnownWindows)
	ev.UnseenNovel = frac(uNovel, ev.UnseenWindows)
	return ev
}
