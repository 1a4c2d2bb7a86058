package dna

import (
	"time"

	"sculpt/internal/telemetry"
)

// DNA is one workload's record for one interval, as `sculpt dna --json`
// prints it.
type DNA struct {
	ID           string             `json:"id"`
	Name         string             `json:"name"`
	WorkloadKind string             `json:"workload_kind"` // how it was discovered: tree, cgroup, unit, container
	PIDs         []int              `json:"pids"`
	Cgroup       string             `json:"cgroup"`
	Genes        Genes              `json:"genes"`
	Peers        map[string]float64 `json:"peers,omitempty"`      // channels shared with each peer (fd scan)
	PeerBytes    map[string]float64 `json:"peer_bytes,omitempty"` // bytes exchanged with each peer in the window (eBPF)
	Embedding    []float64          `json:"embedding"`
	// Archetype is the behavioural kind (Kinds), KindUnknown when the
	// learned model is not confident, KindNovel when the workload is far
	// from every known archetype, "" before any rate is measured. It
	// changes only when a new verdict has held KindHold intervals, or at
	// once on a phase change (Profiler). Kind is the same value.
	Archetype string `json:"archetype"`
	Kind      string `json:"kind"`
	// Resembles is the known program (a catalog label, docs/zoo.md) of
	// the learned model nearest to this interval's embedding; novel
	// workloads still have one. Empty with the gene classifier.
	Resembles   string   `json:"resembles,omitempty"`
	Confidence  float64  `json:"confidence"` // of the kind, 0..1, when it was last this interval's verdict
	Novelty     *float64 `json:"novelty"`
	Novel       bool     `json:"novel"` // novelty >= 1: far from every known archetype
	PhaseChange bool     `json:"phase_change"`
	Classifier  string   `json:"classifier"`
	Window      float64  `json:"window_seconds"`
}

// KindHold is how many consecutive intervals a new verdict must hold
// before it replaces a workload's reported archetype, unless the phase
// detector flags a phase change. On the zoo's held-out runs (`sculpt bench
// dna`) the raw verdict changes in 6.2 of 100 intervals of steady
// programs; held three intervals, 1.6. A real change is shown three
// intervals late at worst, or at once when the phase detector sees it.
const KindHold = 3

// kindHold is the archetype reported for one workload and the verdict
// waiting to replace it.
type kindHold struct {
	at        time.Time // newest frame of the last interval counted
	reported  string
	conf      float64 // confidence of the last verdict that agreed with reported
	cand      string
	streak    int
	lastShown DNA // the fields set for the interval at, for a repeated Profile
}

// settle records this interval's verdict (arch, conf) and returns the
// archetype to report and its confidence. An empty verdict (no rates yet)
// changes nothing. phase says the phase detector flagged a change in this
// interval.
func (k *kindHold) settle(arch string, conf float64, phase bool) (string, float64) {
	switch {
	case arch == "":
	case k.reported == "" || arch == k.reported || phase:
		k.reported, k.conf, k.cand, k.streak = arch, conf, "", 0
	case arch == k.cand:
		k.streak++
	default:
		k.cand, k.streak = arch, 1
	}
	if k.cand != "" && k.streak >= KindHold {
		k.reported, k.conf, k.cand, k.streak = k.cand, conf, "", 0
	}
	return k.reported, k.conf
}

// Profiler keeps a window of recent frames per workload and computes DNA
// from it. It is not safe for concurrent use.
type Profiler struct {
	window  time.Duration
	history map[string][]telemetry.Frame
	holds   map[string]*kindHold
	ml      *modelProfiler // nil: the gene classifier decides
}

// NewProfiler keeps frames up to window old (at least the newest two).
func NewProfiler(window time.Duration) *Profiler {
	return &Profiler{window: window, history: make(map[string][]telemetry.Frame), holds: make(map[string]*kindHold)}
}

// Observe adds one sweep's frames and forgets workloads absent from it.
func (p *Profiler) Observe(frames []telemetry.Frame) {
	if p.ml != nil {
		p.ml.observe(frames)
	}
	seen := make(map[string]bool, len(frames))
	for _, f := range frames {
		seen[f.Workload] = true
		h := append(p.history[f.Workload], f)
		// Drop frames whose interval ended before the window began; keep two.
		cut := 0
		for cut < len(h)-2 && f.Time.Sub(h[cut].Time) > p.window {
			cut++
		}
		p.history[f.Workload] = h[cut:]
	}
	for id := range p.history {
		if !seen[id] {
			delete(p.history, id)
			delete(p.holds, id)
		}
	}
}

// Profile returns the DNA of one workload from its window (nil when it has
// none). The caller fills the identity fields. The archetype is held
// steady (KindHold); calling Profile again before the next Observe gives
// the same archetype.
func (p *Profiler) Profile(id string) *DNA {
	h := p.history[id]
	if len(h) == 0 {
		return nil
	}
	genes, peers := ComputeGenes(h)
	arch, conf := Classify(genes)
	var secs float64
	for _, f := range h {
		secs += f.Interval.Seconds()
	}
	d := &DNA{
		ID:         id,
		Genes:      genes,
		Peers:      peers,
		PeerBytes:  PeerBytes(h),
		Embedding:  []float64{},
		Archetype:  arch,
		Confidence: conf,
		Classifier: ClassifierName,
		Window:     secs,
	}
	phase := false
	if p.ml != nil {
		phase = p.ml.fill(d, h[len(h)-1].Time, p.window)
	}
	k := p.holds[id]
	if k == nil {
		k = &kindHold{}
		p.holds[id] = k
	}
	if now := h[len(h)-1].Time; !now.Equal(k.at) || k.at.IsZero() {
		k.at = now
		d.Archetype, d.Confidence = k.settle(d.Archetype, d.Confidence, phase)
		k.lastShown = DNA{Archetype: d.Archetype, Confidence: d.Confidence}
	} else {
		d.Archetype, d.Confidence = k.lastShown.Archetype, k.lastShown.Confidence
	}
	d.Kind = d.Archetype
	return d
}
