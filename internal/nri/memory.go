package nri

import (
	"strings"
	"sync"

	"sculpt/internal/engine"
	"sculpt/internal/hal/topology"
)

// FromDecision is the arrangement of a container that the engine's
// decision d asks for on topology t: its CPUs, their NUMA nodes for a
// want of local memory, its CPU weight (as v1 shares) and quota, and its
// scheduling class. Interrupts and memory migration are not part of it:
// they stay with the HAL.
func FromDecision(d engine.Decision, t *topology.Topology) Arrangement {
	w := d.Want
	a := Arrangement{CPUs: d.CPUs, Shares: SharesFromWeight(w.CPUShare), Sched: w.Sched, Nice: w.Nice}
	switch {
	case w.CPUQuota > 0:
		a.PeriodUS = 100000
		a.QuotaUS = max(int64(w.CPUQuota*float64(a.PeriodUS)), 1000)
	case w.CPUQuota < 0:
		a.QuotaUS = -1
	}
	if w.Memory == engine.MemoryLocal && len(d.CPUs) > 0 && t != nil {
		nodes := map[int]bool{}
		for _, c := range t.CPUs {
			for _, x := range d.CPUs {
				if c.ID == x {
					nodes[c.Node] = true
				}
			}
		}
		if len(nodes) == 1 {
			for n := range nodes {
				a.Mems = []int{n}
			}
		}
	}
	return a
}

// Memory remembers the arrangements the engine chose for containers: per
// container (by ID prefix, as sculpt's workload IDs carry it) and per
// kind (Kind), so that a new container of a kind sculpt has arranged
// before starts where the last one was put. Its Arrange is the plugin's
// Arranger. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	byID   map[string]Arrangement // container ID prefix -> arrangement
	byKind map[string]Arrangement
}

// NewMemory returns an empty Memory.
func NewMemory() *Memory {
	return &Memory{byID: map[string]Arrangement{}, byKind: map[string]Arrangement{}}
}

// Record notes what the engine chose for the container with ID prefix
// idPrefix and kind kind.
func (m *Memory) Record(idPrefix, kind string, a Arrangement) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID[idPrefix] = a
	if kind != "" {
		m.byKind[kind] = a
	}
}

// Set replaces the per-container arrangements with the engine's current
// ones (ID prefix -> arrangement), and records each under its kind
// (kinds: ID prefix -> kind, missing when unknown). A container left out
// keeps what it has; a new one of its kind still starts where it was.
func (m *Memory) Set(current map[string]Arrangement, kinds map[string]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.byID = map[string]Arrangement{}
	for p, a := range current {
		m.byID[p] = a
		if k := kinds[p]; k != "" {
			m.byKind[k] = a
		}
	}
}

// Arrange returns the engine's arrangement for c itself, else the last
// one chosen for a container of its kind.
func (m *Memory) Arrange(c Container) (Arrangement, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p, a := range m.byID {
		if p != "" && strings.HasPrefix(c.ID, p) {
			return a, true
		}
	}
	a, ok := m.byKind[c.Kind]
	return a, ok
}
