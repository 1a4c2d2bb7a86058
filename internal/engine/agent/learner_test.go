package agent

import (
	"math"
	"path/filepath"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
)

func testConfig() engine.AgentConfig {
	return engine.DefaultConfig().Agent
}

// colocation is a seeded synthetic co-location seen through the engine's
// types: a service with a p99 objective beside two batch workloads; the
// service meets its objective when the batch work's total quota is at most
// the threshold's (noise as env's).
type colocation struct {
	e     *env
	svc   dna.DNA
	batch []dna.DNA
	want  engine.Want
}

func newColocation(seed uint64, threshold int, resembles string, emb []float64) *colocation {
	return &colocation{
		e:     newEnv(seed, threshold, 0.05),
		svc:   dna.DNA{ID: "tree:10@1", Name: resembles, Archetype: "latency-critical-server", Resembles: resembles, Embedding: emb},
		batch: []dna.DNA{{ID: "tree:20@1", Name: "stress-vm", Archetype: "memory-streaming"}, {ID: "tree:30@1", Name: "stress-cpu", Archetype: "cpu-bound-batch"}},
		want:  engine.Want{Sched: "idle", CPUShare: 1},
	}
}

// input is the interval's input, with the outcome of running at level.
func (c *colocation) input(tick, level int) engine.AgentInput {
	o := c.e.outcome(level)
	p99 := (1 - o.Slack) * 0.002
	in := engine.AgentInput{Tick: tick, Machine: engine.Machine{CPUs: 2, Cores: 2, Nodes: 1}}
	in.Outcome.Objectives = []engine.ObjectiveStatus{{Workload: c.svc.ID, Name: c.svc.Name, Objective: "p99 <= 2ms", Latency: true,
		Value: p99, Target: 0.002, Known: true, Met: o.Met, Source: "ebpf"}}
	in.Workloads = append(in.Workloads, engine.AgentWorkload{ID: c.svc.ID, Name: c.svc.Name, Role: engine.RoleService, DNA: &c.svc,
		Objective: &engine.Objective{Workload: c.svc.Name, P99: 2 * time.Millisecond}})
	for i := range c.batch {
		w := c.want
		in.Workloads = append(in.Workloads, engine.AgentWorkload{ID: c.batch[i].ID, Name: c.batch[i].Name, Role: engine.RoleBatch, Want: &w, DNA: &c.batch[i]})
	}
	return in
}

// drive runs the learner n intervals against c and returns the intervals
// it took to settle and the quotas of the last interval.
func drive(t *testing.T, l *Learner, c *colocation, n int) (settled int, last engine.AgentOutput) {
	t.Helper()
	level := 0
	for tick := 1; tick <= n; tick++ {
		last = l.Adjust(c.input(tick, level))
		level = last.State.Level
		if len(last.Adjustments) != 2 {
			t.Fatalf("tick %d: %d adjustments, want one per batch workload", tick, len(last.Adjustments))
		}
		for _, a := range last.Adjustments {
			if a.Want.Sched != "idle" || a.Want.CPUShare != 1 {
				t.Fatalf("adjustment %+v lost the rules' want", a.Want)
			}
			if level == 0 && a.Want.CPUQuota != -1 {
				t.Fatalf("level 0: quota %v, want none (-1)", a.Want.CPUQuota)
			}
			if level > 0 && (a.Want.CPUQuota < testConfig().FloorCPU || math.Abs(a.Want.CPUQuota-l.Fraction(level)) > 1e-9 && a.Want.CPUQuota != testConfig().FloorCPU) {
				t.Fatalf("level %d: quota %v, want %v each (2 CPUs / 2 workloads), never below the floor", level, a.Want.CPUQuota, l.Fraction(level))
			}
		}
		if last.State.Settled && settled == 0 {
			settled = tick
		}
	}
	return settled, last
}

