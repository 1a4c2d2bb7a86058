package dna

import "math"

// PhaseRule decides when a workload's DNA has shifted and stayed shifted.
//
// The detector keeps, per workload, an exponential running mean of its
// recent vectors (embeddings, or normalised genes for the baseline) and an
// exponential running mean of their squared distance from it: its own
// wobble. A vector is "away" when its distance from the running mean is
// more than Threshold times that wobble's root mean square, the wobble
// floored at Floor (so a perfectly steady idle process is not flagged for a
// speck).
// Hold consecutive away intervals flag a phase change on the last of them;
// the mean then restarts from the new vector. While away, neither mean is
// updated (the new phase does not drag the reference towards itself); one
// interval back inside clears the count. Nothing is flagged until the
// detector has seen Warmup vectors.
type PhaseRule struct {
	Alpha     float64 `json:"alpha"`
	Threshold float64 `json:"threshold"` // in units of the workload's own RMS wobble
	Floor     float64 `json:"floor"`     // least wobble, as a distance
	Hold      int     `json:"hold"`
	Warmup    int     `json:"warmup"`
	// Frames is how many of the newest frames the detector's vector
	// describes (the encoder fed a short window, padded as in training): a
	// full window would let a new phase in only one frame at a time. 0
	// means the model's window.
	Frames int `json:"frames"`
}

func (r PhaseRule) frames(window int) int {
	if r.Frames <= 0 || r.Frames > window {
		return window
	}
	return r.Frames
}

// PhaseDetector applies a PhaseRule to one workload's vectors.
type PhaseDetector struct {
	rule PhaseRule
	prev []float64 // the previous away vector
	mean []float64
	msd  float64 // running mean squared distance
	seen int
	away int
}

// NewPhaseDetector starts a detector with no history.
func NewPhaseDetector(r PhaseRule) *PhaseDetector { return &PhaseDetector{rule: r} }

// Observe adds the newest vector and reports whether a phase change is
// flagged now, and the vector's distance from the running mean in units of
// the running wobble (0 before there is one).
func (p *PhaseDetector) Observe(v []float64) (bool, float64) {
	p.seen++
	if p.mean == nil {
		p.mean = append([]float64(nil), v...)
		return false, 0
	}
	d := dist(p.mean, v)
	s := d / math.Max(math.Sqrt(p.msd), math.Max(p.rule.Floor, 1e-9))
	if p.seen > p.rule.Warmup && s > p.rule.Threshold {
		// Staying away means staying at the new place: an away vector
		// far from the previous away one (noise in another direction)
		// restarts the count.
		if p.away > 0 && dist(p.prev, v) > d/2 {
			p.away = 0
		}
		p.away++
		p.prev = append(p.prev[:0], v...)
		if p.away >= max(1, p.rule.Hold) {
			p.away = 0
			copy(p.mean, v)
			return true, s
		}
		return false, s
	}
	p.away = 0
	a := p.rule.Alpha
	if p.seen <= p.rule.Warmup {
		a = math.Max(a, 1/float64(p.seen)) // settle quickly on the first vectors
	}
	p.msd += a * (d*d - p.msd)
	for i := range p.mean {
		p.mean[i] += a * (v[i] - p.mean[i])
	}
	if p.seen <= p.rule.Warmup {
		return false, 0
	}
	return false, s
}

// phaseScores returns the detector's scores over a steady series (after
// warmup), for calibrating Threshold; nothing is flagged.
func phaseScores(r PhaseRule, vecs [][]float64) []float64 {
	r.Threshold = math.Inf(1)
	det := NewPhaseDetector(r)
	var out []float64
	for i, v := range vecs {
		_, s := det.Observe(v)
		if i > r.Warmup {
			out = append(out, s)
		}
	}
	return out
}
