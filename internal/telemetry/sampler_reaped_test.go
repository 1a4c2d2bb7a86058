package telemetry

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"sculpt/internal/workload"
)

// fakeProc is what /proc says of one process in one sweep.
type fakeProc struct {
	w      string // workload ID; "" for a process no workload holds
	ppid   int
	u, cu  float64 // utime, cutime (s)
	s, cs  float64 // stime, cstime (s)
	rchar  float64 // /proc/PID/io rchar (its reaped children's included)
	gone   bool    // discovered, but exited before it was read
	nostat bool    // alive, but stat could not be read (other files were)
}

// scriptCollector plays a scripted /proc: sweep k (from 0) reads script[k].
type scriptCollector struct {
	k      int
	script []map[int]fakeProc
}

func (c *scriptCollector) Name() string { return "script" }

func (c *scriptCollector) Collect(_ context.Context, s *Sample) error {
	procs := c.script[c.k]
	c.k++
	for key, ps := range s.Procs {
		fp := procs[key.PID]
		if fp.gone {
			ps.Gone = true
			continue
		}
		ps.PPID = fp.ppid
		ps.Set(IOReadChars, fp.rchar)
		if fp.nostat {
			continue
		}
		ps.Set(CPUUserSec, fp.u)
		ps.Set(CPUSystemSec, fp.s)
		ps.Set(ChildCPUUserSec, fp.cu)
		ps.Set(ChildCPUSystemSec, fp.cs)
	}
	return nil
}

// playScript sweeps the script and returns, per sweep, each workload's
// frame values. A process's start time is its PID (parents are older).
func playScript(t *testing.T, script []map[int]fakeProc) []map[string]Values {
	t.Helper()
	smp := NewSampler(time.Time{}, UserHZ, &scriptCollector{script: script})
	var out []map[string]Values
	for k, procs := range script {
		byW := map[string][]workload.Proc{}
		var ids []string
		for pid, fp := range procs {
			if fp.w == "" {
				continue
			}
			if _, ok := byW[fp.w]; !ok {
				ids = append(ids, fp.w)
			}
			byW[fp.w] = append(byW[fp.w], workload.Proc{PID: pid, StartTime: uint64(pid)})
		}
		for _, id := range []string{"W", "V"} { // workloads stay listed when empty
			if _, ok := byW[id]; !ok {
				ids = append(ids, id)
				byW[id] = nil
			}
		}
		slices.Sort(ids)
		ws := make([]workload.Workload, 0, len(ids))
		for _, id := range ids {
			ws = append(ws, workload.Workload{ID: id, Procs: byW[id]})
		}
		res, err := smp.Sweep(context.Background(), ws)
		if err != nil {
			t.Fatalf("sweep %d: %v", k, err)
		}
		m := map[string]Values{}
		for _, f := range res.Frames {
			m[f.Workload] = f.Values
		}
		out = append(out, m)
	}
	return out
}

// counted returns the CPU seconds (own + reaped children) of workload id in
// sweep k's frame, checking that no part is negative.
func counted(t *testing.T, frames []map[string]Values, k int, id string) float64 {
	t.Helper()
	v := frames[k][id]
	return sumCPU(t, &v, fmt.Sprintf("sweep %d %s", k, id))
}

