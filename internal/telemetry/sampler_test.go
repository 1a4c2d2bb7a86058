package telemetry

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"sculpt/internal/workload"
)

func TestValuesAll(t *testing.T) {
	var v Values
	want := []Metric{CPUUserSec, RSSBytes, CgIOOps, PerfPageFaults, NumMetrics - 1}
	for i, m := range want {
		v.Set(m, float64(i+1))
	}
	v.Set(Threads, 9)
	v.Unset(Threads)
	var got []Metric
	for m, x := range v.All() {
		if x != float64(len(got)+1) {
			t.Errorf("%s = %v, want %v", m, x, len(got)+1)
		}
		got = append(got, m)
	}
	if !slices.Equal(got, want) {
		t.Errorf("All yielded %v, want %v", got, want)
	}
	n := 0
	for range v.All() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("break after the first: %d yields", n)
	}
}

// stepCollector sets, in sweep k (from 1), counter MinorFaults = 10k and
// gauge RSSBytes = k for every process, and CgCPUUsageSec = k per workload.
type stepCollector struct{ k int }

func (c *stepCollector) Name() string { return "step" }

func (c *stepCollector) Collect(_ context.Context, s *Sample) error {
	c.k++
	for _, ps := range s.Procs {
		ps.Set(MinorFaults, float64(10*c.k))
		ps.Set(RSSBytes, float64(c.k))
	}
	for id, v := range s.Groups {
		if id != SystemID {
			v.Set(CgCPUUsageSec, float64(c.k))
		}
	}
	return nil
}

func stepWorkloads(n int) []workload.Workload {
	ws := make([]workload.Workload, n)
	for i := range ws {
		ws[i] = workload.Workload{ID: fmt.Sprintf("w%d", i), Procs: []workload.Proc{{PID: 1000 + 2*i, StartTime: 1}, {PID: 1001 + 2*i, StartTime: 1}}}
	}
	return ws
}

// Frames stay as returned after later sweeps (callers keep them in
// histories) although the sampler reuses its sample storage, and deltas are
// right across that reuse.
func TestSamplerFramesSurviveLaterSweeps(t *testing.T) {
	smp := NewSampler(time.Time{}, UserHZ, &stepCollector{})
	ws := stepWorkloads(3)
	var kept [][]Frame
	for k := 1; k <= 5; k++ {
		res, err := smp.Sweep(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, res.Frames)
	}
	for k, frames := range kept {
		if len(frames) != len(ws) {
			t.Fatalf("sweep %d: %d frames", k+1, len(frames))
		}
		for i, f := range frames {
			if f.Workload != ws[i].ID {
				t.Errorf("sweep %d frame %d: workload %q, want %q", k+1, i, f.Workload, ws[i].ID)
			}
			wantVal(t, fmt.Sprintf("sweep %d %s", k+1, f.Workload), &f.Values, RSSBytes, float64(2*(k+1)))
			if k == 0 {
				wantNo(t, "first sweep", &f.Values, MinorFaults, CgCPUUsageSec)
				continue
			}
			wantVal(t, fmt.Sprintf("sweep %d %s", k+1, f.Workload), &f.Values, MinorFaults, 2*10)
			wantVal(t, fmt.Sprintf("sweep %d %s", k+1, f.Workload), &f.Values, CgCPUUsageSec, 1)
		}
	}
}

// A sweep's allocations do not grow with the number of processes: the
// sample's storage is reused; only the returned frames are new.
func TestSamplerSweepAllocs(t *testing.T) {
	smp := NewSampler(time.Time{}, UserHZ, &stepCollector{})
	ws := stepWorkloads(500)
	ctx := context.Background()
	for range 3 {
		if _, err := smp.Sweep(ctx, ws); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := smp.Sweep(ctx, ws); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 20 {
		t.Errorf("%v allocations per sweep of 1000 processes in 500 workloads, want at most 20", allocs)
	}
}

// BenchmarkSamplerSweep1000 measures the Sampler's own work (building the
// sample, turning it into frames) over 1000 processes in 1000 workloads,
// each with 24 metrics, behind a collector that only sets values.
func BenchmarkSamplerSweep1000(b *testing.B) {
	ws := make([]workload.Workload, 1000)
	for i := range ws {
		ws[i] = workload.Workload{ID: fmt.Sprintf("tree:%d@1", 1000+i), Procs: []workload.Proc{{PID: 1000 + i, StartTime: 1}}}
	}
	smp := NewSampler(time.Time{}, UserHZ, fillCollector{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := smp.Sweep(ctx, ws); err != nil {
			b.Fatal(err)
		}
	}
}

// fillCollector sets the first 24 metrics of every process.
type fillCollector struct{}

func (fillCollector) Name() string { return "fill" }

func (fillCollector) Collect(_ context.Context, s *Sample) error {
	for _, ps := range s.Procs {
		for m := Metric(0); m < 24; m++ {
			ps.Set(m, float64(m))
		}
	}
	return nil
}
