package engine

import (
	"fmt"
	"slices"
	"sort"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/workload"
)

// WorkloadState is what the planner knows of one workload: who it is, what
// its rule wants (nil: nothing), and how its processes are arranged now.
type WorkloadState struct {
	ID   string
	Name string
	PIDs []int
	// CPUCgroup is the workload's own cgroup in the cpu controller's
	// hierarchy, "" when it has none of its own (it shares the root or a
	// parent with others): then cpu_share cannot be set for it alone.
	CPUCgroup string
	// BlkioCgroup is its own cgroup in the blkio (v1) or io (v2)
	// controller's hierarchy, "" when it has none of its own.
	BlkioCgroup string
	// Container says the workload is a container: its cgroups belong to
	// the container runtime, and sculpt never writes them through the HAL.
	Container bool
	Match     *Match
	// Procs is the current arrangement of its processes (hal.Snapshot); a
	// PID missing here is gone and gets no action.
	Procs []hal.ProcessState
}

// PlanInput is everything the planner decides from, passed as data.
type PlanInput struct {
	Topology  *topology.Topology
	Caps      hal.Capabilities
	Workloads []WorkloadState
	// ReserveShared is how many CPUs always stay in the shared pool for
	// everything else (at least 1).
	ReserveShared int
	// FixedIRQs are interrupts not to move (managed by the kernel, or a
	// move failed before).
	FixedIRQs map[int]bool
	// NRI says containers' CPUs, CPU weight and quota are applied through
	// the container runtime from the decisions (sculpt run --nri): the
	// plan has no thread pinning for them either.
	NRI bool
	// MigrateBudget is how many bytes of memory the plan may move between
	// NUMA nodes in this interval (0: no limit). A move that does not fit
	// waits for a later interval, except the first one of a plan, which
	// goes alone.
	MigrateBudget int64
	// PageSize is the size of the pages PageNodes counts (0: 4096).
	PageSize int64
	// MemoryCooling holds the PIDs whose memory was moved within their
	// cool-down: their memory is not moved again yet.
	MemoryCooling map[int]bool
}

// Plan is one conflict-free arrangement of the machine: the dedicated CPUs
// of each workload, the shared pool, and per workload the actions that get
// there from the current arrangement.
type Plan struct {
	Dedicated map[string][]int `json:"dedicated"` // workload ID -> its CPUs
	Shared    []int            `json:"shared"`
	Decisions []Decision       `json:"decisions"`
}

// Decision is the part of a plan for one workload.
type Decision struct {
	Workload string             `json:"workload"`
	Name     string             `json:"name"`
	Rule     string             `json:"rule"`
	Genes    map[string]float64 `json:"genes"`
	Want     Want               `json:"want"`
	CPUs     []int              `json:"cpus,omitempty"` // target CPUs; nil leaves placement alone
	Actions  []PlannedAction    `json:"actions"`
	Notes    []string           `json:"notes,omitempty"`
}

// PlannedAction is one HAL action and why.
type PlannedAction struct {
	Action hal.Action `json:"-"`
	Reason string     `json:"reason"`
	// Pages is, for a memory move, how many of the process's pages were
	// off the target node when it was planned.
	Pages int `json:"pages,omitempty"`
}

// MarshalJSON writes the action with its kind discriminator.
func (p PlannedAction) MarshalJSON() ([]byte, error) {
	act, err := hal.MarshalAction(p.Action)
	if err != nil {
		return nil, err
	}
	if p.Pages > 0 {
		return fmt.Appendf(nil, `{"action":%s,"reason":%q,"pages":%d}`, act, p.Reason, p.Pages), nil
	}
	return fmt.Appendf(nil, `{"action":%s,"reason":%q}`, act, p.Reason), nil
}

