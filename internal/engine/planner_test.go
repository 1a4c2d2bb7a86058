package engine

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

// vm2 is this development VM: 2 CPUs, one core each, one node, a virtio
// NIC interrupt on both CPUs and a timer line (named, never moved).
func vm2() *topology.Topology {
	return &topology.Topology{
		CPUs: []topology.CPU{
			{ID: 0, Online: true, CoreID: 0, PackageID: 0, Node: 0, ThreadSiblings: []int{0}},
			{ID: 1, Online: true, CoreID: 1, PackageID: 0, Node: 0, ThreadSiblings: []int{1}},
		},
		Nodes: []topology.Node{{ID: 0, CPUs: []int{0, 1}, Distances: []int{10}}},
		IRQs: []topology.IRQ{
			{IRQ: "LOC", Number: -1},
			{IRQ: "24", Number: 24, SMPAffinity: []int{0, 1}, Actions: []string{"virtio0-input.0"}},
			{IRQ: "25", Number: 25, SMPAffinity: []int{0}, Actions: []string{"virtio0-output.0"}},
		},
	}
}

// twoSocket4Node is a 2-socket machine, 4 NUMA nodes, 8 cores per node with
// 2 hardware threads each (64 CPUs): node n holds cores 8n..8n+7, CPU c and
// c+32 are siblings.
func twoSocket4Node() *topology.Topology {
	t := &topology.Topology{}
	for c := 0; c < 64; c++ {
		core := c % 32
		node := core / 8
		t.CPUs = append(t.CPUs, topology.CPU{ID: c, Online: true, CoreID: core % 16, PackageID: core / 16, Node: node, ThreadSiblings: []int{core, core + 32}})
	}
	for n := 0; n < 4; n++ {
		var cpus []int
		for c := 8 * n; c < 8*n+8; c++ {
			cpus = append(cpus, c, c+32)
		}
		slices.Sort(cpus)
		t.Nodes = append(t.Nodes, topology.Node{ID: n, CPUs: cpus, Distances: []int{10, 12, 20, 20}})
	}
	return t
}

func allCaps() hal.Capabilities {
	y := hal.Yes("test")
	return hal.Capabilities{Pin: y, Sched: y, Cpuset: y, CPUWeight: y, CPUQuota: y, Cgroups: y, MemBind: y, MemMigrate: y, IRQAffinity: y}
}

func proc(pid int, cpus []int, policy string, nice int, threads ...int) hal.ProcessState {
	ps := hal.ProcessState{PID: pid}
	if len(threads) == 0 {
		threads = []int{pid}
	}
	for _, tid := range threads {
		ps.Threads = append(ps.Threads, hal.ThreadState{TID: tid, CPUs: slices.Clone(cpus), Policy: policy, Nice: nice})
	}
	return ps
}

func match(rule string, prio int, w Want) *Match {
	return &Match{Rule: rule, Priority: prio, Want: w, Genes: map[string]float64{"cpu_util": 0.5}}
}

var (
	dedicated1 = Want{Cores: CoresDedicated, Count: 1, Sched: "other", IRQs: IRQsAway}
	batch      = Want{Cores: CoresShared, Sched: "batch", Nice: ptr(10)}
)

func ptr[T any](v T) *T { return &v }

func actionsOf(p Plan, id string) []hal.Action {
	for _, d := range p.Decisions {
		if d.Workload == id {
			var out []hal.Action
			for _, a := range d.Actions {
				out = append(out, a.Action)
			}
			return out
		}
	}
	return nil
}

func decisionOf(p Plan, id string) *Decision {
	for i := range p.Decisions {
		if p.Decisions[i].Workload == id {
			return &p.Decisions[i]
		}
	}
	return nil
}

