package engine

import (
	"fmt"
	"math"
	"strings"
	"time"

	"sculpt/internal/dna"
)

// Reward kinds.
const (
	// RewardLatency: 0 is perfect, lower is worse: minus the run-queue
	// delay ratio, minus CPU pressure, minus how far the workload's own
	// metric is past its target.
	RewardLatency = "latency"
	// RewardProgress: the work a workload sculpt demotes on purpose gets
	// done: CPU (cpu_util, cores; the Value) and storage bytes (io_bps);
	// judged against a floor, not for every drop.
	RewardProgress = "progress"
)

// Reward is how well one workload fares this interval.
type Reward struct {
	Kind  string             `json:"kind"`
	Value float64            `json:"value"`
	Parts map[string]float64 `json:"parts"`
}

// MetricReading is one scraped value of a workload's own metric.
type MetricReading struct {
	Value  float64
	Target float64
	Better string // lower or higher
}

// RewardKind says how a workload with want w is judged: dedicated (or
// untouched) workloads by latency, workloads sent to the shared CPUs or a
// batch class by progress.
func RewardKind(w *Want) string {
	if w != nil && (w.Cores == CoresShared || w.Sched == "batch" || w.Sched == "idle") {
		return RewardProgress
	}
	return RewardLatency
}

// ComputeReward is the reward of one workload from its genes and, when
// configured, its own metric. Absent genes contribute nothing (and are not
// listed in Parts).
func ComputeReward(kind string, g dna.Genes, m *MetricReading) Reward {
	r := Reward{Kind: kind, Parts: map[string]float64{}}
	if kind == RewardProgress {
		if v, ok := g["cpu_util"]; ok {
			r.Parts["cpu_util"] = v
			r.Value = v
		}
		rd, okr := g["io_read_bps"]
		wr, okw := g["io_write_bps"]
		if okr || okw {
			r.Parts["io_bps"] = rd + wr
		}
		return r
	}
	if v, ok := g["runq_delay_frac"]; ok {
		r.Parts["runq_delay_frac"] = v
		r.Value -= v
	}
	if v, ok := g["psi_cpu"]; ok {
		r.Parts["psi_cpu"] = v
		r.Value -= v
	}
	if m != nil && m.Target > 0 {
		excess := m.Value/m.Target - 1
		if m.Better == "higher" {
			excess = 1 - m.Value/m.Target
		}
		excess = math.Max(0, excess)
		r.Parts["metric"] = m.Value
		r.Parts["metric_excess"] = excess
		r.Value -= excess
	}
	return r
}

// Worse says whether after is worse than before by more than the config
// allows: a latency reward that dropped by more than Tolerance, or a
// progress reward whose every kind of work (CPU, storage bytes) that was
// significant before fell below ProgressFloor of before. An I/O streamer
// moved to the idle class uses less CPU but moves as many bytes: that is
// not worse.
func Worse(before, after Reward, c RollbackConfig) bool {
	if before.Kind != after.Kind {
		return false
	}
	if before.Kind != RewardProgress {
		return after.Value < before.Value-c.Tolerance
	}
	significant := false
	for part, min := range progressSignificant {
		b, ok := before.Parts[part]
		if !ok || b < min {
			continue
		}
		significant = true
		if a, ok := after.Parts[part]; !ok || a >= b*c.ProgressFloor {
			return false // this kind of work goes on (or cannot be told)
		}
	}
	return significant
}

// progressSignificant is the least of each kind of work that counts as the
// work a demoted workload does: a spinner writes a few KiB/s of logs, which
// is not its progress.
var progressSignificant = map[string]float64{
	"cpu_util": 0.05,    // cores
	"io_bps":   1 << 20, // bytes/s
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return ""
	}
	var parts []string
	for k, v := range l {
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// scrapeTimeout bounds one scrape.
const scrapeTimeout = 2 * time.Second