// MakePlan turns the wanted arrangements of all workloads into one plan for
// this topology. It is a pure function of its input:
//
//   - dedicated requests are served by rule priority, then workloads that
//     already hold matching CPUs (so nothing is re-pinned needlessly), then
//     workload ID; each gets whole cores on one NUMA node where it can,
//     preferring its current CPUs, then the node holding most of its
//     memory, then high CPU numbers (CPU 0 carries most housekeeping);
//   - at least ReserveShared CPUs (>= 1) are never dedicated: they are the
//     shared pool for everything else;
//   - among equals, the workload with the shortest bursts (most voluntary
//     switches per CPU-second) is served first: the server before its
//     load generator;
//   - a request that finds no CPU left stays on the shared CPUs (where
//     batch work is demoted), and the plan says so;
//   - an action is planned only where the current arrangement differs and
//     the machine's capabilities allow it.
func MakePlan(in PlanInput) Plan {
	online := in.Topology.OnlineCPUs()
	reserve := max(in.ReserveShared, 1)
	free := map[int]bool{}
	for _, c := range online {
		free[c] = true
	}
	budget := len(online) - reserve
	p := Plan{Dedicated: map[string][]int{}}

	var ded []int // indexes of dedicated requests
	for i, w := range in.Workloads {
		if w.Match != nil && w.Match.Want.Cores == CoresDedicated {
			ded = append(ded, i)
		}
	}
	holds := func(w *WorkloadState) []int { return currentUniformCPUs(w.Procs) }
	sort.SliceStable(ded, func(a, b int) bool {
		wa, wb := &in.Workloads[ded[a]], &in.Workloads[ded[b]]
		if wa.Match.Priority != wb.Match.Priority {
			return wa.Match.Priority > wb.Match.Priority
		}
		ha, hb := len(holds(wa)) > 0 && len(holds(wa)) < len(online), len(holds(wb)) > 0 && len(holds(wb)) < len(online)
		if ha != hb {
			return ha
		}
		if ra, rb := wakeupsPerCPUSecond(wa.Match), wakeupsPerCPUSecond(wb.Match); ra != rb {
			return ra > rb
		}
		return wa.ID < wb.ID
	})
	notes := map[string][]string{}
	var firstDedicated string
	for _, i := range ded {
		w := &in.Workloads[i]
		n := max(w.Match.Want.Count, 1)
		if n > budget {
			if budget > 0 {
				notes[w.ID] = append(notes[w.ID], fmt.Sprintf("asked for %d dedicated CPUs, %d left (%d kept shared)", n, budget, reserve))
			}
			n = budget
		}
		if n <= 0 {
			if firstDedicated != "" {
				notes[w.ID] = append(notes[w.ID], fmt.Sprintf("no CPU left to dedicate (%d of %d kept shared, %s has CPUs %s): stays on the shared CPUs, where batch work is demoted",
					reserve, len(online), firstDedicated, hal.FormatList(p.Dedicated[firstDedicated])))
			} else {
				notes[w.ID] = append(notes[w.ID], "no CPU can be dedicated on this machine: stays on the shared CPUs")
			}
			continue
		}
		cpus := pickCPUs(in.Topology, free, n, holds(w), pageNodes(w.Procs))
		for _, c := range cpus {
			delete(free, c)
		}
		budget -= len(cpus)
		p.Dedicated[w.ID] = cpus
		if firstDedicated == "" {
			firstDedicated = w.ID
		}
	}
	for _, c := range online {
		if free[c] {
			p.Shared = append(p.Shared, c)
		}
	}
	var allDedicated []int
	for _, cpus := range p.Dedicated {
		allDedicated = append(allDedicated, cpus...)
	}
	slices.Sort(allDedicated)
	allDedicated = slices.Compact(allDedicated)

	multiNode := len(in.Topology.Nodes) > 1
	pageSize := in.PageSize
	if pageSize <= 0 {
		pageSize = 4096
	}
	var migrated int64 // bytes of memory moves planned so far
	irqsMoved := map[int]bool{}
	for i := range in.Workloads {
		w := &in.Workloads[i]
		if w.Match == nil {
			continue
		}
		d := Decision{Workload: w.ID, Name: w.Name, Rule: w.Match.Rule, Genes: w.Match.Genes, Want: w.Match.Want, Notes: notes[w.ID]}
		want := w.Match.Want
		switch want.Cores {
		case CoresDedicated:
			if cpus, ok := p.Dedicated[w.ID]; ok {
				d.CPUs = cpus
			} else {
				d.CPUs = p.Shared
			}
		case CoresShared:
			d.CPUs = p.Shared
		}
		if _, own := p.Dedicated[w.ID]; multiNode && d.CPUs != nil && !own && want.Memory != MemoryInterleave {
			if cpus, why := homeCPUs(in.Topology, d.CPUs, w, want.Memory); cpus != nil {
				d.CPUs = cpus
				d.Notes = append(d.Notes, why)
			}
		}
		var memNodes []int // the node its pages should be on, when they should move
		if multiNode && d.CPUs != nil && (want.Memory == MemoryLocal || want.Memory == MemoryFollowThreads) {
			if nodes := nodesOf(in.Topology, d.CPUs); len(nodes) == 1 {
				memNodes = nodes
			}
		}
		balanced := false
		add := func(a hal.Action, reason string) {
			if cp := in.Caps.For(a); !cp.Supported {
				d.Notes = append(d.Notes, fmt.Sprintf("cannot %s: %s not supported here (%s)", a, a.Kind(), cp.Reason))
				return
			}
			d.Actions = append(d.Actions, PlannedAction{Action: a, Reason: reason})
		}
		viaNRI := w.Container && in.NRI
		if viaNRI && (d.CPUs != nil || want.CPUShare != 0 || want.CPUQuota != 0) {
			d.Notes = append(d.Notes, "CPUs, CPU weight and quota of this container are applied through the container runtime (NRI)")
		}
		for _, ps := range w.Procs {
			if d.CPUs != nil && !viaNRI && !allThreadsOn(ps, d.CPUs) {
				add(hal.PinThreads{PID: ps.PID, CPUs: slices.Clone(d.CPUs)}, fmt.Sprintf("%s: %s CPUs %s", w.Match.Rule, want.Cores, hal.FormatList(d.CPUs)))
			}
			if want.Sched != "" && !schedMatches(ps, want.Sched, want.Nice) {
				reason := fmt.Sprintf("%s: scheduling class %s", w.Match.Rule, want.Sched)
				if want.Nice != nil {
					reason += fmt.Sprintf(", nice %d", *want.Nice)
				}
				add(hal.SetSched{PID: ps.PID, Policy: want.Sched, Nice: want.Nice}, reason)
			}
			if memNodes == nil {
				continue
			}
			threshold := 0.1
			if want.Memory == MemoryFollowThreads {
				threshold = 0.05
			}
			remote := remotePages(ps.PageNodes, memNodes)
			if remote == 0 || remoteFraction(ps.PageNodes, memNodes) <= threshold {
				continue
			}
			bytes := int64(remote) * pageSize
			switch {
			case in.Caps.NUMABalancing.Supported:
				if !balanced {
					balanced = true
					d.Notes = append(d.Notes, fmt.Sprintf("memory %s: the kernel's automatic NUMA balancing owns page placement (%s): no pages moved by sculpt", want.Memory, in.Caps.NUMABalancing.Detail))
				}
			case in.MemoryCooling[ps.PID]:
				d.Notes = append(d.Notes, fmt.Sprintf("memory of pid %d was moved within its cool-down: not moved again yet", ps.PID))
			case in.MigrateBudget > 0 && migrated > 0 && migrated+bytes > in.MigrateBudget:
				d.Notes = append(d.Notes, fmt.Sprintf("memory of pid %d (%.1f MiB off node %d) waits: the migration budget of %.1f MiB per interval is spent", ps.PID, mib(bytes), memNodes[0], mib(in.MigrateBudget)))
			default:
				migrated += bytes
				before := len(d.Actions)
				add(hal.MemMigrate{PID: ps.PID, ToNodes: memNodes, Chunked: true}, fmt.Sprintf("%s: memory %s, %d pages (%.1f MiB) to node %d of its CPUs", w.Match.Rule, want.Memory, remote, mib(bytes), memNodes[0]))
				if len(d.Actions) > before {
					d.Actions[len(d.Actions)-1].Pages = remote
				}
			}
		}
		if (want.CPUShare != 0 || want.CPUQuota != 0) && w.Container && !in.NRI {
			d.Notes = append(d.Notes, fmt.Sprintf("%s not set: sculpt leaves a container's cgroups to its runtime (sculpt run --nri applies them through it)", cpuWhat(want)))
		}
		if (want.CPUShare != 0 || want.CPUQuota != 0) && !w.Container {
			cg, acts, note := cpuCgroupFor(w, want)
			if note != "" {
				d.Notes = append(d.Notes, note)
			}
			for _, a := range acts {
				add(a, fmt.Sprintf("%s: a cpu cgroup of its own, for its CPU weight or quota", w.Match.Rule))
			}
			lim := cpuLimitsOf(w.Procs, cg)
			// An idle cgroup has the kernel's minimal weight, and cpu.shares
			// cannot be written while it is idle (EINVAL): its class is its
			// weight.
			if cg != "" && want.CPUShare != 0 && want.Sched != "idle" && !weightMatches(lim, want.CPUShare) {
				wt := want.CPUShare
				add(hal.SetCgroupCPU{Cgroup: cg, Weight: &wt}, fmt.Sprintf("%s: cpu weight %d", w.Match.Rule, wt))
			}
			// A SCHED_IDLE workload in a cgroup of its own gives way to the
			// tasks outside it only when the group is idle too: the class of
			// tasks counts among siblings, and the group competes as a
			// normal entity (measured: the antagonists' quota cgroups gave a
			// service 2-4x the p99 of the idle class without a cgroup).
			if idle := want.Sched == "idle"; cg != "" && want.Sched != "" && (lim == nil || lim.Idle != idle) && (idle || lim != nil) {
				add(hal.SetCgroupCPU{Cgroup: cg, Idle: &idle}, fmt.Sprintf("%s: cgroup cpu.idle %v, as its class", w.Match.Rule, idle))
			}
			if q, ok := quotaUS(want.CPUQuota, lim); cg != "" && ok {
				reason := fmt.Sprintf("%s: cpu quota %.2f cores", w.Match.Rule, want.CPUQuota)
				if q < 0 {
					reason = fmt.Sprintf("%s: no cpu quota", w.Match.Rule)
				}
				add(hal.SetCgroupCPU{Cgroup: cg, QuotaUS: &q}, reason)
			}
		}
		switch {
		case (want.IOReadMBps != 0 || want.IOWriteMBps != 0) && w.Container:
			d.Notes = append(d.Notes, "block I/O caps not set: sculpt leaves a container's cgroups to its runtime")
		case want.IOReadMBps != 0 || want.IOWriteMBps != 0:
			ioCaps(w, want, in.Topology, &d, add)
		}
		if want.IRQs == IRQsAway && want.Cores == CoresDedicated && len(p.Shared) > 0 {
			if cpus, ok := p.Dedicated[w.ID]; ok {
				for _, irq := range in.Topology.IRQs {
					if irq.Number < 0 || in.FixedIRQs[irq.Number] || irqsMoved[irq.Number] || len(irq.SMPAffinity) == 0 {
						continue
					}
					if !intersects(irq.SMPAffinity, cpus) {
						continue
					}
					to := subtract(topology.IntersectCPUs(irq.SMPAffinity, online), allDedicated)
					if len(to) == 0 {
						to = slices.Clone(p.Shared)
					}
					irqsMoved[irq.Number] = true
					add(hal.IRQAffinity{IRQ: irq.Number, CPUs: to}, fmt.Sprintf("%s: interrupts away from dedicated CPUs %s", w.Match.Rule, hal.FormatList(cpus)))
				}
			}
		}
		p.Decisions = append(p.Decisions, d)
	}
	return p
}

