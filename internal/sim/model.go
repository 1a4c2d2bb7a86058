package sim

import (
	"math"
	"slices"
)

// Placement is how one modelled workload is arranged: its threads' CPUs
// and scheduling, its cgroup's CPU weight and quota, and where its pages
// are.
type Placement struct {
	Threads []Thread
	Weight  float64   // cgroup cpu.weight, 1..10000 (100 is the default)
	Quota   float64   // cores of CPU bandwidth (cpu.max); <= 0 is no limit
	Pages   []float64 // fraction of its pages on each node (index into Topo.Nodes); sums to 1
}

// Thread is one thread's affinity and scheduling.
type Thread struct {
	CPUs   []int
	Policy string // other, batch, idle
	Nice   int
}

func (p Placement) clone() Placement {
	q := p
	q.Threads = make([]Thread, len(p.Threads))
	for i, t := range p.Threads {
		q.Threads[i] = Thread{CPUs: slices.Clone(t.CPUs), Policy: t.Policy, Nice: t.Nice}
	}
	q.Pages = slices.Clone(p.Pages)
	return q
}

// World is what the model evaluates: the machine, each present workload's
// demand and placement, and where the NIC's interrupts may run.
type World struct {
	HW    *Hardware
	Progs []Program
	Place []Placement
	SLO   []float64 // services: the p99 objective in seconds (0: none)
	IRQs  map[int][]int
}

// Outcome is how one workload fares in a World.
type Outcome struct {
	Demand     float64 // cores it wants
	CPU        float64 // cores it gets
	WaitFrac   float64 // run-queue delay per second run
	IPC        float64
	LLCMiss    float64 // ratio of LLC accesses that miss
	LLCBytes   float64 // LLC it occupies
	MemBW      float64 // DRAM traffic, bytes/s
	LocalFrac  float64 // of its pages, on the nodes of the CPUs it runs on
	P50, P99   float64 // services: request latency, seconds
	Served     float64 // services: requests/s
	Throughput float64 // work done relative to alone on the machine, 0..1
	Score      float64 // 0..1: services min(1, SLO/p99), batch Throughput
	IRQStealUS float64 // services: interrupt work on its own CPUs per request
}

// Model parameters, with their sources (docs/sim.md).
const (
	// A waking task that finds another runnable task of the same class on
	// its CPU waits on average ~half the base slice: EEVDF's
	// sched/base_slice_ns is 0.75 ms (Linux 6.6+; CFS's wakeup granularity
	// was 1 ms).
	wakeWaitS = 0.375e-3
	// How much of a co-runner's time a waking normal task waits for, by the
	// co-runner's policy: SCHED_BATCH is never favoured on wakeup but keeps
	// its slice once running (0.5); SCHED_IDLE is preempted at once (its
	// weight is 3 against 1024: 0.01).
	preemptOther = 1.0
	preemptBatch = 0.5
	preemptIdle  = 0.01
	// The tail of the wait for a slice is heavier than its mean: p99 of a
	// wake wait ~4x the mean (the wakeup-latency histograms of
	// `perf sched latency` beside a spinner on this machine).
	waitTail = 4.0
	// M/M/1-like queueing: p99 of an exponential response time is ln(100)
	// = 4.6 times its mean.
	p99Factor = 4.6
	// NIC interrupt work per request: ~2 µs of softirq where it runs; a
	// request whose interrupt is served on another node pays ~6 µs more
	// (cross-node wakeup and cache-line transfer; Intel's and Mellanox's
	// tuning guides report 10-30% more latency for a remote queue).
	irqWorkUS   = 2.0
	irqRemoteUS = 6.0
	// Memory-level parallelism: the share of a miss's latency that stalls
	// the core (pointer-chasing services ~0.5, streamers prefetch: 0.08).
	mlpService = 0.5
	mlpBatch   = 0.25
	mlpStream  = 0.08
)

// niceWeight is the kernel's sched_prio_to_weight table (kernel/sched/core.c):
// 1024 at nice 0, each step ~1.25x.
func niceWeight(nice int) float64 { return 1024 / math.Pow(1.25, float64(nice)) }