func TestPlanVMServiceAndAntagonist(t *testing.T) {
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "svc", PIDs: []int{100}, Match: match("latency-critical-service", 100, dedicated1), Procs: []hal.ProcessState{proc(100, []int{0, 1}, "other", 0, 100, 101)}},
		{ID: "hog", PIDs: []int{200, 201}, Match: match("cpu-bound-batch", 50, batch), Procs: []hal.ProcessState{proc(200, []int{0, 1}, "other", 0), proc(201, []int{0, 1}, "other", 0)}},
	}}
	p := MakePlan(in)
	if got := p.Dedicated["svc"]; !slices.Equal(got, []int{1}) {
		t.Fatalf("service dedicated CPUs %v, want [1] (CPU 0 stays shared)", got)
	}
	if !slices.Equal(p.Shared, []int{0}) {
		t.Fatalf("shared pool %v, want [0]", p.Shared)
	}
	svc := actionsOf(p, "svc")
	wantSvc := []hal.Action{hal.PinThreads{PID: 100, CPUs: []int{1}}, hal.IRQAffinity{IRQ: 24, CPUs: []int{0}}}
	if len(svc) != len(wantSvc) {
		t.Fatalf("service actions %v, want %v", svc, wantSvc)
	}
	for i := range wantSvc {
		if svc[i].String() != wantSvc[i].String() {
			t.Errorf("service action %d: %v, want %v", i, svc[i], wantSvc[i])
		}
	}
	hog := actionsOf(p, "hog")
	if len(hog) != 4 {
		t.Fatalf("antagonist actions %v, want pin+sched for each of 2 processes", hog)
	}
	for _, a := range hog {
		switch a := a.(type) {
		case hal.PinThreads:
			if !slices.Equal(a.CPUs, []int{0}) {
				t.Errorf("antagonist pinned to %v, want the shared CPU 0", a.CPUs)
			}
		case hal.SetSched:
			if a.Policy != "batch" || a.Nice == nil || *a.Nice != 10 {
				t.Errorf("antagonist sched %v", a)
			}
		default:
			t.Errorf("unexpected antagonist action %v", a)
		}
	}
	// The IRQ only on CPU 0 is not touched.
	for _, a := range svc {
		if irq, ok := a.(hal.IRQAffinity); ok && irq.IRQ == 25 {
			t.Errorf("IRQ 25 (already off CPU 1) moved")
		}
	}
}

func TestPlanChangesNothingThatAlreadyMatches(t *testing.T) {
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "svc", PIDs: []int{100}, Match: match("l", 100, Want{Cores: CoresDedicated, Count: 1, Sched: "other"}), Procs: []hal.ProcessState{proc(100, []int{0}, "other", 0)}},
		{ID: "hog", PIDs: []int{200}, Match: match("b", 50, batch), Procs: []hal.ProcessState{proc(200, []int{1}, "batch", 10)}},
	}}
	p := MakePlan(in)
	// The service already holds CPU 0 alone: it keeps it (no re-pin to 1).
	if !slices.Equal(p.Dedicated["svc"], []int{0}) {
		t.Errorf("service moved to %v though CPU 0 was its own and free", p.Dedicated["svc"])
	}
	if a := actionsOf(p, "svc"); len(a) != 0 {
		t.Errorf("service actions %v, want none", a)
	}
	if a := actionsOf(p, "hog"); len(a) != 0 {
		t.Errorf("antagonist actions %v, want none", a)
	}
}

