package engine

import (
	"slices"
	"strings"
	"testing"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
)

// vm2x2 is the guest of test/vm: 2 NUMA nodes of 2 CPUs each (CPUs 0-1 on
// node 0, 2-3 on node 1), no SMT.
func vm2x2() *topology.Topology {
	t := &topology.Topology{}
	for c := 0; c < 4; c++ {
		t.CPUs = append(t.CPUs, topology.CPU{ID: c, Online: true, CoreID: c, Node: c / 2, ThreadSiblings: []int{c}})
	}
	t.Nodes = []topology.Node{{ID: 0, CPUs: []int{0, 1}, Distances: []int{10, 20}}, {ID: 1, CPUs: []int{2, 3}, Distances: []int{20, 10}}}
	return t
}

func memCaps(balancing bool) hal.Capabilities {
	c := allCaps()
	if balancing {
		c.NUMABalancing = hal.Yes("kernel.numa_balancing is 1")
	} else {
		c.NUMABalancing = hal.No("kernel.numa_balancing is 0")
	}
	return c
}

// memWorkload is a one-process workload whose threads may run on cpus and
// whose pages are spread as pages says.
func memWorkload(id string, pid int, cpus []int, pages map[int]int, w Want) WorkloadState {
	ps := proc(pid, cpus, "other", 0)
	ps.PageNodes = pages
	return WorkloadState{ID: id, PIDs: []int{pid}, Match: match("r", 10, w), Procs: []hal.ProcessState{ps}}
}

func migrationsOf(p Plan, id string) []hal.MemMigrate {
	var out []hal.MemMigrate
	for _, a := range actionsOf(p, id) {
		if m, ok := a.(hal.MemMigrate); ok {
			out = append(out, m)
		}
	}
	return out
}

// The scenario: two memory-bound programs on node 0's CPUs, one
// with its pages on node 0, one with them on node 1. With memory:
// follow-threads the remote one's pages move to node 0 and both stay on
// node 0's CPUs; the shared pool no longer spreads them over both nodes.
func TestPlanFollowThreadsMovesRemotePagesOnly(t *testing.T) {
	want := Want{Cores: CoresShared, Sched: "batch", Memory: MemoryFollowThreads}
	ws := []WorkloadState{
		memWorkload("local", 100, []int{0, 1}, map[int]int{0: 49152}, want),
		memWorkload("remote", 200, []int{0, 1}, map[int]int{1: 49000, 0: 152}, want),
	}
	p := MakePlan(PlanInput{Topology: vm2x2(), Caps: memCaps(false), ReserveShared: 1, Workloads: ws})
	for _, id := range []string{"local", "remote"} {
		if d := decisionOf(p, id); d == nil || !slices.Equal(d.CPUs, []int{0, 1}) {
			t.Errorf("%s: CPUs %v, want node 0's 0-1 (where its threads run)", id, d.CPUs)
		}
		for _, a := range actionsOf(p, id) {
			if _, ok := a.(hal.PinThreads); ok {
				t.Errorf("%s: re-pinned though already on node 0: %v", id, a)
			}
		}
	}
	if m := migrationsOf(p, "local"); len(m) != 0 {
		t.Errorf("local: memory moved though local: %v", m)
	}
	m := migrationsOf(p, "remote")
	if len(m) != 1 || m[0].PID != 200 || !slices.Equal(m[0].ToNodes, []int{0}) || !m[0].Chunked {
		t.Fatalf("remote: migrations %+v, want one chunked move of pid 200 to node 0", m)
	}
	for _, a := range decisionOf(p, "remote").Actions {
		if _, ok := a.Action.(hal.MemMigrate); ok && a.Pages != 49000 {
			t.Errorf("planned move counts %d pages, want the 49000 off node 0", a.Pages)
		}
	}
}

// With the kernel's automatic NUMA balancing on, sculpt moves no pages and
// says who owns page placement.
func TestPlanLeavesPagesToKernelBalancing(t *testing.T) {
	ws := []WorkloadState{memWorkload("remote", 200, []int{0, 1}, map[int]int{1: 49000}, Want{Cores: CoresShared, Memory: MemoryFollowThreads})}
	p := MakePlan(PlanInput{Topology: vm2x2(), Caps: memCaps(true), ReserveShared: 1, Workloads: ws})
	if m := migrationsOf(p, "remote"); len(m) != 0 {
		t.Errorf("memory moved though the kernel balances it: %v", m)
	}
	d := decisionOf(p, "remote")
	if !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, "automatic NUMA balancing owns page placement") }) {
		t.Errorf("notes %q do not say the kernel owns page placement", d.Notes)
	}
}