func schedWeight(t Thread, cg float64) float64 {
	if cg <= 0 {
		cg = 100
	}
	if t.Policy == "idle" {
		return 3 * cg / 100
	}
	return niceWeight(t.Nice) * cg / 100
}

func preempt(policy string) float64 {
	switch policy {
	case "idle":
		return preemptIdle
	case "batch":
		return preemptBatch
	}
	return preemptOther
}

// MissRatio is the LLC miss-rate curve of p given occupancy bytes of LLC:
// from MissMax with no cache down to MissMin with its working set cached,
// exponentially (the shape of the SPEC and CloudSuite miss-rate curves).
// It never rises with more cache.
func MissRatio(p Program, occupancy float64) float64 {
	ws := p.WorkingSetMB * (1 << 20)
	if ws <= 0 {
		return p.MissMin
	}
	return p.MissMin + (p.MissMax-p.MissMin)*math.Exp(-3*math.Max(occupancy, 0)/ws)
}

// loadedLatency is DRAM latency relative to idle at utilisation u of a
// node's bandwidth: flat to ~60%, then rising to 3x at saturation (a fit
// to Intel MLC's loaded-latency curves).
func loadedLatency(u float64) float64 { return 1 + 2*math.Pow(math.Min(u, 1.2), 4) }

type cpuEntry struct {
	w, t   int
	demand float64
	weight float64
	grant  float64
	policy string
}