func TestPlanTwoServicesOnTwoCPUs(t *testing.T) {
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "b-svc", PIDs: []int{300}, Match: match("l", 100, dedicated1), Procs: []hal.ProcessState{proc(300, []int{0, 1}, "other", 0)}},
		{ID: "a-svc", PIDs: []int{100}, Match: match("l", 100, dedicated1), Procs: []hal.ProcessState{proc(100, []int{0, 1}, "other", 0)}},
		{ID: "hog", PIDs: []int{200}, Match: match("b", 50, batch), Procs: []hal.ProcessState{proc(200, []int{0, 1}, "other", 0)}},
	}}
	p := MakePlan(in)
	if len(p.Shared) != 1 {
		t.Fatalf("shared pool %v: one CPU must stay shared", p.Shared)
	}
	// a-svc comes first by ID and gets CPU 1 alone; b-svc finds none left
	// and stays on the shared CPU, and says so.
	if !slices.Equal(p.Dedicated["a-svc"], []int{1}) {
		t.Fatalf("dedicated %v", p.Dedicated)
	}
	if _, ok := p.Dedicated["b-svc"]; ok {
		t.Fatalf("b-svc got dedicated CPUs %v with none left", p.Dedicated["b-svc"])
	}
	if d := decisionOf(p, "b-svc"); d == nil || len(d.Notes) == 0 || !slices.Equal(d.CPUs, []int{0}) {
		t.Errorf("b-svc decision %+v: want the shared CPU 0 and a note saying why", d)
	}
	for _, c := range p.Dedicated["a-svc"] {
		if slices.Contains(p.Shared, c) {
			t.Errorf("CPU %d both dedicated and shared", c)
		}
	}
	// Shorter bursts win among equals: the server before its client.
	in.Workloads[0].Match = &Match{Rule: "l", Priority: 100, Want: dedicated1, Genes: map[string]float64{"cpu_util": 0.4, "ctx_vol_rate": 40000}}
	in.Workloads[1].Match = &Match{Rule: "l", Priority: 100, Want: dedicated1, Genes: map[string]float64{"cpu_util": 0.4, "ctx_vol_rate": 4000}}
	if p := MakePlan(in); !slices.Equal(p.Dedicated["b-svc"], []int{1}) {
		t.Errorf("the workload with 10x the wake-ups per CPU-second did not get the CPU: %v", p.Dedicated)
	}
	in.Workloads[0].Match, in.Workloads[1].Match = match("l", 100, dedicated1), match("l", 100, dedicated1)
	// A service already holding CPU 1 keeps it even if its ID sorts later.
	in.Workloads[0].Procs = []hal.ProcessState{proc(300, []int{1}, "other", 0)}
	p = MakePlan(in)
	if !slices.Equal(p.Dedicated["b-svc"], []int{1}) || len(actionsOf(p, "b-svc")) != 1 || len(p.Dedicated) != 1 { // only the IRQ
		t.Errorf("holder lost its CPU: dedicated %v, actions %v", p.Dedicated, actionsOf(p, "b-svc"))
	}
	// Higher priority wins regardless.
	in.Workloads[1].Match = match("l", 200, dedicated1)
	p = MakePlan(in)
	if !slices.Equal(p.Dedicated["a-svc"], []int{1}) {
		t.Errorf("higher priority did not win: %v", p.Dedicated)
	}
}

func TestPlanNeverGivesAwayAllCPUs(t *testing.T) {
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "svc", PIDs: []int{100}, Match: match("l", 100, Want{Cores: CoresDedicated, Count: 8}), Procs: []hal.ProcessState{proc(100, []int{0, 1}, "other", 0)}},
	}}
	p := MakePlan(in)
	if len(p.Dedicated["svc"]) != 1 || len(p.Shared) != 1 {
		t.Fatalf("dedicated %v shared %v: want 1 and 1", p.Dedicated, p.Shared)
	}
	in.ReserveShared = 0 // still at least one
	if p := MakePlan(in); len(p.Shared) != 1 {
		t.Fatalf("reserve 0 left shared %v", p.Shared)
	}
}

func TestPlanTwoSocketWholeCoresOnOneNode(t *testing.T) {
	topo := twoSocket4Node()
	var ws []WorkloadState
	// Four services of 4 CPUs each; service s has its memory on node s.
	for s := 0; s < 4; s++ {
		ps := proc(1000+s, topo.OnlineCPUs(), "other", 0)
		ps.PageNodes = map[int]int{s: 1000}
		ws = append(ws, WorkloadState{ID: string(rune('a' + s)), PIDs: []int{1000 + s}, Match: match("l", 100, Want{Cores: CoresDedicated, Count: 4, Memory: MemoryLocal}), Procs: []hal.ProcessState{ps}})
	}
	p := MakePlan(PlanInput{Topology: topo, Caps: allCaps(), ReserveShared: 1, Workloads: ws})
	seen := map[int]string{}
	for s := 0; s < 4; s++ {
		id := string(rune('a' + s))
		cpus := p.Dedicated[id]
		if len(cpus) != 4 {
			t.Fatalf("%s got %v, want 4 CPUs", id, cpus)
		}
		for _, c := range cpus {
			if topo.NodeOfCPU(c) != s {
				t.Errorf("%s got CPU %d on node %d, want node %d (where its memory is)", id, c, topo.NodeOfCPU(c), s)
			}
			if prev, ok := seen[c]; ok {
				t.Errorf("CPU %d given to %s and %s", c, prev, id)
			}
			seen[c] = id
			// whole cores: the sibling is in the set too
			sib := topo.CPU(c).ThreadSiblings
			for _, x := range sib {
				if !slices.Contains(cpus, x) {
					t.Errorf("%s has CPU %d without its sibling %d", id, c, x)
				}
			}
		}
	}
	if len(p.Shared) != 64-16 {
		t.Errorf("shared pool has %d CPUs, want 48", len(p.Shared))
	}
	// Memory already local: no migration planned.
	for _, d := range p.Decisions {
		for _, a := range d.Actions {
			if _, ok := a.Action.(hal.MemMigrate); ok {
				t.Errorf("%s: migration planned though memory is local: %v", d.Workload, a.Action)
			}
		}
	}
	// Memory on a remote node: migrate (chunked) to the node of its CPUs.
	ws[0].Procs[0].PageNodes = map[int]int{3: 700, 0: 300}
	ws = ws[:1]
	p = MakePlan(PlanInput{Topology: topo, Caps: allCaps(), ReserveShared: 1, Workloads: ws})
	nodes := nodesOf(topo, p.Dedicated["a"])
	var mig *hal.MemMigrate
	for _, a := range actionsOf(p, "a") {
		if m, ok := a.(hal.MemMigrate); ok {
			mig = &m
		}
	}
	if mig == nil || !slices.Equal(mig.ToNodes, nodes) || !mig.Chunked {
		t.Errorf("migration %+v, want chunked to nodes %v", mig, nodes)
	}
}

