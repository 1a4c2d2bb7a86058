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
	frames map[string]*ring
}

// ring holds at most max frames; once full, next is the oldest.
type ring struct {
	frames []GeneFrame
	next   int
}

func (r *ring) last() *GeneFrame {
	if len(r.frames) == 0 {
		return nil
	}
	return &r.frames[(r.next+len(r.frames)-1)%len(r.frames)]
}

func newHistory(max int) *history {
	if max <= 0 {
		max = DefaultHistory
	}
	return &history{max: max, frames: map[string]*ring{}}
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
		r := h.frames[d.ID]
		if r == nil {
			r = &ring{}
			h.frames[d.ID] = r
		}
		if l := r.last(); l != nil && l.Time.Equal(snap.Time) {
			continue // the same interval published again (after a write)
		}
		f := GeneFrame{Time: snap.Time, Tick: snap.Tick, Genes: d.Genes}
		if len(r.frames) < h.max {
			r.frames = append(r.frames, f)
			continue
		}
		r.frames[r.next] = f
		r.next = (r.next + 1) % h.max
	}
	for id := range h.frames {
		if !seen[id] {
			delete(h.frames, id)
		}
	}
}

// of returns a copy of the workload's frames newer than since, oldest
// first, keeping only the genes named in only (all when only is empty).
func (h *history) of(id string, since time.Time, only map[string]bool) []GeneFrame {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := []GeneFrame{}
	if r := h.frames[id]; r != nil {
		for _, part := range [][]GeneFrame{r.frames[r.next:], r.frames[:r.next]} {
			for _, f := range part {
				if f.Time.After(since) {
					out = append(out, f)
				}
			}
		}
	}
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