// The learner finds the threshold, records it, and a similar service (by
// its DNA) beside the same batch kinds starts from it and settles in a
// third of the intervals or less; a novel service starts from the rules.
func TestLearnerLearnsAndTransfers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "experience")
	cold, err := New(Options{Config: testConfig(), Path: path})
	if err != nil {
		t.Fatal(err)
	}
	memcached := newColocation(1, 5, "memcached", []float64{1, 0.2, 0.1})
	settledCold, out := drive(t, cold, memcached, 80)
	if out.State.Level < 5 || out.State.Level > 6 || settledCold == 0 {
		t.Fatalf("cold: level %d settled at %d, want 5 or 6", out.State.Level, settledCold)
	}
	x, err := LoadExperience(path)
	if err != nil || len(x.Entries) != 1 || x.Entries[0].Resembles != "memcached" {
		t.Fatalf("experience file: %+v %v", x, err)
	}
	warm, _ := New(Options{Config: testConfig(), Experience: x})
	redis := newColocation(2, 5, "redis", []float64{0.9, 0.3, 0.1})
	settledWarm, out := drive(t, warm, redis, 80)
	if out.State.Start == "" || settledWarm == 0 || settledWarm*3 > settledCold {
		t.Errorf("warm start %q settled at %d, cold at %d: want a third or less", out.State.Start, settledWarm, settledCold)
	}
	// A novel service starts from the rules, unless its embedding is very
	// like one the agent learned about.
	novel := newColocation(3, 5, "", []float64{0.2, 1, 0.4})
	novel.svc.Novel, novel.svc.Archetype = true, dna.KindNovel
	n, _ := New(Options{Config: testConfig(), Experience: x})
	if out := n.Adjust(novel.input(1, 0)); out.State.Level != 0 {
		t.Errorf("novel service started at level %d (%s), want the rules' plan", out.State.Level, out.State.Start)
	}
	twin := newColocation(3, 5, "", []float64{1, 0.22, 0.1})
	twin.svc.Novel, twin.svc.Archetype = true, dna.KindNovel
	n, _ = New(Options{Config: testConfig(), Experience: x})
	if out := n.Adjust(twin.input(1, 0)); out.State.Level < 5 {
		t.Errorf("novel service with memcached's DNA started at level %d (%s), want memcached's experience", out.State.Level, out.State.Start)
	}
}

// Without a service objective the learner lifts the quotas it set.
func TestLearnerLiftsQuotasWhenNothingToTrade(t *testing.T) {
	l, _ := New(Options{Config: testConfig()})
	c := newColocation(4, 6, "memcached", nil)
	drive(t, l, c, 30)
	in := c.input(31, 6)
	in.Workloads = in.Workloads[1:] // the service left
	in.Outcome.Objectives = nil
	out := l.Adjust(in)
	if len(out.Adjustments) != 2 {
		t.Fatalf("adjustments %+v, want the two quotas lifted", out.Adjustments)
	}
	for _, a := range out.Adjustments {
		if a.Want.CPUQuota != -1 {
			t.Errorf("quota %v, want lifted (-1)", a.Want.CPUQuota)
		}
	}
	if out := l.Adjust(in); len(out.Adjustments) != 0 {
		t.Errorf("lifted twice: %+v", out.Adjustments)
	}
}

func TestLadderFractions(t *testing.T) {
	l, _ := New(Options{Config: testConfig()})
	prev := 1.0
	for lvl := 0; lvl < testConfig().Levels; lvl++ {
		f := l.Fraction(lvl)
		if f > prev || (lvl > 0 && f >= prev) {
			t.Errorf("level %d: fraction %v not below level %d's %v", lvl, f, lvl-1, prev)
		}
		prev = f
	}
	if f := l.Fraction(testConfig().Levels - 1); math.Abs(f-0.04) > 1e-9 {
		t.Errorf("top level keeps %v, want 0.04", f)
	}
}

// A batch workload that writes gets its writes capped with its CPU: the
// ladder's share of what it wrote at the rules' plan, never below the
// floor; one that does no I/O gets no cap; when the service leaves, the
// caps are lifted with the quotas.
func TestLearnerCapsTheIOOfBatchWorkThatDoesIO(t *testing.T) {
	l, _ := New(Options{Config: testConfig()})
	c := newColocation(2, 8, "memcached", nil)
	c.batch[0].Genes = map[string]float64{"io_write_bps": 50e6, "io_read_bps": 0.2e6}
	c.batch[1].Genes = map[string]float64{"cpu_util": 1}
	level, seenCap := 0, false
	for tick := 1; tick <= 40; tick++ {
		out := l.Adjust(c.input(tick, level))
		level = out.State.Level
		for _, a := range out.Adjustments {
			r, w := a.Want.IOReadMBps, a.Want.IOWriteMBps
			switch {
			case a.Workload == c.batch[1].ID && level > 0 && (r > 0 || w > 0):
				t.Fatalf("level %d: the CPU-only batch got I/O caps %v/%v", level, r, w)
			case a.Workload == c.batch[0].ID && level > 0:
				want := math.Max(l.Fraction(level)*50, testConfig().FloorIOMBps)
				if math.Abs(w-want) > 1e-9 || r != 0 {
					t.Fatalf("level %d: caps read %v write %v, want read as is (0.2 MB/s is too little) and write %v", level, r, w, want)
				}
				seenCap = true
			}
		}
	}
	if !seenCap {
		t.Fatal("the writer was never capped")
	}
	in := c.input(41, level)
	in.Workloads = in.Workloads[1:]
	in.Outcome.Objectives = nil
	for _, a := range l.Adjust(in).Adjustments {
		if a.Want.IOWriteMBps != -1 || a.Want.IOReadMBps != -1 {
			t.Errorf("%s: caps %v/%v after the service left, want lifted (-1)", a.Workload, a.Want.IOReadMBps, a.Want.IOWriteMBps)
		}
	}
}