func TestPlanRespectsCapabilities(t *testing.T) {
	caps := allCaps()
	caps.Sched = hal.No("test: no sched")
	caps.IRQAffinity = hal.No("test: no irq")
	in := PlanInput{Topology: vm2(), Caps: caps, ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "svc", PIDs: []int{100}, Match: match("l", 100, dedicated1), Procs: []hal.ProcessState{proc(100, []int{0, 1}, "batch", 0)}},
	}}
	p := MakePlan(in)
	for _, a := range actionsOf(p, "svc") {
		if a.Kind() == "sched" || a.Kind() == "irq" {
			t.Errorf("planned %v though unsupported", a)
		}
	}
	if d := decisionOf(p, "svc"); len(d.Notes) < 2 {
		t.Errorf("notes %v: want the unsupported families said", d.Notes)
	}
}

func TestPlanCPUShareNeedsOwnCgroup(t *testing.T) {
	w := Want{Cores: CoresShared, CPUShare: 20}
	ps := proc(200, []int{0, 1}, "other", 0) // no one dedicated: the shared pool is every CPU
	ps.CPU = &hal.CPULimits{Cgroup: "/batch", Shares: 1024}
	v2 := proc(300, []int{0, 1}, "other", 0)
	v2.Cgroups = map[string]string{"": "/user.slice/session-1.scope"}
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "own", PIDs: []int{200}, CPUCgroup: "/batch", Match: match("b", 50, w), Procs: []hal.ProcessState{ps}},
		{ID: "tree", PIDs: []int{300}, Match: match("b", 50, w), Procs: []hal.ProcessState{v2}},
	}}
	p := MakePlan(in)
	acts := actionsOf(p, "own")
	if len(acts) != 1 || acts[0].Kind() != "cgroup-cpu" {
		t.Fatalf("own-cgroup actions %v, want one cgroup-cpu", acts)
	}
	if len(actionsOf(p, "tree")) != 0 || len(decisionOf(p, "tree").Notes) == 0 {
		t.Errorf("cgroup v2 workload without a group of its own: actions %v notes %v", actionsOf(p, "tree"), decisionOf(p, "tree").Notes)
	}
	// Already at the weight (v1 shares converted as the backend does): nothing.
	ps.CPU.Shares = sharesFromWeight(20)
	in.Workloads[0].Procs = []hal.ProcessState{ps}
	if acts := actionsOf(MakePlan(in), "own"); len(acts) != 0 {
		t.Errorf("weight already set, still planned %v", acts)
	}
}