// sumCPU returns the CPU seconds (own + reaped children) in v, checking that
// no part is negative.
func sumCPU(t *testing.T, v *Values, what string) float64 {
	t.Helper()
	var sum float64
	for _, m := range []Metric{CPUUserSec, CPUSystemSec, ChildCPUUserSec, ChildCPUSystemSec} {
		x, _ := v.Get(m)
		if x < 0 {
			t.Errorf("%s: %s = %v < 0", what, m, x)
		}
		sum += x
	}
	return sum
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// A child sampled while it ran, then reaped by its parent: the parent's
// cutime grows by the child's whole life, of which the sampler had already
// counted the part up to its last reading. Counted once.
func TestSamplerReapedChildSampledThenReapedNoDoubleCount(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1, u: 1}, 200: {w: "W", ppid: 100, u: 2, s: 0.5}},
		{100: {w: "W", ppid: 1, u: 1}, 200: {w: "W", ppid: 100, u: 5, s: 1}},
		// The child ran on to u=6, s=1.5 and was reaped.
		{100: {w: "W", ppid: 1, u: 1.25, cu: 6, cs: 1.5}},
		{100: {w: "W", ppid: 1, u: 1.25, cu: 6, cs: 1.5}},
	})
	want := []float64{0, 3.5, 0.25 + 1 + 0.5, 0} // child 2.5+0.5 then its last 1+0.5; parent 0.25
	for k, w := range want {
		if got := counted(t, frames, k, "W"); !near(got, w) {
			t.Errorf("sweep %d: counted %v s, want %v", k, got, w)
		}
	}
	// user and system corrected separately: the last interval's system time is
	// the child's last 0.5 s of it.
	v := frames[2]["W"]
	if got, _ := v.Get(ChildCPUSystemSec); !near(got, 0.5) {
		t.Errorf("sweep 2: children's system CPU %v, want 0.5", got)
	}
}

// Children born and reaped within one interval are never seen: the parent's
// cutime counts them in full.
func TestSamplerReapedChildBornAndReapedWithinInterval(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1, u: 1, cu: 10}},
		{100: {w: "W", ppid: 1, u: 1.1, cu: 10.4, cs: 0.05}},
		{100: {w: "W", ppid: 1, u: 1.2, cu: 11.2, cs: 0.1}},
	})
	for k, w := range []float64{0, 0.1 + 0.4 + 0.05, 0.1 + 0.8 + 0.05} {
		if got := counted(t, frames, k, "W"); !near(got, w) {
			t.Errorf("sweep %d: counted %v s, want %v", k, got, w)
		}
	}
}

// A process of W whose parent belongs to no sampled workload: nothing is
// subtracted anywhere (W loses only the child's last moments), and no
// workload goes negative. One whose parent is in another workload V: V's
// cutime holds the child's whole life, of which W counted the part it saw,
// so V gets the rest.
func TestSamplerReapedByProcessOutsideWorkload(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{50: {ppid: 1}, 60: {w: "V", ppid: 1, u: 3}, 200: {w: "W", ppid: 50, u: 2}, 300: {w: "W", ppid: 60, u: 4}},
		{50: {ppid: 1}, 60: {w: "V", ppid: 1, u: 3}, 200: {w: "W", ppid: 50, u: 2.5}, 300: {w: "W", ppid: 60, u: 4.5}},
		{50: {ppid: 1, cu: 3}, 60: {w: "V", ppid: 1, u: 3, cu: 5}, 400: {w: "W", ppid: 1, u: 0}},
	})
	if got := counted(t, frames, 1, "W"); !near(got, 1) {
		t.Errorf("sweep 1: W counted %v s, want 1", got)
	}
	if got := counted(t, frames, 2, "W"); !near(got, 0) {
		t.Errorf("sweep 2: W counted %v s, want 0", got)
	}
	if got := counted(t, frames, 2, "V"); !near(got, 0.5) {
		t.Errorf("sweep 2: V counted %v s, want 0.5 (the child's 5 s less the 4.5 W saw)", got)
	}
}

