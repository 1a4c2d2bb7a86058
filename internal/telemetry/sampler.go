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
	// index maps a workload ID to its frame; scratch reused by every sweep.
	index map[string]int
	// stores hold the per-process and per-workload storage of two samples:
	// prev's (stores[prevStore]) and the one being built, which reuses that
	// of the sample before prev (no longer referenced: frames hold copies).
	stores    [2]sampleStore
	prevStore int
	// carry holds, per workload, what the reaping correction could not take
	// from the last interval (see reaped); byPID and gone are scratch.
	carry map[string]*[len(reapedMetrics)]float64
	byPID map[int]*ProcSample
	gone  map[int]*ProcSample
}

// sampleStore is the reusable storage of one Sample.
type sampleStore struct {
	procs  []ProcSample
	vals   []Values
	procM  map[ProcKey]*ProcSample
	groupM map[string]*Values
}

// newSample is NewSample(now, ws) built in the store prev does not use.
// Peers and PeerBytes are new maps: frames hand them to the caller.
func (s *Sampler) newSample(now time.Time, ws []workload.Workload) (*Sample, int) {
	k := 1 - s.prevStore
	st := &s.stores[k]
	n := 0
	for i := range ws {
		n += len(ws[i].Procs)
	}
	if cap(st.procs) < n {
		st.procs = make([]ProcSample, n)
	}
	if cap(st.vals) < len(ws)+1 {
		st.vals = make([]Values, len(ws)+1)
	}
	st.procs, st.vals = st.procs[:n], st.vals[:len(ws)+1]
	if st.procM == nil {
		st.procM = make(map[ProcKey]*ProcSample, n)
		st.groupM = make(map[string]*Values, len(ws)+1)
	}
	clear(st.procM)
	clear(st.groupM)
	cur := &Sample{
		Time:      now,
		Workloads: ws,
		Procs:     st.procM,
		Groups:    st.groupM,
		Peers:     make(map[string]map[string]float64),
		PeerBytes: make(map[string]map[string]float64),
	}
	st.vals[0] = Values{}
	cur.Groups[SystemID] = &st.vals[0]
	j := 0
	for i := range ws {
		w := &ws[i]
		st.vals[i+1] = Values{}
		cur.Groups[w.ID] = &st.vals[i+1]
		for _, p := range w.Procs {
			st.procs[j] = ProcSample{Workload: w.ID, Proc: p}
			cur.Procs[ProcKey{p.PID, p.StartTime}] = &st.procs[j]
			j++
		}
	}
	return cur, k
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
	cur, store := s.newSample(s.now(), ws)
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
	s.prev, s.prevStore = cur, store
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

// gaugeMask has the bit of every Gauge metric set (the layout of Values.has).
var gaugeMask = func() (mask [(NumMetrics + 63) / 64]uint64) {
	for m := Metric(0); m < NumMetrics; m++ {
		if MetricInfo[m].Kind == Gauge {
			mask[m/64] |= 1 << (m % 64)
		}
	}
	return mask
}()

// isGauge reports whether m is a Gauge.
func isGauge(m Metric) bool { return gaugeMask[m/64]&(1<<(m%64)) != 0 }

// frames turns cur (and the previous sample) into per-workload frames. The
// frames are new every sweep (callers keep them in histories); only the
// index is scratch reused across sweeps.
func (s *Sampler) frames(cur *Sample) ([]Frame, Frame) {
	frames := make([]Frame, len(cur.Workloads)+1)
	if s.index == nil {
		s.index = make(map[string]int, len(cur.Workloads)+1)
	}
	index := s.index
	clear(index)
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
		for m, v := range ps.All() {
			if isGauge(m) {
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
	s.reaped(cur, frames, index)
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
		for m, v := range vals.All() {
			if isGauge(m) {
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

// reapedMetrics are the counters into which the kernel folds a child's
// lifetime when its parent reaps it (kernel/exit.c, wait_task_zombie), each
// with the metrics whose last readings make up that lifetime: the parent's
// cutime grows by the child's utime+cutime, its cstime by stime+cstime, its
// cminflt/cmajflt likewise, and its /proc/PID/io (the signal's ioac, see
// fs/proc/base.c do_io_accounting) by the child's whole io.
var reapedMetrics = [...]struct {
	into Metric
	of   [2]Metric // the second is NumMetrics when unused
}{
	{ChildCPUUserSec, [2]Metric{CPUUserSec, ChildCPUUserSec}},
	{ChildCPUSystemSec, [2]Metric{CPUSystemSec, ChildCPUSystemSec}},
	{ChildMinorFaults, [2]Metric{MinorFaults, ChildMinorFaults}},
	{ChildMajorFaults, [2]Metric{MajorFaults, ChildMajorFaults}},
	{IOReadBytes, [2]Metric{IOReadBytes, NumMetrics}},
	{IOWriteBytes, [2]Metric{IOWriteBytes, NumMetrics}},
	{IOReadChars, [2]Metric{IOReadChars, NumMetrics}},
	{IOWriteChars, [2]Metric{IOWriteChars, NumMetrics}},
	{IOReadOps, [2]Metric{IOReadOps, NumMetrics}},
	{IOWriteOps, [2]Metric{IOWriteOps, NumMetrics}},
}

// maxReaperDepth bounds the walk up the parents of an exited process.
const maxReaperDepth = 64

// reaped corrects the frames for processes that exited during the interval.
// The per-process deltas already count the reaped children of every process
// (Δ cutime, cstime, cminflt, cmajflt, and /proc/PID/io, which holds them),
// so a process born and reaped within one interval is counted once, in full,
// by its parent. But a child that was sampled before it exited had its
// counts up to that sample counted as its own, and its parent's reaped
// counters then grow by its whole life: so the last reading of every process
// that exited (read in prev, and absent from cur or Gone in it) is
// subtracted from the workload of its reaper, the nearest ancestor (through
// processes that exited too) alive in cur and started before it. A process
// whose reaper is not sampled is not subtracted: its reaper's workload,
// unsampled, does not count it twice. (Only processes with stat values in
// prev are considered: without the procfs collector nothing changes.)
//
// The kernel and the sampler race: a parent read before it reaped a child
// that was gone when read is corrected an interval before its counters grow
// (the ProcCollector reads parents first, so the opposite order, a child
// read alive after its parent reaped it, does not occur). So a workload's
// negative remainder is carried into the next interval (once, never
// further) and the frame holds max(0, value). A process that left the
// selection while alive (moved out of a selected cgroup) is taken for
// exited: its parent's workload then owes its last reading for one interval.
func (s *Sampler) reaped(cur *Sample, frames []Frame, index map[string]int) {
	var sub map[string]*[len(reapedMetrics)]float64
	if s.prev != nil {
		clear(s.gone)
		for key, pp := range s.prev.Procs {
			if !pp.Has(CPUUserSec) {
				continue
			}
			if cp, ok := cur.Procs[key]; ok && !cp.Gone {
				continue
			}
			if s.gone == nil {
				s.gone = make(map[int]*ProcSample)
			}
			s.gone[key.PID] = pp
		}
		if len(s.gone) > 0 {
			if s.byPID == nil {
				s.byPID = make(map[int]*ProcSample, len(cur.Procs))
			}
			clear(s.byPID)
			for key, cp := range cur.Procs {
				if !cp.Gone {
					s.byPID[key.PID] = cp
				}
			}
			sub = make(map[string]*[len(reapedMetrics)]float64)
		}
		for _, g := range s.gone {
			r := s.reaper(g)
			if r == nil {
				continue
			}
			if _, ok := index[r.Workload]; !ok {
				continue
			}
			d := sub[r.Workload]
			if d == nil {
				d = new([len(reapedMetrics)]float64)
				sub[r.Workload] = d
			}
			for k, rm := range reapedMetrics {
				for _, m := range rm.of {
					if m < NumMetrics {
						v, _ := g.Get(m)
						d[k] += v
					}
				}
			}
		}
	}
	carry := s.carry
	s.carry = nil
	if len(sub) == 0 && len(carry) == 0 {
		return
	}
	for id, i := range index {
		d, c := sub[id], carry[id]
		if d == nil && c == nil {
			continue
		}
		f := &frames[i]
		for k, rm := range reapedMetrics {
			x, ok := f.Values.Get(rm.into)
			if !ok {
				continue
			}
			own := x // this interval's delta less its own correction
			if d != nil {
				own -= d[k]
			}
			v := own
			if c != nil {
				v += c[k]
			}
			f.Values.Set(rm.into, max(0, v))
			// Carry this interval's own shortfall, never an old one again.
			if own < 0 {
				if s.carry == nil {
					s.carry = make(map[string]*[len(reapedMetrics)]float64)
				}
				nc := s.carry[id]
				if nc == nil {
					nc = new([len(reapedMetrics)]float64)
					s.carry[id] = nc
				}
				nc[k] = own
			}
		}
	}
}

// reaper returns the process of cur that reaped g (g's nearest ancestor
// alive in cur, found through the parents of processes that exited in the
// interval), or nil when it is not sampled.
func (s *Sampler) reaper(g *ProcSample) *ProcSample {
	pid := g.PPID
	for range maxReaperDepth {
		if pid <= 0 {
			return nil
		}
		if r := s.byPID[pid]; r != nil {
			if r.Proc.StartTime > g.Proc.StartTime {
				return nil // the PID was reused by a younger process
			}
			return r
		}
		next := s.gone[pid]
		if next == nil {
			return nil
		}
		pid = next.PPID
	}
	return nil
}