// Evaluate runs the model over w: CPU shares per CPU (weighted max-min,
// SMT siblings sharing a core), LLC occupancy per cache (by insertion
// rate), DRAM traffic per node against its bandwidth with distance and
// loaded latency, then each workload's IPC, latency and throughput.
func Evaluate(w *World) []Outcome {
	hw := w.HW
	n := len(w.Progs)
	out := make([]Outcome, n)
	ncpu := len(hw.llcOf)
	// CPU demand per CPU.
	entries := make([][]cpuEntry, ncpu)
	for i, p := range w.Progs {
		pl := w.Place[i]
		out[i].Demand = p.CPU
		d := p.CPU
		if pl.Quota > 0 && pl.Quota < d {
			d = pl.Quota
		}
		per := d / float64(len(pl.Threads))
		for ti, t := range pl.Threads {
			cpus := onlineOf(hw, t.CPUs)
			d := math.Min(per, 1) / float64(len(cpus))
			wt := schedWeight(t, pl.Weight)
			for _, c := range cpus {
				// Threads of one workload alike on a CPU are one entry.
				if es := entries[c]; len(es) > 0 && es[len(es)-1].w == i && es[len(es)-1].weight == wt {
					es[len(es)-1].demand += d
					continue
				}
				entries[c] = append(entries[c], cpuEntry{w: i, t: ti, demand: d, weight: wt, policy: t.Policy})
			}
		}
	}
	// SMT: a CPU's capacity falls as its sibling gets busy; three rounds
	// of water-filling settle it.
	load := make([]float64, ncpu)
	for c := range entries {
		for _, e := range entries[c] {
			load[c] += e.demand
		}
		load[c] = math.Min(load[c], 1)
	}
	capOf := make([]float64, ncpu)
	for range 3 {
		for c := range entries {
			capOf[c] = 1
			for _, s := range hw.siblings[c] {
				if s != c && s < ncpu {
					capOf[c] -= (1 - hw.SMTYield/2) * load[s]
				}
			}
			waterFill(entries[c], capOf[c])
			load[c] = 0
			for _, e := range entries[c] {
				load[c] += e.grant
			}
		}
	}
	cpuOn := make([][]float64, n) // per workload, per CPU granted
	for i := range cpuOn {
		cpuOn[i] = make([]float64, ncpu)
	}
	for c := range entries {
		for _, e := range entries[c] {
			out[e.w].CPU += e.grant
			cpuOn[e.w][c] += e.grant
		}
	}
	// Wake waits and available capacity per workload.
	avail := make([]float64, n)
	wait := make([]float64, n)
	for i := range w.Progs {
		var demandSum float64
		for c := range entries {
			var mine, others float64
			for _, e := range entries[c] {
				if e.w == i {
					mine += e.demand
				} else {
					others += e.grant * preempt(e.policy)
				}
			}
			if mine == 0 {
				continue
			}
			demandSum += mine
			avail[i] += mine * math.Max(capOf[c]-others, 0.02)
			wait[i] += mine * math.Min(others, 1)
		}
		if demandSum > 0 {
			// avail: per unit of demand spread, how much CPU each share of
			// demand could get; scale to the threads it has.
			avail[i] = avail[i] / demandSum * math.Min(float64(len(w.Place[i].Threads)), float64(countCPUs(w.Place[i])))
			wait[i] /= demandSum
		}
	}
	// Memory: nodes the workload runs on, LLC occupancy, traffic.
	nn := len(hw.Topo.Nodes)
	runNode := make([][]float64, n)
	ipc := make([]float64, n)
	miss := make([]float64, n)
	for i, p := range w.Progs {
		runNode[i] = make([]float64, nn)
		for c, g := range cpuOn[i] {
			if g > 0 {
				runNode[i][hw.NodeOfCPU(c)] += g / out[i].CPU
			}
		}
		ipc[i] = p.IPC0
		miss[i] = p.MissMax
	}
	nl := len(hw.LLCs)
	occ := make([][]float64, n) // per workload per LLC
	var util []float64
	for range 4 {
		// LLC: occupancy in proportion to insertions (misses), each
		// workload at most its working set.
		for i := range occ {
			occ[i] = make([]float64, nl)
		}
		for l, llc := range hw.LLCs {
			ins := make([]float64, n)
			var tot float64
			for i, p := range w.Progs {
				var g float64
				for _, c := range llc.CPUs {
					if c < ncpu {
						g += cpuOn[i][c]
					}
				}
				ins[i] = g * ipc[i] * p.APKI * math.Max(miss[i], 0.01)
				tot += ins[i]
			}
			left := llc.Bytes
			// Fill in order of insertion rate share, capping at working sets.
			idx := make([]int, 0, n)
			for i := range ins {
				if ins[i] > 0 {
					idx = append(idx, i)
				}
			}
			for len(idx) > 0 && left > 0 {
				var t float64
				for _, i := range idx {
					t += ins[i]
				}
				var next []int
				used := 0.0
				for _, i := range idx {
					share := left * ins[i] / t
					ws := w.Progs[i].WorkingSetMB*(1<<20) - occ[i][l]
					if share >= ws {
						occ[i][l] += ws
						used += ws
					} else {
						next = append(next, i)
					}
				}
				if len(next) == len(idx) {
					for _, i := range idx {
						occ[i][l] += left * ins[i] / t
					}
					break
				}
				left -= used
				idx = next
			}
		}
		for i, p := range w.Progs {
			if out[i].CPU <= 0 {
				miss[i] = p.MissMax
				continue
			}
			var m, ob float64
			for l, llc := range hw.LLCs {
				var g float64
				for _, c := range llc.CPUs {
					if c < ncpu {
						g += cpuOn[i][c]
					}
				}
				if g > 0 {
					m += g / out[i].CPU * MissRatio(p, occ[i][l])
					ob += g / out[i].CPU * occ[i][l]
				}
			}
			miss[i], out[i].LLCBytes = m, ob
		}
		// DRAM traffic per node, then latency and IPC.
		traffic := make([]float64, nn)
		for i, p := range w.Progs {
			b := demandTraffic(p, out[i].CPU, miss[i])
			for nd, f := range w.Place[i].Pages {
				traffic[nd] += b * f
			}
		}
		util = make([]float64, nn)
		for nd := range traffic {
			util[nd] = traffic[nd] / hw.NodeBandwidth[nd]
		}
		for i, p := range w.Progs {
			lat := memLatency(hw, runNode[i], w.Place[i].Pages, util)
			cpi := 1/p.IPC0 + p.APKI/1000*miss[i]*lat*hw.GHz*mlp(p)
			ipc[i] = 1 / cpi
		}
	}
	irqNear, irqOwn := irqPlacement(w, cpuOn)
	for i, p := range w.Progs {
		o := &out[i]
		o.IPC, o.LLCMiss = ipc[i], miss[i]
		o.LocalFrac = localFrac(hw, w.Place[i])
		// Bandwidth: a node past its bandwidth serves each flow in
		// proportion.
		b := demandTraffic(p, o.CPU, miss[i])
		var served float64
		for nd, f := range w.Place[i].Pages {
			served += b * f / math.Max(1, util[nd])
		}
		o.MemBW = served
		bwFrac := 1.0
		if b > 0 {
			bwFrac = served / b
		}
		alone := aloneOf(hw, p)
		switch p.Kind {
		case KindService:
			s := p.ServiceUS * 1e-6 * alone.IPC / math.Max(ipc[i], 1e-3) / math.Max(bwFrac, 0.05)
			if p.NetBps > 0 {
				s += irqOwn[i] * irqWorkUS * 1e-6
				o.IRQStealUS = irqOwn[i] * irqWorkUS
			}
			capa := math.Max(avail[i], 0.01)
			rho := p.ReqRate * s / capa
			o.Served = p.ReqRate
			if rho >= 0.98 {
				o.Served = p.ReqRate * 0.98 / rho
				rho = 0.98
			}
			k := math.Max(1, math.Min(float64(len(w.Place[i].Threads)), math.Floor(capa)))
			ww := wait[i] * wakeWaitS
			net := 0.0
			if p.NetBps > 0 {
				net = (1 - irqNear[i]) * irqRemoteUS * 1e-6
			}
			o.P50 = s*(1+0.7*rho/(k*(1-rho))) + ww + net
			o.P99 = s*(1+p99Factor*rho/(k*(1-rho))) + ww*waitTail + net
			o.WaitFrac = p.ReqRate * ww / math.Max(o.CPU, 1e-3)
			o.Throughput = o.Served / p.ReqRate
			o.Score = o.Throughput
			if slo := w.SLO[i]; slo > 0 {
				o.Score = math.Min(1, slo/o.P99) * o.Throughput
			}
		default:
			d := math.Min(p.CPU, float64(len(w.Place[i].Threads)))
			o.WaitFrac = math.Max(0, d-o.CPU) / math.Max(o.CPU, 1e-3)
			work := o.CPU * ipc[i]
			if p.Kind == KindMemBatch {
				work *= bwFrac
			}
			if p.Kind == KindIOBatch {
				work = o.CPU * alone.IPC // waits on the device, not the core
			}
			o.Throughput = math.Min(1, work/math.Max(alone.CPU*alone.IPC, 1e-9))
			o.Score = o.Throughput
		}
	}
	return out
}