// wakeupsPerCPUSecond is ctx_vol_rate / cpu_util from the genes the rule
// read (0 when it read neither).
func wakeupsPerCPUSecond(m *Match) float64 {
	v, ok1 := m.Genes["ctx_vol_rate"]
	c, ok2 := m.Genes["cpu_util"]
	if !ok1 || !ok2 {
		return 0
	}
	return v / max(c, 0.01)
}

// pickCPUs chooses n free CPUs: the ones it holds now if they fit, else
// whole cores on the NUMA node holding most of its pages (or with most free
// CPUs), highest CPU numbers first.
func pickCPUs(t *topology.Topology, free map[int]bool, n int, holding []int, pages map[int]int) []int {
	if len(holding) == n && allFree(free, holding) {
		return slices.Clone(holding)
	}
	byNode := map[int][]int{}
	for c := range free {
		byNode[t.NodeOfCPU(c)] = append(byNode[t.NodeOfCPU(c)], c)
	}
	nodes := make([]int, 0, len(byNode))
	for nd := range byNode {
		nodes = append(nodes, nd)
	}
	sort.Slice(nodes, func(i, j int) bool {
		a, b := nodes[i], nodes[j]
		fa, fb := len(byNode[a]) >= n, len(byNode[b]) >= n
		if fa != fb {
			return fa
		}
		if pages[a] != pages[b] {
			return pages[a] > pages[b]
		}
		if len(byNode[a]) != len(byNode[b]) {
			return len(byNode[a]) > len(byNode[b])
		}
		return a < b
	})
	var out []int
	for _, nd := range nodes {
		cs := byNode[nd]
		// Whole cores first: a core all of whose siblings are free.
		sort.Sort(sort.Reverse(sort.IntSlice(cs)))
		taken := map[int]bool{}
		for _, c := range cs {
			if len(out) >= n || taken[c] {
				continue
			}
			sib := siblingsOf(t, c)
			if len(sib) > 1 && allFree(free, sib) && n-len(out) >= len(sib) {
				for _, s := range sib {
					taken[s] = true
				}
				out = append(out, sib...)
			}
		}
		for _, c := range cs {
			if len(out) >= n {
				break
			}
			if !taken[c] {
				taken[c] = true
				out = append(out, c)
			}
		}
		if len(out) >= n {
			break
		}
	}
	slices.Sort(out)
	return out
}

