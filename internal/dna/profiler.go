package dna

import (
	"time"

	"sculpt/internal/telemetry"
)

// DNA is one workload's record for one interval, as `sculpt dna --json`
// prints it.
type DNA struct {
	ID          string             `json:"id"`
	Name        string             `json:"name"`
	Kind        string             `json:"kind"`
	PIDs        []int              `json:"pids"`
	Cgroup      string             `json:"cgroup"`
	Genes       Genes              `json:"genes"`
	Peers       map[string]float64 `json:"peers,omitempty"`      // channels shared with each peer (fd scan)
	PeerBytes   map[string]float64 `json:"peer_bytes,omitempty"` // bytes exchanged with each peer in the window (eBPF)
	Embedding   []float64          `json:"embedding"`
	Archetype   string             `json:"archetype"`
	Confidence  float64            `json:"confidence"`
	Novelty     *float64           `json:"novelty"`
	Novel       bool               `json:"novel"` // novelty >= 1: far from every known archetype
	PhaseChange bool               `json:"phase_change"`
	Classifier  string             `json:"classifier"`
	Window      float64            `json:"window_seconds"`
}

// Profiler keeps a window of recent frames per workload and computes DNA
// from it. It is not safe for concurrent use.
type Profiler struct {
	window  time.Duration
	history map[string][]telemetry.Frame
	ml      *modelProfiler // nil: the gene classifier decides
}

// NewProfiler keeps frames up to window old (at least the newest two).
func NewProfiler(window time.Duration) *Profiler {
	return &Profiler{window: window, history: make(map[string][]telemetry.Frame)}
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
		}
	}
}

// Profile returns the DNA of one workload from its window (nil when it has
// none). The caller fills the identity fields.
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
	if p.ml != nil {
		p.ml.fill(d, h[len(h)-1].Time, p.window)
	}
	return d
}