func mlp(p Program) float64 {
	switch p.Kind {
	case KindService:
		return mlpService
	case KindMemBatch:
		return mlpStream
	}
	return mlpBatch
}

// demandTraffic is the DRAM traffic of p running cpu cores with LLC miss
// ratio m: its traffic alone scaled by the CPU it gets and by how much more
// it misses than at its working set.
func demandTraffic(p Program, cpu, m float64) float64 {
	if p.CPU <= 0 {
		return 0
	}
	return p.MemBW * 1e9 * cpu / p.CPU * m / math.Max(p.MissMax, 1e-3)
}

// memLatency is the mean DRAM latency in ns of a workload running on nodes
// run (fractions) with pages on nodes pages, at node utilisations util.
func memLatency(hw *Hardware, run, pages, util []float64) float64 {
	var lat, wsum float64
	for m, r := range run {
		if r <= 0 {
			continue
		}
		for nd, f := range pages {
			if f <= 0 {
				continue
			}
			lat += r * f * hw.LatencyFactor(m, nd) * loadedLatency(util[nd])
			wsum += r * f
		}
	}
	if wsum == 0 {
		return hw.LocalLatencyNS
	}
	return hw.LocalLatencyNS * lat / wsum
}

// localFrac is the share of a placement's pages on the nodes of the CPUs
// its threads may run on (numa_maps against Cpus_allowed, as the real
// collector counts it).
func localFrac(hw *Hardware, p Placement) float64 {
	nodes := make([]bool, len(hw.Topo.Nodes))
	for _, t := range p.Threads {
		for _, c := range t.CPUs {
			nodes[hw.NodeOfCPU(c)] = true
		}
	}
	var f float64
	for nd, x := range p.Pages {
		if nodes[nd] {
			f += x
		}
	}
	return f
}