func siblingsOf(t *topology.Topology, c int) []int {
	if cpu := t.CPU(c); cpu != nil && len(cpu.ThreadSiblings) > 0 {
		return cpu.ThreadSiblings
	}
	return []int{c}
}

func allFree(free map[int]bool, cpus []int) bool {
	for _, c := range cpus {
		if !free[c] {
			return false
		}
	}
	return len(cpus) > 0
}

// currentUniformCPUs returns the CPUs every thread of every process is
// allowed now, or nil when they differ.
func currentUniformCPUs(procs []hal.ProcessState) []int {
	var first []int
	for _, p := range procs {
		for _, t := range p.Threads {
			if first == nil {
				first = t.CPUs
			} else if !slices.Equal(first, t.CPUs) {
				return nil
			}
		}
	}
	return first
}

func allThreadsOn(p hal.ProcessState, cpus []int) bool {
	for _, t := range p.Threads {
		if !slices.Equal(sortedCopy(t.CPUs), cpus) {
			return false
		}
	}
	return true
}

func schedMatches(p hal.ProcessState, policy string, nice *int) bool {
	for _, t := range p.Threads {
		if t.Policy != policy || (nice != nil && t.Nice != *nice) {
			return false
		}
	}
	return true
}

func sortedCopy(l []int) []int {
	s := slices.Clone(l)
	slices.Sort(s)
	return s
}