// The sampler and the kernel race: the parent is read before it reaps a
// child that is then gone when read (the ProcCollector reads parents before
// children, so a child is never read alive after its parent reaped it). The
// correction comes an interval before the parent's cutime grows, and is
// carried to the next. Over the intervals the sum is right and no frame is
// negative.
func TestSamplerReapedRace(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1, u: 1}, 200: {w: "W", ppid: 100, u: 2}, 300: {w: "W", ppid: 100, u: 1}},
		{100: {w: "W", ppid: 1, u: 1}, 200: {w: "W", gone: true}, 300: {w: "W", ppid: 100, u: 1.5}},
		// 100 reaps 200 (final u=2.5); 300 read as a zombie (final u=2)
		{100: {w: "W", ppid: 1, u: 1, cu: 2.5}, 300: {w: "W", ppid: 100, u: 2}},
		{100: {w: "W", ppid: 1, u: 1, cu: 2.5 + 2}},
		{100: {w: "W", ppid: 1, u: 1, cu: 2.5 + 2}},
	})
	var total float64
	for k := range frames {
		total += counted(t, frames, k, "W")
	}
	// 200 ran 0.5 s after the first sweep, 300 ran 1 s.
	if !near(total, 1.5) {
		t.Errorf("counted %v s over the sweeps, want 1.5", total)
	}
	for k, w := range []float64{0, 0.5, 0.5 + 0.5, 0, 0} {
		if got := counted(t, frames, k, "W"); !near(got, w) {
			t.Errorf("sweep %d: counted %v s, want %v", k, got, w)
		}
	}
}

// A debt the parent never repays (an auto-reaped child, SIGCHLD ignored:
// the kernel adds nothing to the parent) is carried once, not forever.
func TestSamplerReapedDebtCarriedOnce(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1, u: 1, cu: 1}, 200: {w: "W", ppid: 100, u: 3}},
		{100: {w: "W", ppid: 1, u: 1, cu: 1}, 200: {w: "W", ppid: 100, u: 3}},
		{100: {w: "W", ppid: 1, u: 1, cu: 1}},
		{100: {w: "W", ppid: 1, u: 1, cu: 2}},
		{100: {w: "W", ppid: 1, u: 1, cu: 3}},
	})
	for k, w := range []float64{0, 0, 0, 0, 1} {
		if got := counted(t, frames, k, "W"); !near(got, w) {
			t.Errorf("sweep %d: counted %v s, want %v", k, got, w)
		}
	}
}

// A subshell S and its child C both exit in one interval: C's life went into
// S's cutime and S's whole life into P's, so both last readings come off P's
// workload.
func TestSamplerReapedChainThroughExitedParent(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1}, 200: {w: "W", ppid: 100, u: 0.1}, 300: {w: "W", ppid: 200, u: 1}},
		{100: {w: "W", ppid: 1, cu: 0.2 + 1.5}},
	})
	// S ran 0.1 s more, C 0.5 s more.
	if got := counted(t, frames, 1, "W"); !near(got, 0.6) {
		t.Errorf("counted %v s, want 0.6", got)
	}
}

// /proc/PID/io holds the reaped children's I/O: a sampled child's I/O is
// not counted twice when it is reaped; a process whose stat could not be
// read is not taken for exited.
func TestSamplerReapedIO(t *testing.T) {
	frames := playScript(t, []map[int]fakeProc{
		{100: {w: "W", ppid: 1, rchar: 10}, 200: {w: "W", ppid: 100, rchar: 100}, 300: {w: "W", ppid: 100, u: 1}},
		{100: {w: "W", ppid: 1, rchar: 10}, 200: {w: "W", ppid: 100, rchar: 150}, 300: {w: "W", ppid: 100, nostat: true}},
		{100: {w: "W", ppid: 1, rchar: 10 + 170}, 300: {w: "W", ppid: 100, u: 1.5}},
	})
	for k, w := range []float64{0, 50, 20} {
		v := frames[k]["W"]
		got, ok := v.Get(IOReadChars)
		if k > 0 && (!ok || !near(got, w)) {
			t.Errorf("sweep %d: rchar %v (present %v), want %v", k, got, ok, w)
		}
	}
	if got := counted(t, frames, 2, "W"); !near(got, 0) {
		t.Errorf("sweep 2: counted %v s, want 0 (300's history is unknown after a failed read, and it did not exit)", got)
	}
}