// A process tree in cgroup v1's root cpu cgroup gets a cpu cgroup of its
// own for its weight or quota: created once, every process moved in, then
// only what differs; a lifted quota on a workload that never had one makes
// no cgroup.
func TestPlanQuotaMakesACgroupOfItsOwn(t *testing.T) {
	cg := SculptCgroup("tree:300@77")
	if cg != "/sculpt-w-tree-300-77" {
		t.Fatalf("SculptCgroup = %q", cg)
	}
	root := func(pid int) hal.ProcessState {
		ps := proc(pid, []int{0, 1}, "idle", 0)
		ps.Cgroups = map[string]string{"cpu": "/", "memory": "/process_api/5c02"}
		ps.CPU = &hal.CPULimits{Cgroup: "/", Shares: 1024, QuotaUS: -1, PeriodUS: 100000}
		return ps
	}
	st := func(want Want, procs ...hal.ProcessState) PlanInput {
		return PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
			{ID: "tree:300@77", PIDs: []int{300, 301}, Match: match("b", 50, want), Procs: procs}}}
	}
	acts := actionsOf(MakePlan(st(Want{Sched: "idle", CPUQuota: 0.5}, root(300), root(301))), "tree:300@77")
	kinds := []string{}
	for _, a := range acts {
		kinds = append(kinds, a.Kind())
	}
	if !slices.Equal(kinds, []string{"cgroup-create", "cgroup-move", "cgroup-move", "cgroup-cpu", "cgroup-cpu"}) {
		t.Fatalf("actions %v, want create, two moves, cpu.idle (its class is idle), quota", acts)
	}
	if i := acts[3].(hal.SetCgroupCPU); i.Cgroup != cg || i.Idle == nil || !*i.Idle {
		t.Errorf("idle action %v, want cpu.idle on %s", i, cg)
	}
	if q := acts[4].(hal.SetCgroupCPU); q.Cgroup != cg || *q.QuotaUS != 50000 {
		t.Errorf("quota action %v, want 50000µs on %s", q, cg)
	}
	// Moved, at the quota: nothing more. A new child is moved in.
	in := func(pid int, quota int64) hal.ProcessState {
		ps := root(pid)
		ps.Cgroups["cpu"] = cg
		ps.CPU = &hal.CPULimits{Cgroup: cg, Shares: 1024, QuotaUS: quota, PeriodUS: 100000, Idle: true}
		return ps
	}
	if acts := actionsOf(MakePlan(st(Want{Sched: "idle", CPUQuota: 0.5}, in(300, 50000), in(301, 50000))), "tree:300@77"); len(acts) != 0 {
		t.Errorf("at the quota already: %v", acts)
	}
	acts = actionsOf(MakePlan(st(Want{Sched: "idle", CPUQuota: 0.5}, in(300, 50000), root(302))), "tree:300@77")
	if len(acts) != 1 || acts[0].Kind() != "cgroup-move" {
		t.Errorf("a new child: %v, want one move", acts)
	}
	// The agent lifts the quota (-1): set back to no limit in its cgroup;
	// on a workload never moved, nothing at all.
	acts = actionsOf(MakePlan(st(Want{Sched: "idle", CPUQuota: -1}, in(300, 50000), in(301, 50000))), "tree:300@77")
	if len(acts) != 1 || *acts[0].(hal.SetCgroupCPU).QuotaUS != -1 {
		t.Errorf("lifting the quota: %v", acts)
	}
	if acts := actionsOf(MakePlan(st(Want{Sched: "idle", CPUQuota: -1}, root(300), root(301))), "tree:300@77"); len(acts) != 0 {
		t.Errorf("lifting a quota never set: %v", acts)
	}
}