// memory: local on shared CPUs moves the threads to the memory (no bytes
// move); without a memory rule a batch workload that may run anywhere is
// kept on the node holding its memory rather than spread over both.
func TestPlanSharedPoolKeepsLocality(t *testing.T) {
	all := []int{0, 1, 2, 3}
	ws := []WorkloadState{
		memWorkload("loc", 100, []int{0, 1}, map[int]int{1: 1000}, Want{Cores: CoresShared, Memory: MemoryLocal}),
		memWorkload("any", 200, all, map[int]int{1: 900, 0: 100}, Want{Cores: CoresShared, Sched: "batch"}),
		memWorkload("stream", 300, []int{2, 3}, map[int]int{1: 1000}, Want{Cores: CoresShared, Memory: MemoryInterleave}),
	}
	p := MakePlan(PlanInput{Topology: vm2x2(), Caps: memCaps(false), ReserveShared: 1, Workloads: ws})
	if d := decisionOf(p, "loc"); !slices.Equal(d.CPUs, []int{2, 3}) || len(migrationsOf(p, "loc")) != 0 {
		t.Errorf("local: CPUs %v, migrations %v; want its threads moved to node 1's CPUs 2-3 and no page moved", d.CPUs, migrationsOf(p, "loc"))
	}
	if d := decisionOf(p, "any"); !slices.Equal(d.CPUs, []int{2, 3}) {
		t.Errorf("batch: CPUs %v, want node 1's 2-3 (where 90%% of its memory is)", d.CPUs)
	}
	if d := decisionOf(p, "stream"); !slices.Equal(d.CPUs, all) {
		t.Errorf("interleave: CPUs %v, want all shared CPUs %v", d.CPUs, all)
	}
	// A workload of a single-node machine keeps the whole pool.
	single := []WorkloadState{memWorkload("any", 200, []int{0}, map[int]int{0: 10}, Want{Cores: CoresShared})}
	if d := decisionOf(MakePlan(PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: single}), "any"); !slices.Equal(d.CPUs, []int{0, 1}) {
		t.Errorf("one node: CPUs %v, want the whole pool 0-1", d.CPUs)
	}
}

// The migration budget spreads moves over intervals (the first move of a
// plan goes even when larger), and a PID whose memory moved within its
// cool-down is not moved again.
func TestPlanMigrationBudgetAndCooldown(t *testing.T) {
	want := Want{Cores: CoresShared, Memory: MemoryFollowThreads}
	ws := []WorkloadState{
		memWorkload("a", 100, []int{0, 1}, map[int]int{1: 25600}, want), // 100 MiB
		memWorkload("b", 200, []int{0, 1}, map[int]int{1: 25600}, want),
	}
	in := PlanInput{Topology: vm2x2(), Caps: memCaps(false), ReserveShared: 1, Workloads: ws, MigrateBudget: 64 << 20, PageSize: 4096}
	p := MakePlan(in)
	if len(migrationsOf(p, "a")) != 1 || len(migrationsOf(p, "b")) != 0 {
		t.Errorf("budget 64 MiB: moves a=%v b=%v, want a's alone", migrationsOf(p, "a"), migrationsOf(p, "b"))
	}
	if d := decisionOf(p, "b"); !slices.ContainsFunc(d.Notes, func(n string) bool { return strings.Contains(n, "budget") }) {
		t.Errorf("b's notes %q do not say it waits for the budget", d.Notes)
	}
	in.MigrateBudget = 256 << 20
	if p := MakePlan(in); len(migrationsOf(p, "b")) != 1 {
		t.Errorf("budget 256 MiB: b not moved: %v", p.Decisions)
	}
	in.MemoryCooling = map[int]bool{100: true}
	p = MakePlan(in)
	if len(migrationsOf(p, "a")) != 0 || len(migrationsOf(p, "b")) != 1 {
		t.Errorf("a cooling: moves a=%v b=%v, want b's only", migrationsOf(p, "a"), migrationsOf(p, "b"))
	}
}
