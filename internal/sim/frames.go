package sim

import (
	"math"
	"time"

	"sculpt/internal/telemetry"
)

// frame is the telemetry of one workload over one interval of dt, in the
// schema the real collectors produce (procfs, schedstat, cgroup, PSI,
// perf hardware counters, sockets, eBPF request latency), from the model's
// outcome.
func frame(id string, at time.Time, dt time.Duration, p Program, pl Placement, o Outcome, hw *Hardware) telemetry.Frame {
	f := telemetry.Frame{Workload: id, Time: at, Interval: dt}
	v := &f.Values
	s := dt.Seconds()
	cpu := o.CPU * s
	user := 0.85
	if p.Kind == KindService || p.Kind == KindIOBatch {
		user = 0.45
	}
	v.Set(telemetry.CPUUserSec, cpu*user)
	v.Set(telemetry.CPUSystemSec, cpu*(1-user))
	v.Set(telemetry.CgCPUUsageSec, cpu)
	v.Set(telemetry.RunTimeSec, cpu)
	v.Set(telemetry.RunDelaySec, o.WaitFrac*cpu)
	v.Set(telemetry.Threads, float64(len(pl.Threads)))
	v.Set(telemetry.Processes, 1)
	v.Set(telemetry.RSSBytes, p.RSSGB*(1<<30))
	run := 0.0
	if p.CPU > 0 {
		run = o.CPU / p.CPU
	}
	v.Set(telemetry.MinorFaults, p.FaultRate*run*s)
	v.Set(telemetry.MajorFaults, 0)
	// Wakeups: a service wakes per request; batch work rarely sleeps; an
	// I/O streamer per 128 KiB request.
	vol := 5 * float64(len(pl.Threads)) * s
	switch p.Kind {
	case KindService:
		vol = o.Served * s
	case KindIOBatch:
		vol = p.IOBps * run / (128 << 10) * s
	}
	v.Set(telemetry.CtxVoluntary, vol)
	v.Set(telemetry.CtxInvoluntary, math.Min(o.WaitFrac, 4)*250*float64(len(pl.Threads))*s)
	v.Set(telemetry.Timeslices, vol+math.Min(o.WaitFrac, 4)*250*float64(len(pl.Threads))*s)
	v.Set(telemetry.Migrations, float64(len(pl.Threads))*s*migrationsPerSec(pl))
	// Storage and syscalls.
	io := p.IOBps * run * s
	v.Set(telemetry.IOReadBytes, 0)
	v.Set(telemetry.IOWriteBytes, io)
	netB := p.NetBps * run * s
	ops := io / (128 << 10)
	if p.Kind == KindService {
		ops += 2 * o.Served * s
	}
	v.Set(telemetry.IOReadOps, ops/2)
	v.Set(telemetry.IOWriteOps, ops/2)
	v.Set(telemetry.IOReadChars, netB/2)
	v.Set(telemetry.IOWriteChars, netB/2+io)
	// NUMA: pages on the nodes of the CPUs it may run on.
	pages := p.RSSGB * (1 << 30) / 4096
	v.Set(telemetry.NUMAPagesTotal, pages)
	v.Set(telemetry.NUMAPagesLocal, pages*o.LocalFrac)
	// PSI: the share of time some thread of it waited for a CPU.
	v.Set(telemetry.PSICPUSomeSec, math.Min(1, o.WaitFrac*o.CPU/math.Max(1, float64(len(pl.Threads))))*s)
	v.Set(telemetry.PSIMemSomeSec, 0)
	v.Set(telemetry.PSIIOSomeSec, 0)
	// Hardware counters.
	cycles := cpu * hw.GHz * 1e9
	insn := cycles * o.IPC
	loads := insn * p.APKI / 1000
	v.Set(telemetry.PerfCycles, cycles)
	v.Set(telemetry.PerfInstructions, insn)
	v.Set(telemetry.PerfLLCLoads, loads)
	v.Set(telemetry.PerfLLCMisses, loads*o.LLCMiss)
	v.Set(telemetry.PerfCacheRefs, loads)
	v.Set(telemetry.PerfCacheMisses, loads*o.LLCMiss)
	v.Set(telemetry.PerfBranches, insn*0.18)
	v.Set(telemetry.PerfBranchMisses, insn*0.18*0.01)
	// Sockets and the network namespace (its own).
	socks := 0.0
	if p.Kind == KindService {
		socks = 1 + 4*float64(len(pl.Threads))
	}
	v.Set(telemetry.Sockets, socks)
	v.Set(telemetry.SocketsTCP, socks)
	v.Set(telemetry.Pipes, 0)
	v.Set(telemetry.NetNSShared, 0)
	v.Set(telemetry.NetRxBytes, netB/2)
	v.Set(telemetry.NetTxBytes, netB/2)
	if p.Kind == KindService && o.Served > 0 {
		n := o.Served * s
		v.Set(telemetry.ReqServed, n)
		v.Set(telemetry.ReqLatencySec, n*(o.P50+o.P99)/2*0.6)
		latencyBuckets(v, n, o.P50, o.P99)
	}
	return f
}

// migrationsPerSec: a thread free to run anywhere moves between CPUs now
// and then; a pinned one to a single CPU never.
func migrationsPerSec(pl Placement) float64 {
	if len(pl.Threads) == 0 || len(pl.Threads[0].CPUs) <= 1 {
		return 0
	}
	return 20
}

// latencyBuckets spreads n requests over the eBPF latency buckets as a
// shifted exponential through p50 and p99.
func latencyBuckets(v *telemetry.Values, n, p50, p99 float64) {
	b := math.Max((p99-p50)/(math.Log(100)-math.Log(2)), 1e-9)
	a := math.Max(0, p50-b*math.Log(2))
	cdf := func(x float64) float64 {
		if x <= a {
			return 0
		}
		return 1 - math.Exp(-(x-a)/b)
	}
	for i := 0; i < telemetry.ReqLatBuckets; i++ {
		lo, hi := telemetry.ReqLatBucketBounds(i)
		c := cdf(hi) - cdf(lo)
		if math.IsInf(hi, 1) {
			c = 1 - cdf(lo)
		}
		v.Set(telemetry.ReqLatBucket0+telemetry.Metric(i), n*c)
	}
}
