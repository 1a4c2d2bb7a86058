package sim

import (
	"testing"
)

func mustHW(t *testing.T, name string) *Hardware {
	t.Helper()
	hw, err := LoadHardware(name)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

func mustProg(t *testing.T, name string) Program {
	t.Helper()
	p, err := Program{Name: name}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func pin(pl Placement, cpus []int, policy string) Placement {
	for i := range pl.Threads {
		pl.Threads[i].CPUs = cpus
		pl.Threads[i].Policy = policy
	}
	return pl
}

func TestModelSanity(t *testing.T) {
	hw := mustHW(t, "epyc-2s-4n-64c")
	mc, sv := mustProg(t, "memcached"), mustProg(t, "stress-vm")
	world := func(mcCPUs []int, mcPages int, svPolicy string) []Outcome {
		a := pin(defaultPlacement(hw, mc, mcPages), mcCPUs, "other")
		b := defaultPlacement(hw, sv, 0)
		for i := range b.Threads {
			b.Threads[i].Policy = svPolicy
		}
		return Evaluate(&World{HW: hw, Progs: []Program{mc, sv}, Place: []Placement{a, b}, SLO: []float64{1e-3, 0}})
	}
	all := hw.Topo.OnlineCPUs()
	for _, c := range []struct {
		name  string
		cpus  []int
		pages int
		pol   string
	}{{"default", all, 0, "other"}, {"pinned-node1-remote", hw.Topo.CPUsOfNode(1)[:4], 0, "other"}, {"pinned-node1-local", hw.Topo.CPUsOfNode(1)[:4], 1, "other"}, {"default-idle", all, 0, "idle"}} {
		o := world(c.cpus, c.pages, c.pol)
		t.Logf("%s: mc cpu %.2f ipc %.2f miss %.2f p99 %.0fµs score %.2f | sv cpu %.2f thr %.2f bw %.1fGB/s", c.name, o[0].CPU, o[0].IPC, o[0].LLCMiss, o[0].P99*1e6, o[0].Score, o[1].CPU, o[1].Throughput, o[1].MemBW/1e9)
	}
}