// irqPlacement says, per workload, the share of its NIC interrupts served
// on its own node (near) and on CPUs it runs on (own, stealing its time).
func irqPlacement(w *World, cpuOn [][]float64) (near, own []float64) {
	n := len(w.Progs)
	near, own = make([]float64, n), make([]float64, n)
	if len(w.IRQs) == 0 {
		for i := range near {
			near[i] = 1
		}
		return near, own
	}
	for i := range w.Progs {
		if w.Progs[i].CPU <= 0 {
			continue
		}
		var total float64
		myNode := map[int]float64{}
		for c, g := range cpuOn[i] {
			if g > 0 {
				myNode[w.HW.NodeOfCPU(c)] += g
				total += g
			}
		}
		var nr, ow float64
		for _, cpus := range w.IRQs {
			on := onlineOf(w.HW, cpus)
			for _, c := range on {
				share := 1 / float64(len(on)) / float64(len(w.IRQs))
				if total > 0 {
					nr += share * myNode[w.HW.NodeOfCPU(c)] / total
				}
				if cpuOn[i][c] > 0 {
					ow += share
				}
			}
		}
		near[i], own[i] = nr, ow
	}
	return near, own
}

// waterFill shares capacity among entries by weight, each at most its
// demand (weighted max-min fairness, as CFS shares a CPU).
func waterFill(es []cpuEntry, capacity float64) {
	for i := range es {
		es[i].grant = 0
	}
	left := math.Max(capacity, 0)
	active := make([]int, 0, len(es))
	for i := range es {
		if es[i].demand > 0 {
			active = append(active, i)
		}
	}
	for len(active) > 0 && left > 1e-12 {
		var wsum float64
		for _, i := range active {
			wsum += es[i].weight
		}
		var next []int
		used := 0.0
		for _, i := range active {
			share := left * es[i].weight / wsum
			need := es[i].demand - es[i].grant
			if share >= need {
				es[i].grant += need
				used += need
			} else {
				next = append(next, i)
			}
		}
		if len(next) == len(active) {
			for _, i := range active {
				es[i].grant += left * es[i].weight / wsum
			}
			return
		}
		left -= used
		active = next
	}
}

func onlineOf(hw *Hardware, cpus []int) []int {
	out := make([]int, 0, len(cpus))
	for _, c := range cpus {
		if c >= 0 && c < len(hw.llcOf) {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return hw.Topo.OnlineCPUs()
	}
	return out
}

func countCPUs(p Placement) int {
	set := map[int]bool{}
	for _, t := range p.Threads {
		for _, c := range t.CPUs {
			set[c] = true
		}
	}
	return len(set)
}

// aloneOf is p alone on hw, every CPU allowed, pages on node 0: the
// reference its throughput and service time are judged against.
func aloneOf(hw *Hardware, p Program) Outcome {
	key := p
	if o, ok := hw.alone[key]; ok {
		return o
	}
	w := &World{HW: hw, Progs: []Program{p}, Place: []Placement{defaultPlacement(hw, p, 0)}, SLO: []float64{0}}
	o := evaluateAlone(w)
	if hw.alone == nil {
		hw.alone = map[Program]Outcome{}
	}
	hw.alone[key] = o
	return o
}

// evaluateAlone is Evaluate without the judging against alone (which
// would recurse).
func evaluateAlone(w *World) Outcome {
	saved := w.HW.alone
	w.HW.alone = map[Program]Outcome{w.Progs[0]: {IPC: w.Progs[0].IPC0, CPU: w.Progs[0].CPU}}
	o := Evaluate(w)[0]
	w.HW.alone = saved
	return o
}

// defaultPlacement is how Linux places a new workload: every thread on
// every CPU, SCHED_OTHER at nice 0, cpu.weight 100, no quota, pages on
// node (first touch).
func defaultPlacement(hw *Hardware, p Program, node int) Placement {
	all := hw.Topo.OnlineCPUs()
	pl := Placement{Weight: 100, Pages: make([]float64, len(hw.Topo.Nodes))}
	pl.Pages[node] = 1
	for range max(p.Threads, 1) {
		pl.Threads = append(pl.Threads, Thread{CPUs: slices.Clone(all), Policy: "other"})
	}
	return pl
}
