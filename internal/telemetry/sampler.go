package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sculpt/internal/workload"
)

// CollectorReport says how one collector fared in one sweep, as
// node_exporter's scrape_collector_success and duration do.
type CollectorReport struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Err      error         `json:"-"`
}

// Sampler runs collectors each tick and turns consecutive samples into
// frames. It is not safe for concurrent use.
type Sampler struct {
	collectors []Collector
	prev       *Sample
	now        func() time.Time
	// clockTicks and bootTime let the sampler tell a process that started
	// during the interval (its counters all count) from one that joined the
	// selection (its history does not).
	clockTicks float64
	bootTime   time.Time
}

// NewSampler runs the given collectors in order. bootTime is the kernel's
// boot time (btime of /proc/stat) and clockTicks its USER_HZ; with a zero
// bootTime, processes new to a sweep contribute only from their second sweep.
func NewSampler(bootTime time.Time, clockTicks float64, collectors ...Collector) *Sampler {
	return &Sampler{collectors: collectors, now: time.Now, bootTime: bootTime, clockTicks: clockTicks}
}

// Collectors returns the collectors in use.
func (s *Sampler) Collectors() []Collector { return s.collectors }

// Result is what one sweep yields.
type Result struct {
	Frames  []Frame // one per workload, in the order given to Sweep
	System  Frame   // machine-wide values (e.g. system PSI), Workload == SystemID
	Reports []CollectorReport
}

// Sweep samples the workloads and returns one frame per workload plus a
// report per collector. A collector that fails leaves its metrics absent and
// its error in the report; Sweep itself fails only when ctx is done.
func (s *Sampler) Sweep(ctx context.Context, ws []workload.Workload) (Result, error) {
	cur := NewSample(s.now(), ws)
	reports := make([]CollectorReport, 0, len(s.collectors))
	for _, c := range s.collectors {
		if err := ctx.Err(); err != nil {
			return Result{Reports: reports}, err
		}
		start := time.Now()
		err := c.Collect(ctx, cur)
		reports = append(reports, CollectorReport{Name: c.Name(), Duration: time.Since(start), Err: err})
	}
	frames, system := s.frames(cur)
	s.prev = cur
	return Result{Frames: frames, System: system, Reports: reports}, nil
}

// Close closes every collector that holds resources.
func (s *Sampler) Close() error {
	var errs []error
	for _, c := range s.collectors {
		if cl, ok := c.(Closer); ok {
			if err := cl.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close collector %s: %w", c.Name(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// frames turns cur (and the previous sample) into per-workload frames.
func (s *Sampler) frames(cur *Sample) ([]Frame, Frame) {
	frames := make([]Frame, len(cur.Workloads)+1)
	index := make(map[string]int, len(cur.Workloads)+1)
	var interval time.Duration
	if s.prev != nil {
		interval = cur.Time.Sub(s.prev.Time)
	}
	for i := range cur.Workloads {
		id := cur.Workloads[i].ID
		index[id] = i
		frames[i] = Frame{Workload: id, Time: cur.Time, Interval: interval}
		if p := cur.Peers[id]; len(p) > 0 {
			frames[i].Peers = p
		}
		if p := cur.PeerBytes[id]; len(p) > 0 {
			frames[i].PeerBytes = p
		}
	}
	sys := len(cur.Workloads)
	index[SystemID] = sys
	frames[sys] = Frame{Workload: SystemID, Time: cur.Time, Interval: interval}
	// Per-process values: gauges summed; counters as deltas against the same
	// process in the previous sample.
	for key, ps := range cur.Procs {
		i, ok := index[ps.Workload]
		if !ok || ps.Len() == 0 {
			continue
		}
		f := &frames[i]
		var old *Values
		fresh := false
		if s.prev != nil {
			if prev, ok := s.prev.Procs[key]; ok {
				old = &prev.Values
			} else {
				fresh = s.startedAfter(ps.Proc.StartTime, s.prev.Time)
			}
		}
		for m := Metric(0); m < NumMetrics; m++ {
			v, ok := ps.Get(m)
			if !ok {
				continue
			}
			if MetricInfo[m].Kind == Gauge {
				f.Values.Add(m, v)
				continue
			}
			switch {
			case old != nil:
				if ov, ok := old.Get(m); ok && v >= ov {
					f.Values.Add(m, v-ov)
				}
			case fresh:
				f.Values.Add(m, v)
			case s.prev != nil:
				// Present now, unknown before: the metric is measured, its
				// increase for this process is not. Mark it present.
				f.Values.Add(m, 0)
			}
		}
	}
	// Per-workload values.
	for id, vals := range cur.Groups {
		i, ok := index[id]
		if !ok {
			continue
		}
		f := &frames[i]
		var old *Values
		if s.prev != nil {
			old = s.prev.Groups[id]
		}
		for m := Metric(0); m < NumMetrics; m++ {
			v, ok := vals.Get(m)
			if !ok {
				continue
			}
			if MetricInfo[m].Kind == Gauge {
				f.Values.Set(m, v)
				continue
			}
			if old == nil {
				continue
			}
			if ov, ok := old.Get(m); ok && v >= ov {
				f.Values.Set(m, v-ov)
			}
		}
	}
	return frames[:sys], frames[sys]
}

// startedAfter reports whether a process with the given start time (clock
// ticks since boot) started after t.
func (s *Sampler) startedAfter(startTicks uint64, t time.Time) bool {
	if s.bootTime.IsZero() || s.clockTicks <= 0 {
		return false
	}
	started := s.bootTime.Add(time.Duration(float64(startTicks) / s.clockTicks * float64(time.Second)))
	// btime has one-second resolution: allow for it.
	return started.After(t.Add(-time.Second))
}
