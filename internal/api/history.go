package api

import (
	"sync"
	"time"

	"sculpt/internal/dna"
)

// DefaultHistory is how many intervals of genes the server keeps per
// workload for GET /v1/history (20 minutes at the default 5 s interval).
const DefaultHistory = 240

// GeneFrame is one interval's genes of one workload.
type GeneFrame struct {
	Time  time.Time `json:"time"`
	Tick  int       `json:"tick"`
	Genes dna.Genes `json:"genes"`
}

// history keeps a bounded ring of recent gene frames per workload; a
// workload that leaves the snapshot is forgotten.
type history struct {
	mu     sync.Mutex
	max    int
	frames map[string][]GeneFrame // oldest first, at most max
}

func newHistory(max int) *history {
	if max <= 0 {
		max = DefaultHistory
	}
	return &history{max: max, frames: map[string][]GeneFrame{}}
}

// observe adds the snapshot's genes. The snapshot is not changed after
// Publish, so its gene maps are kept as they are, not copied.
func (h *history) observe(snap *Snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[string]bool, len(snap.Workloads))
	for i := range snap.Workloads {
		d := &snap.Workloads[i]
		seen[d.ID] = true
		fs := h.frames[d.ID]
		if n := len(fs); n > 0 && fs[n-1].Time.Equal(snap.Time) {
			continue // the same interval published again (after a write)
		}
		if len(fs) == h.max {
			copy(fs, fs[1:])
			fs = fs[:h.max-1]
		}
		h.frames[d.ID] = append(fs, GeneFrame{Time: snap.Time, Tick: snap.Tick, Genes: d.Genes})
	}
	for id := range h.frames {
		if !seen[id] {
			delete(h.frames, id)
		}
	}
}

// of returns a copy of the workload's frames, oldest first, keeping only
// the genes named in only (all when only is empty).
func (h *history) of(id string, only map[string]bool) []GeneFrame {
	h.mu.Lock()
	defer h.mu.Unlock()
	fs := h.frames[id]
	out := make([]GeneFrame, len(fs))
	copy(out, fs)
	if len(only) > 0 {
		for i := range out {
			g := make(dna.Genes, len(only))
			for name := range only {
				if v, ok := out[i].Genes[name]; ok {
					g[name] = v
				}
			}
			out[i].Genes = g
		}
	}
	return out
}
