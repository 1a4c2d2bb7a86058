package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sculpt/internal/hal"
)

// The same scenario and seed give byte-identical output, for every policy.
func TestRunDeterministic(t *testing.T) {
	sc := Random(7)
	for _, p := range Policies {
		var outs [2][]byte
		for i := range outs {
			r, err := Run(context.Background(), sc, p, 25)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			r.Oracle = nil // search times are wall-clock
			outs[i], _ = json.Marshal(r)
		}
		if !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("policy %s: two runs of %s differ", p, sc.Name)
		}
	}
	a, _ := Random(11).Marshal()
	b, _ := Random(11).Marshal()
	c, _ := Random(12).Marshal()
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Error("Random: the same seed must give the same scenario and another seed another")
	}
}

// More LLC never raises a workload's misses: along the miss-rate curve,
// and in the whole model when the machine's caches grow.
func TestMoreLLCNeverRaisesMisses(t *testing.T) {
	for _, name := range ProgramNames() {
		p := mustProg(t, name)
		prev := 2.0
		for mb := 0.0; mb <= 256; mb += 0.5 {
			m := MissRatio(p, mb*(1<<20))
			if m > prev+1e-12 {
				t.Fatalf("%s: miss ratio rises from %.4f to %.4f at %.1f MiB", name, prev, m, mb)
			}
			prev = m
		}
	}
	mc, sc := mustProg(t, "memcached"), mustProg(t, "stress-cache")
	prev := 2.0
	for _, mb := range []float64{1, 2, 4, 8, 16, 32, 64} {
		hw := mustHW(t, "desktop-1s-8c")
		for i := range hw.LLCs {
			hw.LLCs[i].Bytes = mb * (1 << 20)
		}
		o := Evaluate(&World{HW: hw, Progs: []Program{mc, sc}, Place: []Placement{defaultPlacement(hw, mc, 0), defaultPlacement(hw, sc, 0)}, SLO: []float64{0, 0}})
		if o[0].LLCMiss > prev+1e-9 {
			t.Fatalf("memcached beside stress-cache: miss ratio rises from %.4f to %.4f with %v MiB of LLC", prev, o[0].LLCMiss, mb)
		}
		prev = o[0].LLCMiss
	}
}

// Remote memory is never faster than local: the same workload on the same
// CPUs with its pages on each node.
func TestRemoteNeverFaster(t *testing.T) {
	for _, shape := range []string{"epyc-2s-4n-64c", "xeon-2s-2x28c-smt", "epyc-2s-8n-64c"} {
		hw := mustHW(t, shape)
		for _, name := range []string{"memcached", "stress-vm", "postgres"} {
			p := mustProg(t, name)
			cpus := hw.Topo.CPUsOfNode(hw.Topo.Nodes[0].ID)
			local := Evaluate(&World{HW: hw, Progs: []Program{p}, Place: []Placement{pin(defaultPlacement(hw, p, 0), cpus, "other")}, SLO: []float64{0}})[0]
			for nd := 1; nd < len(hw.Topo.Nodes); nd++ {
				o := Evaluate(&World{HW: hw, Progs: []Program{p}, Place: []Placement{pin(defaultPlacement(hw, p, nd), cpus, "other")}, SLO: []float64{0}})[0]
				if o.IPC > local.IPC+1e-12 || (p.Kind == KindService && o.P99 < local.P99-1e-15) {
					t.Errorf("%s %s: pages on node %d give IPC %.4f p99 %.6f, local IPC %.4f p99 %.6f", shape, name, nd, o.IPC, o.P99, local.IPC, local.P99)
				}
			}
			if hw.LatencyFactor(0, 0) != 1 {
				t.Errorf("%s: local latency factor %v", shape, hw.LatencyFactor(0, 0))
			}
		}
	}
}

