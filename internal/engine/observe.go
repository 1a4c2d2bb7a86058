// Package engine runs sculpt's loop: discover workloads, sample telemetry,
// profile DNA, and (from issue 4 on) decide and act through the HAL.
//
// It makes no system calls of its own: it reads the machine only through
// internal/workload and internal/telemetry and changes it only through
// internal/hal.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// Discoverer finds workloads; *workload.Discoverer implements it.
type Discoverer interface {
	Discover(sel workload.Selector) ([]workload.Workload, error)
}

// Observation is what one tick of the observer saw.
type Observation struct {
	Time      time.Time
	Workloads []workload.Workload
	DNA       []dna.DNA // one per workload with a profile, in Workloads order
	System    dna.Genes // machine-wide genes (system PSI)
	Reports   []telemetry.CollectorReport
	Exited    []int // selected PIDs that exited since the previous tick
}

// Observer discovers, samples and profiles on each Tick. It is not safe for
// concurrent use.
type Observer struct {
	disc     Discoverer
	sampler  *telemetry.Sampler
	profiler *dna.Profiler
	sel      workload.Selector
	ticks    int
	sysHist  []telemetry.Frame
	frames   []telemetry.Frame
}

// Frames returns the raw telemetry frames of the last Tick, one per
// workload in that tick's Workloads order (for `sculpt record`). The slice is
// replaced, not reused, by the next Tick.
func (o *Observer) Frames() []telemetry.Frame { return o.frames }

// SetModel makes the profiler take embedding, archetype, confidence,
// novelty and phase change from a learned DNA model (nil: the gene
// classifier). See dna.Profiler.SetModel.
func (o *Observer) SetModel(m *dna.Model) { o.profiler.SetModel(m) }

// NewObserver observes the workloads sel chooses, keeping window of history.
func NewObserver(disc Discoverer, sampler *telemetry.Sampler, sel workload.Selector, window time.Duration) *Observer {
	return &Observer{disc: disc, sampler: sampler, profiler: dna.NewProfiler(window), sel: sel}
}

// Tick runs one discover-sample-profile step. On the first tick a selected
// PID or cgroup that does not exist is an error; on later ticks a selected
// PID that has exited is dropped from the selection and listed in Exited.
func (o *Observer) Tick(ctx context.Context) (*Observation, error) {
	ws, exited, err := o.discover()
	if err != nil {
		return nil, err
	}
	res, err := o.sampler.Sweep(ctx, ws)
	if err != nil {
		return nil, err
	}
	o.ticks++
	o.frames = res.Frames
	o.profiler.Observe(res.Frames)
	obs := &Observation{Time: res.System.Time, Workloads: ws, Reports: res.Reports, Exited: exited}
	for i := range ws {
		w := &ws[i]
		d := o.profiler.Profile(w.ID)
		if d == nil {
			continue
		}
		d.Name, d.WorkloadKind, d.PIDs, d.Cgroup = w.Name, string(w.Kind), w.PIDs(), w.Cgroups.V2
		if d.Cgroup == "" || d.Cgroup == "/" {
			d.Cgroup = firstV1(w.Cgroups.V1)
		}
		obs.DNA = append(obs.DNA, *d)
	}
	o.sysHist = append(o.sysHist, res.System)
	if len(o.sysHist) > 2 {
		o.sysHist = o.sysHist[len(o.sysHist)-2:]
	}
	obs.System, _ = dna.ComputeGenes(o.sysHist[len(o.sysHist)-1:])
	return obs, nil
}

func (o *Observer) discover() ([]workload.Workload, []int, error) {
	var exited []int
	for {
		ws, err := o.disc.Discover(o.sel)
		if err == nil {
			return ws, exited, nil
		}
		if o.ticks == 0 || !errors.Is(err, workload.ErrNoSuchProcess) {
			return nil, exited, err
		}
		// Find which selected processes are gone and drop them.
		var alive []int
		for _, pid := range o.sel.PIDs {
			if _, perr := o.disc.Discover(workload.Selector{PIDs: []int{pid}}); errors.Is(perr, workload.ErrNoSuchProcess) {
				exited = append(exited, pid)
				continue
			}
			alive = append(alive, pid)
		}
		if len(alive) == len(o.sel.PIDs) {
			return nil, exited, err
		}
		o.sel.PIDs = alive
		if len(alive) == 0 && len(o.sel.Cgroups) == 0 && !o.sel.All {
			return nil, exited, fmt.Errorf("every selected process has exited: %w", err)
		}
	}
}

func firstV1(m map[string]string) string {
	for _, c := range []string{"name=systemd", "cpu", "cpuacct", "memory", "cpuset", "blkio", "pids"} {
		if p, ok := m[c]; ok && p != "/" {
			return p
		}
	}
	return ""
}