func pageNodes(procs []hal.ProcessState) map[int]int {
	out := map[int]int{}
	for _, p := range procs {
		for n, c := range p.PageNodes {
			out[n] += c
		}
	}
	return out
}

func nodesOf(t *topology.Topology, cpus []int) []int {
	var out []int
	for _, c := range cpus {
		if n := t.NodeOfCPU(c); n >= 0 && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// remotePages counts the pages not on the local nodes.
func remotePages(pages map[int]int, local []int) int {
	n := 0
	for nd, c := range pages {
		if !slices.Contains(local, nd) {
			n += c
		}
	}
	return n
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// homeCPUs narrows the shared CPUs a workload may run on, on a machine with
// several NUMA nodes, to the node(s) it lives on, so that the shared pool
// does not spread it over every node and away from its memory: the nodes
// its threads are confined to now, else the node holding most of its
// pages. With memory: local, its memory's node comes first (moving threads
// moves no pages). It returns nil when neither is known or has no shared
// CPU, with a note saying which node was chosen.
func homeCPUs(t *topology.Topology, shared []int, w *WorkloadState, memory string) ([]int, string) {
	var threadNodes, memNode []int
	if cur := currentUniformCPUs(w.Procs); len(cur) > 0 {
		if nodes := nodesOf(t, cur); len(nodes) < len(t.Nodes) {
			threadNodes = nodes
		}
	}
	pages := pageNodes(w.Procs)
	total, best, bestN := 0, -1, 0
	for nd, c := range pages {
		total += c
		if c > bestN || (c == bestN && nd < best) {
			best, bestN = nd, c
		}
	}
	if best >= 0 && 2*bestN > total {
		memNode = []int{best}
	}
	type cand struct {
		nodes []int
		why   string
	}
	cands := []cand{{threadNodes, "where its threads run"}, {memNode, "where most of its memory is"}}
	if memory == MemoryLocal {
		cands[0], cands[1] = cands[1], cands[0]
	}
	for _, c := range cands {
		if c.nodes == nil {
			continue
		}
		var cpus []int
		for _, cpu := range shared {
			if slices.Contains(c.nodes, t.NodeOfCPU(cpu)) {
				cpus = append(cpus, cpu)
			}
		}
		if len(cpus) > 0 {
			return cpus, fmt.Sprintf("shared CPUs %s of node %s, %s", hal.FormatList(cpus), hal.FormatList(c.nodes), c.why)
		}
	}
	return nil, ""
}

func remoteFraction(pages map[int]int, local []int) float64 {
	var tot, remote int
	for n, c := range pages {
		tot += c
		if !slices.Contains(local, n) {
			remote += c
		}
	}
	if tot == 0 {
		return 0
	}
	return float64(remote) / float64(tot)
}

// SculptCgroup is the cpu cgroup sculpt makes for a workload that has none
// of its own (a process tree, programs started from a shell), to set its
// CPU weight or quota: a child of the hierarchy's root, where such
// processes sit, named after the workload's ID.
func SculptCgroup(id string) string {
	b := []byte(workload.SculptCgroupPrefix)
	for _, c := range []byte(id) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_':
			b = append(b, c)
		default:
			b = append(b, '-')
		}
	}
	return string(b)
}

// cpuCgroupFor returns the cgroup whose CPU weight and quota are w's: its
// own, or SculptCgroup(w.ID), with the actions that create it and move w's
// processes into it (cgroup v1's cpu hierarchy only: in v2 a move would
// take a process's memory and I/O accounting along). A want that only
// lifts a quota (CPUQuota < 0) makes no cgroup: with none there is no
// quota to lift.
func cpuCgroupFor(w *WorkloadState, want Want) (string, []hal.Action, string) {
	return cgroupFor(w, "cpu", w.CPUCgroup, want.CPUShare == 0 && want.CPUQuota < 0, cpuWhat(want))
}

// cgroupFor returns w's cgroup in controller ctrl's v1 hierarchy: own if it
// has one, else SculptCgroup(w.ID), with the actions that create it and
// move w's processes in. liftOnly: the want only lifts a limit, so no
// cgroup is made for it. A note says why nothing can be done (what: the
// setting).
func cgroupFor(w *WorkloadState, ctrl, own string, liftOnly bool, what string) (string, []hal.Action, string) {
	if own != "" {
		return own, nil, ""
	}
	cg := SculptCgroup(w.ID)
	in := 0
	for _, ps := range w.Procs {
		if _, v1 := ps.Cgroups[ctrl]; !v1 {
			return "", nil, fmt.Sprintf("%s not set: the workload has no %s cgroup of its own, and the %s controller is in cgroup v2 (sculpt moves processes between v1 %s cgroups only)", what, ctrl, ctrl, ctrl)
		}
		if ps.Cgroups[ctrl] == cg {
			in++
		}
	}
	if liftOnly && in == 0 {
		return "", nil, ""
	}
	var acts []hal.Action
	if in == 0 && len(w.Procs) > 0 {
		acts = append(acts, hal.CreateCgroup{Cgroup: cg, Controllers: []string{ctrl}})
	}
	for _, ps := range w.Procs {
		if ps.Cgroups[ctrl] != cg {
			acts = append(acts, hal.MoveToCgroup{PID: ps.PID, Cgroup: cg, Controllers: []string{ctrl}})
		}
	}
	return cg, acts, ""
}

// ioCaps plans w's block I/O caps on every disk of the machine: its blkio
// cgroup (made when it has none of its own) and a cap per disk whose
// current cap differs. -1 MB/s lifts a cap.
func ioCaps(w *WorkloadState, want Want, t *topology.Topology, d *Decision, add func(hal.Action, string)) {
	what := fmt.Sprintf("block I/O cap (read %s, write %s)", mbpsText(want.IOReadMBps), mbpsText(want.IOWriteMBps))
	if t == nil || len(t.Disks) == 0 {
		d.Notes = append(d.Notes, what+" not set: no disk found under /sys/block")
		return
	}
	lift := want.IOReadMBps <= 0 && want.IOWriteMBps <= 0
	cg, acts, note := cgroupFor(w, "blkio", w.BlkioCgroup, lift, what)
	if note != "" {
		d.Notes = append(d.Notes, note)
	}
	for _, a := range acts {
		add(a, fmt.Sprintf("%s: a blkio cgroup of its own, for its I/O caps", w.Match.Rule))
	}
	if cg == "" {
		return
	}
	var cur map[string]hal.BlkioRate
	for _, ps := range w.Procs {
		if ps.Blkio != nil && ps.Blkio.Cgroup == cg {
			cur = ps.Blkio.Caps
			break
		}
	}
	for _, disk := range t.Disks {
		r, wr := bpsOf(want.IOReadMBps, cur[disk.Dev].ReadBPS), bpsOf(want.IOWriteMBps, cur[disk.Dev].WriteBPS)
		if (hal.BlkioRate{ReadBPS: r, WriteBPS: wr}) == cur[disk.Dev] {
			continue
		}
		add(hal.BlkioLimit{Cgroup: cg, Device: disk.Dev, ReadBPS: r, WriteBPS: wr},
			fmt.Sprintf("%s: block I/O on %s: read %s, write %s", w.Match.Rule, disk.Name, mbpsText(want.IOReadMBps), mbpsText(want.IOWriteMBps)))
	}
}

// bpsOf is the cap in bytes/s for mbps (0 keeps cur, < 0 lifts it).
func bpsOf(mbps float64, cur uint64) uint64 {
	switch {
	case mbps == 0:
		return cur
	case mbps < 0:
		return 0
	}
	return uint64(mbps * 1e6)
}

func mbpsText(v float64) string {
	switch {
	case v == 0:
		return "as is"
	case v < 0:
		return "unlimited"
	}
	return fmt.Sprintf("%.1f MB/s", v)
}

func cpuWhat(w Want) string {
	switch {
	case w.CPUShare != 0 && w.CPUQuota > 0:
		return fmt.Sprintf("cpu_share %d and cpu_quota %.2f", w.CPUShare, w.CPUQuota)
	case w.CPUShare != 0:
		return fmt.Sprintf("cpu_share %d", w.CPUShare)
	}
	return fmt.Sprintf("cpu_quota %.2f", w.CPUQuota)
}

// cpuLimitsOf returns cgroup cg's CPU settings as a process of the
// workload in it reports them (nil when none is in it yet).
func cpuLimitsOf(procs []hal.ProcessState, cg string) *hal.CPULimits {
	for _, p := range procs {
		if p.CPU != nil && p.CPU.Cgroup == cg {
			return p.CPU
		}
	}
	return nil
}

// quotaUS is the cpu quota (µs per period) for cores of CPU time, -1 for
// no limit (cores < 0), and whether it differs from what lim has (a new
// cgroup has no limit).
func quotaUS(cores float64, lim *hal.CPULimits) (int64, bool) {
	if cores == 0 {
		return 0, false
	}
	period := uint64(100000)
	cur := int64(-1)
	if lim != nil {
		cur = lim.QuotaUS
		if lim.PeriodUS != 0 {
			period = lim.PeriodUS
		}
	}
	q := int64(-1)
	if cores > 0 {
		q = max(int64(cores*float64(period)), 1000)
	}
	return q, q != cur
}

// weightMatches says whether the cgroup with limits lim already has
// weight w (v2 cpu.weight, or v1 cpu.shares converted the way the backend
// converts a weight).
func weightMatches(lim *hal.CPULimits, w uint64) bool {
	switch {
	case lim == nil:
		return false
	case lim.Weight != 0:
		return lim.Weight == w
	case lim.Shares != 0:
		return lim.Shares == sharesFromWeight(w)
	}
	return false
}

// sharesFromWeight converts a cgroup v2 weight to v1 cpu.shares as the
// kernel (and the Linux backend) do.
func sharesFromWeight(w uint64) uint64 { return 2 + (w-1)*262142/9999 }
func intersects(a, b []int) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func subtract(a, b []int) []int {
	var out []int
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
