package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
)

// Choice is one workload's arrangement in the oracle's search space.
type Choice struct {
	Node   int    `json:"node"`   // dedicated whole cores on this node (index); -1: the shared CPUs
	Pages  int    `json:"pages"`  // pages on this node (index); -1: where they are; -2: spread over every node
	Policy string `json:"policy"` // other, batch (nice 10), idle
	// Quota is the share of its demand a batch workload may use (cpu.max;
	// 0: no limit), the learning agent's lever.
	Quota float64 `json:"quota,omitempty"`
}

// Arrangement is a choice per workload (in the World's order) and where
// the NIC's interrupts go.
type Arrangement struct {
	Choices  []Choice `json:"choices"`
	IRQsNear bool     `json:"irqs_near"` // NIC interrupts on the shared CPUs of the first dedicated service's node
}

// SearchStats says what the oracle's search cost.
type SearchStats struct {
	Evaluated  int           `json:"evaluated"`
	Space      int           `json:"space"`
	Exhaustive bool          `json:"exhaustive"`
	Took       time.Duration `json:"took_ns"`
}

// maxExhaustive bounds the arrangements the oracle tries one by one; a
// larger space is searched by coordinate descent from the best of each
// workload's choices alone (and says so).
const maxExhaustive = 50000

// candidates lists each workload's choices: a service shared or on
// dedicated cores of any node (pages with it: remote memory is never
// faster, TestRemoteNeverFaster); batch work in the normal or the idle
// class (SCHED_BATCH lies between them in the model), with no CPU quota,
// half or a fifth of its demand, its pages where they are or spread over
// the nodes.
func candidates(w *World) [][]Choice {
	nodes := len(w.HW.Topo.Nodes)
	out := make([][]Choice, len(w.Progs))
	for i, p := range w.Progs {
		if p.Kind == KindService {
			out[i] = append(out[i], Choice{Node: -1, Pages: -1, Policy: "other"})
			for k := range nodes {
				out[i] = append(out[i], Choice{Node: k, Pages: k, Policy: "other"})
			}
			continue
		}
		for _, pol := range []string{"other", "idle"} {
			for _, q := range []float64{0, 0.5, 0.2} {
				out[i] = append(out[i], Choice{Node: -1, Pages: -1, Policy: pol, Quota: q})
				if nodes > 1 {
					out[i] = append(out[i], Choice{Node: -1, Pages: -2, Policy: pol, Quota: q})
				}
			}
		}
	}
	return out
}

// dedicatedCount is how many CPUs a service on dedicated cores gets: its
// demand with half again of headroom, in whole cores.
func dedicatedCount(p Program) int { return int(math.Ceil(p.CPU * 1.5)) }

// realize turns an arrangement into placements: dedicated whole cores
// (highest free cores of the node first, CPU 0 last), everything else on
// the CPUs left.
func realize(w *World, base []Placement, a Arrangement) ([]Placement, map[int][]int, bool) {
	hw := w.HW
	free := map[int]bool{}
	for _, c := range hw.Topo.OnlineCPUs() {
		free[c] = true
	}
	ded := make([][]int, len(w.Progs))
	firstNode := -1
	for i, ch := range a.Choices {
		if ch.Node < 0 {
			continue
		}
		want := dedicatedCount(w.Progs[i])
		cpus := hw.Topo.CPUsOfNode(hw.Topo.Nodes[ch.Node].ID)
		var got []int
		for j := len(cpus) - 1; j >= 0 && len(got) < want; j-- {
			c := cpus[j]
			cpu := hw.Topo.CPU(c)
			sib := []int{c}
			if cpu != nil && len(cpu.ThreadSiblings) > 0 {
				sib = cpu.ThreadSiblings
			}
			ok := true
			for _, s := range sib {
				ok = ok && free[s]
			}
			if !ok || slices.Contains(sib, 0) {
				continue
			}
			for _, s := range sib {
				delete(free, s)
				got = append(got, s)
			}
		}
		if len(got) == 0 {
			return nil, nil, false
		}
		slices.Sort(got)
		ded[i] = got
		if firstNode < 0 {
			firstNode = ch.Node
		}
	}
	var shared []int
	for _, c := range hw.Topo.OnlineCPUs() {
		if free[c] {
			shared = append(shared, c)
		}
	}
	if len(shared) == 0 {
		return nil, nil, false
	}
	out := make([]Placement, len(w.Progs))
	for i, ch := range a.Choices {
		pl := base[i].clone()
		cpus := shared
		if ded[i] != nil {
			cpus = ded[i]
		}
		nice := 0
		if ch.Policy == "batch" {
			nice = 10
		}
		for t := range pl.Threads {
			pl.Threads[t] = Thread{CPUs: slices.Clone(cpus), Policy: ch.Policy, Nice: nice}
		}
		switch {
		case ch.Pages >= 0:
			pl.Pages = make([]float64, len(pl.Pages))
			pl.Pages[ch.Pages] = 1
		case ch.Pages == -2:
			for k := range pl.Pages {
				pl.Pages[k] = 1 / float64(len(pl.Pages))
			}
		}
		pl.Quota = ch.Quota * w.Progs[i].CPU
		out[i] = pl
	}
	irqs := map[int][]int{}
	for n, cpus := range w.IRQs {
		irqs[n] = cpus
		if a.IRQsNear && firstNode >= 0 {
			near := topology.IntersectCPUs(shared, hw.Topo.CPUsOfNode(hw.Topo.Nodes[firstNode].ID))
			if len(near) == 0 {
				near = shared
			}
			irqs[n] = near
		}
	}
	return out, irqs, true
}

