package dna

import (
	"time"

	"sculpt/internal/telemetry"
)

// modelState is the learned model's view of one workload: its newest
// encoder rows, its phase detector and the verdict of the last sweep.
type modelState struct {
	pres      [][]float64 // projected rows, newest last, at most Window
	det       *PhaseDetector
	z, zp     []float64 // embedding; phase vector
	match     Match
	ok        bool // z and match are from the newest sweep
	phase     bool // a phase change was flagged in the newest sweep
	lastPhase time.Time
}

// step adds one projected row and updates the embedding, the verdict and
// the phase detector: the whole per-workload cost of a sweep after the
// features (timed by BenchDNA).
func (mp *modelProfiler) step(st *modelState, pre []float64, W int) {
	if len(st.pres) == W {
		copy(st.pres, st.pres[1:])
		st.pres[W-1] = pre
	} else {
		st.pres = append(st.pres, pre)
	}
	if st.z == nil {
		st.z = make([]float64, mp.m.Shape.Latent)
		st.zp = make([]float64, mp.m.Shape.Latent)
	}
	mp.emb.EmbedProjected(st.pres, st.z)
	st.match = mp.m.Catalog.Match(st.z)
	st.ok = true
	K := mp.m.Phase.frames(W)
	mp.emb.EmbedProjected(st.pres[len(st.pres)-min(K, len(st.pres)):], st.zp)
	st.phase, _ = st.det.Observe(st.zp)
}

// modelProfiler embeds every workload once per sweep.
type modelProfiler struct {
	m      *Model
	emb    *Embedder
	states map[string]*modelState
}

// SetModel makes Profile fill embedding, archetype, confidence, novelty and
// phase change from the learned model; nil returns to the gene classifier.
// A workload's first sweep (no rates yet) still gets the gene classifier;
// from its second sweep on the model reads the frames it has, padded to a
// full window with all-absent rows as in training (docs/dna-model.md).
func (p *Profiler) SetModel(m *Model) {
	if m == nil {
		p.ml = nil
		return
	}
	p.ml = &modelProfiler{m: m, emb: m.NewEmbedder(), states: map[string]*modelState{}}
}

// Model returns the model in use, or nil.
func (p *Profiler) Model() *Model {
	if p.ml == nil {
		return nil
	}
	return p.ml.m
}

func (mp *modelProfiler) observe(frames []telemetry.Frame) {
	seen := make(map[string]bool, len(frames))
	W := mp.m.Window()
	for i := range frames {
		f := &frames[i]
		seen[f.Workload] = true
		st := mp.states[f.Workload]
		if st == nil {
			st = &modelState{det: NewPhaseDetector(mp.m.Phase)}
			mp.states[f.Workload] = st
		}
		st.ok = false
		if f.Interval <= 0 {
			continue
		}
		mp.step(st, mp.emb.Project(mp.m.Row(f)), W)
		if st.phase {
			st.lastPhase = f.Time
		}
	}
	for id := range mp.states {
		if !seen[id] {
			delete(mp.states, id)
		}
	}
}

// fill overlays the model's verdict on d: the archetype is the nearest
// prototype's kind, KindNovel when novel, KindUnknown when the kind
// confidence is under MinConfidence; resembles is its label. phase_change
// stays true for the profiler's window after the interval it was flagged
// in; fill returns whether it was flagged in the newest one.
func (mp *modelProfiler) fill(d *DNA, now time.Time, window time.Duration) bool {
	st := mp.states[d.ID]
	if st == nil || !st.ok {
		return false
	}
	d.Embedding = append([]float64(nil), st.z...)
	d.Archetype = verdict(st.match)
	d.Resembles = st.match.Archetype
	d.Confidence = st.match.KindConfidence
	nov := st.match.Novelty
	d.Novelty = &nov
	d.Novel = st.match.Novel
	d.PhaseChange = !st.lastPhase.IsZero() && now.Sub(st.lastPhase) <= window
	d.Classifier = ModelClassifierName
	return st.phase
}

// verdict is the archetype a catalog match reports.
func verdict(m Match) string {
	switch {
	case m.Novel:
		return KindNovel
	case m.KindConfidence < MinConfidence:
		return KindUnknown
	}
	return m.Kind
}
