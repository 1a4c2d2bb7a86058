package engine

import (
	"math"
	"time"

	"sculpt/internal/dna"
)

// Units of BatchThroughput.
const (
	ThroughputInstructions = "instructions/s"
	ThroughputCores        = "cores"
)

// BatchThroughput is the work a batch workload got done per second over the
// window of its genes, with its unit, in this order of preference:
//
//  1. instructions_rate (instructions/s): instructions retired, where the
//     machine has a hardware PMU. Time spent waiting on a run queue, on
//     memory or on a remote NUMA node retires nothing, so a better
//     arrangement shows as more instructions for the same CPU time.
//  2. cpu_util (cores): CPU time used. It grows when a CPU-bound program
//     gets more CPU, but counts stalled cycles as work.
//
// Storage and network bytes (io_read_bps, io_write_bps, net_*_bps) stay
// genes of their own: they are not in a unit comparable to either, and most
// batch work's storage traffic follows its CPU progress. unit is "" (and
// value 0) when neither gene was measured. Values are only comparable
// between intervals of the same unit: a caller that sees the unit change
// (the PMU went away) must not compare across it. A workload's own counter
// (objectives' maximize: throughput with metric:, through CounterRate) comes
// before both.
func BatchThroughput(genes dna.Genes) (value float64, unit string) {
	if v, ok := genes["instructions_rate"]; ok && isFiniteThroughput(v) && v >= 0 {
		return v, ThroughputInstructions
	}
	if v, ok := genes["cpu_util"]; ok && isFiniteThroughput(v) && v >= 0 {
		return v, ThroughputCores
	}
	return 0, ""
}

// CounterRate is the per-second increase of a monotonic counter (a
// Prometheus counter, e.g. an application's jobs_completed_total) between
// two readings dt apart. A counter lower than before was reset (the process
// restarted, counting again from 0): as Prometheus's rate(), the increase is
// then taken as cur, what it counted since the reset, a lower bound. ok is
// false when the rate cannot be known: dt not positive, or a reading
// negative, NaN or infinite.
func CounterRate(prev, cur float64, dt time.Duration) (float64, bool) {
	if dt <= 0 || !isFiniteThroughput(prev) || !isFiniteThroughput(cur) || prev < 0 || cur < 0 {
		return 0, false
	}
	inc := cur - prev
	if cur < prev {
		inc = cur
	}
	return inc / dt.Seconds(), true
}

func isFiniteThroughput(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