// Reward is the score of a world: objectives first (each service's
// min(1, SLO/p99) times the share of requests served counts twice), then
// batch throughput relative to alone. 1 is every objective met with every
// batch workload as fast as alone.
func Reward(w *World, outs []Outcome) float64 {
	var sum, wsum float64
	for i, p := range w.Progs {
		wt := 1.0
		if p.Kind == KindService {
			wt = 2
		}
		sum += wt * outs[i].Score
		wsum += wt
	}
	if wsum == 0 {
		return 1
	}
	return sum / wsum
}

// Search finds the arrangement of w's workloads with the highest Reward:
// exhaustively over candidates when the space holds at most maxExhaustive
// arrangements, else by coordinate descent to a local optimum.
func Search(w *World) (Arrangement, float64, SearchStats) {
	t0 := time.Now()
	cands := candidates(w)
	space := 2
	for _, c := range cands {
		space *= len(c)
		if space > 1<<30 {
			break
		}
	}
	st := SearchStats{Space: space, Exhaustive: space <= maxExhaustive}
	best, bestR := Arrangement{}, math.Inf(-1)
	eval := func(a Arrangement) float64 {
		st.Evaluated++
		pl, irqs, ok := realize(w, w.Place, a)
		if !ok {
			return math.Inf(-1)
		}
		ww := *w
		ww.Place, ww.IRQs = pl, irqs
		return Reward(&ww, Evaluate(&ww))
	}
	n := len(cands)
	if st.Exhaustive {
		idx := make([]int, n)
		for {
			for _, near := range []bool{false, true} {
				a := Arrangement{Choices: make([]Choice, n), IRQsNear: near}
				for i := range idx {
					a.Choices[i] = cands[i][idx[i]]
				}
				if r := eval(a); r > bestR+1e-12 {
					best, bestR = a, r
				}
			}
			k := 0
			for k < n {
				idx[k]++
				if idx[k] < len(cands[k]) {
					break
				}
				idx[k] = 0
				k++
			}
			if k == n {
				break
			}
		}
	} else {
		a := Arrangement{Choices: make([]Choice, n)}
		for i := range a.Choices {
			a.Choices[i] = cands[i][0]
		}
		bestR = eval(a)
		best = a
		for improved := true; improved; {
			improved = false
			for i := range n {
				for _, c := range cands[i] {
					b := best
					b.Choices = slices.Clone(best.Choices)
					b.Choices[i] = c
					for _, near := range []bool{false, true} {
						b.IRQsNear = near
						if r := eval(b); r > bestR+1e-9 {
							best, bestR, improved = b, r, true
							best.Choices = slices.Clone(b.Choices)
						}
					}
				}
			}
		}
	}
	st.Took = time.Since(t0)
	return best, bestR, st
}

// applyArrangement drives the server to arrangement a through its HAL,
// only where the current state differs; it returns the actions applied.
func applyArrangement(ctx context.Context, s *Server, names []string, w *World, a Arrangement) (int, error) {
	pl, irqs, ok := realize(w, w.Place, a)
	if !ok {
		return 0, fmt.Errorf("oracle arrangement does not fit the machine")
	}
	n := 0
	do := func(act hal.Action) error {
		if _, err := s.Apply(ctx, act); err != nil {
			return fmt.Errorf("apply %s: %w", act, err)
		}
		n++
		return nil
	}
	for i, name := range names {
		sp := s.byName[name]
		want := pl[i]
		if !slices.Equal(sp.place.Threads[0].CPUs, want.Threads[0].CPUs) {
			if err := do(hal.PinThreads{PID: sp.pid, CPUs: want.Threads[0].CPUs}); err != nil {
				return n, err
			}
		}
		if sp.place.Threads[0].Policy != want.Threads[0].Policy || sp.place.Threads[0].Nice != want.Threads[0].Nice {
			nice := want.Threads[0].Nice
			if err := do(hal.SetSched{PID: sp.pid, Policy: want.Threads[0].Policy, Nice: &nice}); err != nil {
				return n, err
			}
		}
		if !slices.Equal(sp.place.Pages, want.Pages) {
			var to []int
			for k, f := range want.Pages {
				if f > 0 {
					to = append(to, s.hw.Topo.Nodes[k].ID)
				}
			}
			if err := do(hal.MemMigrate{PID: sp.pid, ToNodes: to}); err != nil {
				return n, err
			}
		}
		if math.Abs(sp.place.Quota-want.Quota) > 1e-9 {
			q := int64(-1)
			if want.Quota > 0 {
				q = max(1000, int64(want.Quota*100000))
			}
			if err := do(hal.SetCgroupCPU{Cgroup: sp.cgroup, QuotaUS: &q}); err != nil {
				return n, err
			}
		}
	}
	for _, irq := range slices.Sorted(mapsKeys(irqs)) {
		if !slices.Equal(s.irqs[irq], irqs[irq]) {
			if err := do(hal.IRQAffinity{IRQ: irq, CPUs: irqs[irq]}); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

func mapsKeys(m map[int][]int) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