// More CPU share (cgroup weight) never lowers a workload's throughput.
func TestMoreCPUShareNeverLowersThroughput(t *testing.T) {
	hw := mustHW(t, "desktop-1s-8c")
	a, b := mustProg(t, "build"), mustProg(t, "stress-cpu")
	b.Threads, b.CPU = 16, 16
	prev := -1.0
	for _, wt := range []float64{1, 10, 50, 100, 200, 1000, 10000} {
		pa := defaultPlacement(hw, a, 0)
		pa.Weight = wt
		o := Evaluate(&World{HW: hw, Progs: []Program{a, b}, Place: []Placement{pa, defaultPlacement(hw, b, 0)}, SLO: []float64{0, 0}})
		if o[0].Throughput < prev-1e-12 {
			t.Fatalf("weight %v: throughput falls from %.4f to %.4f", wt, prev, o[0].Throughput)
		}
		prev = o[0].Throughput
	}
	if prev < 0.9 {
		t.Errorf("the highest weight should give build nearly its demand, got %.3f", prev)
	}
}

// The simulated HAL: Apply returns undos that, applied newest first (as the
// engine undoes), restore what was there.
func TestServerApplyUndoAndJournal(t *testing.T) {
	hw := mustHW(t, "epyc-2s-4n-64c")
	s := NewServer(hw)
	p := mustProg(t, "memcached")
	s.start("memcached", 1000, 1, p, defaultPlacement(hw, p, 0))
	ctx := context.Background()
	before, _ := s.Snapshot(ctx, []int{1000})
	var undos []hal.Action
	nice := 5
	q := int64(50000)
	for _, a := range []hal.Action{
		hal.PinThreads{PID: 1000, CPUs: []int{16, 17}},
		hal.SetSched{PID: 1000, Policy: hal.PolicyBatch, Nice: &nice},
		hal.SetCgroupCPU{Cgroup: "/sim.slice/memcached", QuotaUS: &q},
		hal.MemMigrate{PID: 1000, ToNodes: []int{1}, Chunked: true},
		hal.IRQAffinity{IRQ: 120, CPUs: []int{64, 65}},
	} {
		u, err := s.Apply(ctx, a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		undos = append(undos, u)
	}
	mid, _ := s.Snapshot(ctx, []int{1000})
	if mid.Processes[0].PageNodes[1] == 0 || !slices.Equal(mid.Processes[0].Threads[0].CPUs, []int{16, 17}) || mid.Processes[0].CPU.QuotaUS != 50000 {
		t.Fatalf("actions not in the snapshot: %+v", mid.Processes[0])
	}
	if _, err := s.Apply(ctx, hal.PinThreads{PID: 1000, CPUs: []int{999}}); err == nil {
		t.Error("pin to a CPU the machine lacks: want an error")
	}
	if _, err := s.Apply(ctx, hal.SetVFs{PCIAddr: "0000:41:00.0", Count: 2}); err == nil {
		t.Error("SR-IOV is not modelled: want a not-supported error")
	}
	for i := len(undos) - 1; i >= 0; i-- {
		if _, err := s.Apply(ctx, undos[i]); err != nil {
			t.Fatalf("undo %s: %v", undos[i], err)
		}
	}
	after, _ := s.Snapshot(ctx, []int{1000})
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if !bytes.Equal(b1, b2) {
		t.Errorf("revert did not restore:\nbefore %s\nafter  %s", b1, b2)
	}
	if !slices.Equal(s.irqs[120], hw.Topo.IRQs[0].SMPAffinity) {
		t.Errorf("IRQ 120 not restored: %v", s.irqs[120])
	}
}

// The scenario suite parses, and the generated ones are what their seed
// makes. SCULPT_UPDATE_SCENARIOS=1 rewrites the generated ones.
func TestScenarioSuite(t *testing.T) {
	dir := "../../testdata/scenarios"
	if os.Getenv("SCULPT_UPDATE_SCENARIOS") != "" {
		for seed := uint64(101); seed <= 130; seed++ {
			b, err := Random(seed).Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("random-%d.yaml", seed)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if len(files) < 30 {
		t.Fatalf("%d scenarios in %s, want at least 30", len(files), dir)
	}
	for _, f := range files {
		sc, err := LoadScenario(f)
		if err != nil {
			t.Error(err)
			continue
		}
		var seed uint64
		if _, err := fmt.Sscanf(filepath.Base(f), "random-%d.yaml", &seed); err == nil {
			want, _ := Random(seed).Marshal()
			got, _ := sc.Marshal()
			if !bytes.Equal(want, got) {
				t.Errorf("%s is not what seed %d generates (SCULPT_UPDATE_SCENARIOS=1 to rewrite)", f, seed)
			}
		}
	}
}