// A block I/O cap on a process tree in the root blkio cgroup: a blkio
// cgroup of its own, every process moved in, a cap per disk; once there,
// only a changed cap is planned; lifting a cap never set plans nothing; a
// machine without disks says so.
func TestPlanIOCapsPerDisk(t *testing.T) {
	cg := SculptCgroup("tree:300@77")
	topo := vm2()
	topo.Disks = []topology.Disk{{Name: "vda", Dev: "254:0"}, {Name: "sdb", Dev: "8:16"}}
	caps := allCaps()
	caps.BlkioLimit = hal.Yes("test")
	root := func(pid int) hal.ProcessState {
		ps := proc(pid, []int{0, 1}, "idle", 0)
		ps.Cgroups = map[string]string{"cpu": "/", "blkio": "/"}
		ps.Blkio = &hal.BlkioLimits{Cgroup: "/"}
		return ps
	}
	in := func(pid int, wbps uint64) hal.ProcessState {
		ps := root(pid)
		ps.Cgroups["blkio"] = cg
		ps.Blkio = &hal.BlkioLimits{Cgroup: cg, Caps: map[string]hal.BlkioRate{"254:0": {WriteBPS: wbps}, "8:16": {WriteBPS: wbps}}}
		return ps
	}
	st := func(want Want, procs ...hal.ProcessState) PlanInput {
		return PlanInput{Topology: topo, Caps: caps, ReserveShared: 1, Workloads: []WorkloadState{
			{ID: "tree:300@77", PIDs: []int{300, 301}, Match: match("b", 50, want), Procs: procs}}}
	}
	acts := actionsOf(MakePlan(st(Want{IOWriteMBps: 20}, root(300), root(301))), "tree:300@77")
	var kinds []string
	for _, a := range acts {
		kinds = append(kinds, a.Kind())
	}
	if !slices.Equal(kinds, []string{"cgroup-create", "cgroup-move", "cgroup-move", "blkio-limit", "blkio-limit"}) {
		t.Fatalf("actions %v, want create, two moves, a cap per disk", acts)
	}
	if c := acts[0].(hal.CreateCgroup); c.Cgroup != cg || !slices.Equal(c.Controllers, []string{"blkio"}) {
		t.Errorf("create %v, want %s in blkio", c, cg)
	}
	if l := acts[3].(hal.BlkioLimit); l.Cgroup != cg || l.Device != "254:0" || l.WriteBPS != 20e6 || l.ReadBPS != 0 {
		t.Errorf("cap %v, want write 20e6 B/s on 254:0", l)
	}
	if acts := actionsOf(MakePlan(st(Want{IOWriteMBps: 20}, in(300, 20e6), in(301, 20e6))), "tree:300@77"); len(acts) != 0 {
		t.Errorf("at the cap already: %v", acts)
	}
	acts = actionsOf(MakePlan(st(Want{IOWriteMBps: -1}, in(300, 20e6), in(301, 20e6))), "tree:300@77")
	if len(acts) != 2 || acts[0].(hal.BlkioLimit).WriteBPS != 0 {
		t.Errorf("lifting the cap: %v, want two uncapped disks", acts)
	}
	if acts := actionsOf(MakePlan(st(Want{IOWriteMBps: -1}, root(300), root(301))), "tree:300@77"); len(acts) != 0 {
		t.Errorf("lifting a cap never set: %v", acts)
	}
	topo.Disks = nil
	p := MakePlan(st(Want{IOWriteMBps: 20}, root(300)))
	if len(p.Decisions) != 1 || len(p.Decisions[0].Actions) != 0 || !strings.Contains(strings.Join(p.Decisions[0].Notes, ";"), "no disk") {
		t.Errorf("without disks: %+v, want a note and no action", p.Decisions)
	}
	caps.BlkioLimit = hal.No("no throttling here")
	topo.Disks = []topology.Disk{{Name: "vda", Dev: "254:0"}}
	p = MakePlan(st(Want{IOWriteMBps: 20}, in(300, 0)))
	if n := strings.Join(p.Decisions[0].Notes, ";"); !strings.Contains(n, "no throttling here") {
		t.Errorf("unsupported: notes %q, want the capability's reason", n)
	}
}

// The sysfs snapshot of a real 2-socket, 4-node, 64-CPU machine: a service
// per node, each with its memory on its node, gets whole cores there, and
// its interrupts move off them.
func TestPlanOnRealTwoSocketSnapshot(t *testing.T) {
	dir := filepath.Join("..", "hal", "topology", "testdata", "sysfs", "2-socket-4-node-64-core")
	topo, err := topology.Discover(host.Roots{Sys: dir, Proc: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(topo.Nodes) != 4 {
		t.Fatalf("snapshot has %d nodes", len(topo.Nodes))
	}
	var ws []WorkloadState
	for i, n := range topo.Nodes {
		ps := proc(100+i, topo.OnlineCPUs(), "other", 0)
		ps.PageNodes = map[int]int{n.ID: 1}
		ws = append(ws, WorkloadState{ID: fmt.Sprintf("svc%d", n.ID), PIDs: []int{100 + i}, Procs: []hal.ProcessState{ps},
			Match: match("l", 100, Want{Cores: CoresDedicated, Count: 2, IRQs: IRQsAway})})
	}
	p := MakePlan(PlanInput{Topology: topo, Caps: allCaps(), ReserveShared: 1, Workloads: ws})
	used := map[int]bool{}
	for i, n := range topo.Nodes {
		cpus := p.Dedicated[ws[i].ID]
		if len(cpus) != 2 {
			t.Fatalf("%s got %v", ws[i].ID, cpus)
		}
		for _, c := range cpus {
			if topo.NodeOfCPU(c) != n.ID || used[c] {
				t.Errorf("%s got CPU %d (node %d, already used %v)", ws[i].ID, c, topo.NodeOfCPU(c), used[c])
			}
			used[c] = true
		}
		if sib := topo.CPU(cpus[0]).ThreadSiblings; len(sib) == 2 && !slices.Equal(sib, cpus) {
			t.Errorf("%s got %v, not the two threads of one core %v", ws[i].ID, cpus, sib)
		}
	}
	online := topo.OnlineCPUs()
	moved := 0
	for _, d := range p.Decisions {
		for _, a := range d.Actions {
			if irq, ok := a.Action.(hal.IRQAffinity); ok {
				moved++
				for _, c := range irq.CPUs {
					if used[c] || !slices.Contains(online, c) {
						t.Errorf("IRQ %d routed to CPU %d (dedicated %v, online %v)", irq.IRQ, c, used[c], slices.Contains(online, c))
					}
				}
			}
		}
	}
	if moved == 0 {
		t.Errorf("no interrupt moved off the dedicated CPUs")
	}
}

// An idle-class workload in a cgroup of its own: the cgroup is made idle
// and its weight left alone (the kernel refuses cpu.shares on an idle
// cgroup; an idle group has the minimal weight anyway).
func TestPlanIdleCgroupNeedsNoWeight(t *testing.T) {
	ps := proc(300, []int{0, 1}, "other", 0)
	ps.Cgroups = map[string]string{"cpu": "/"}
	in := PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: []WorkloadState{
		{ID: "tree:300@1", PIDs: []int{300}, Match: match("b", 50, Want{Sched: "idle", CPUShare: 1}), Procs: []hal.ProcessState{ps}}}}
	var kinds []string
	idle := false
	for _, a := range actionsOf(MakePlan(in), "tree:300@1") {
		kinds = append(kinds, a.Kind())
		if c, ok := a.(hal.SetCgroupCPU); ok {
			if c.Shares != nil || c.Weight != nil {
				t.Errorf("weight planned on an idle cgroup: %v", c)
			}
			idle = idle || (c.Idle != nil && *c.Idle)
		}
	}
	if !idle {
		t.Errorf("actions %v: no cpu.idle for an idle-class workload in its own cgroup", kinds)
	}
}

// A container's cgroups belong to its runtime: without NRI the plan sets
// no CPU weight or quota on them (and says so) but still pins; with NRI
// it neither pins nor writes cgroups, and keeps the decision's CPUs for
// the NRI plugin to apply, while interrupts stay with the HAL.
func TestPlanLeavesContainerCgroupsToTheRuntime(t *testing.T) {
	want := Want{Cores: CoresDedicated, Count: 1, CPUShare: 400, CPUQuota: 0.5, IRQs: IRQsAway}
	ws := func() []WorkloadState {
		return []WorkloadState{{ID: "ctr:0123456789ab", Name: "0123456789ab", PIDs: []int{10}, CPUCgroup: "/kubepods/pod1/0123456789ab", Container: true,
			Match: match("svc", 1, want), Procs: []hal.ProcessState{proc(10, []int{0, 1}, "other", 0)}}}
	}
	for _, nri := range []bool{false, true} {
		p := MakePlan(PlanInput{Topology: vm2(), Caps: allCaps(), ReserveShared: 1, Workloads: ws(), NRI: nri})
		d := decisionOf(p, "ctr:0123456789ab")
		if d == nil || len(d.CPUs) != 1 {
			t.Fatalf("nri=%v: want a decision with one dedicated CPU, got %+v", nri, d)
		}
		var pins, cgroups, irqs int
		for _, a := range actionsOf(p, d.Workload) {
			switch a.(type) {
			case hal.PinThreads:
				pins++
			case hal.SetCgroupCPU, hal.CreateCgroup, hal.MoveToCgroup:
				cgroups++
			case hal.IRQAffinity:
				irqs++
			}
		}
		if cgroups != 0 {
			t.Errorf("nri=%v: %d cgroup actions on a container, want none: %v", nri, cgroups, actionsOf(p, d.Workload))
		}
		if irqs == 0 {
			t.Errorf("nri=%v: interrupts should still move away through the HAL: %v", nri, actionsOf(p, d.Workload))
		}
		if wantPins := map[bool]int{false: 1, true: 0}[nri]; pins != wantPins {
			t.Errorf("nri=%v: %d thread pinnings, want %d", nri, pins, wantPins)
		}
		noted := false
		for _, n := range d.Notes {
			noted = noted || strings.Contains(n, map[bool]string{false: "leaves a container's cgroups to its runtime", true: "through the container runtime (NRI)"}[nri])
		}
		if !noted {
			t.Errorf("nri=%v: the decision does not say who sets the container's cgroups: %q", nri, d.Notes)
		}
	}
}
