// Package dna turns telemetry frames into a workload's DNA: named,
// interpretable genes computed over a window of recent frames, and a
// classification into archetypes.
//
// It never touches the machine. A gene whose inputs were not measured is
// absent from the Genes map, never zero: "not measured" and "none" differ.
package dna

import (
	"math"
	"sort"

	"sculpt/internal/telemetry"
)

// GeneInfo documents one gene; docs/genes.md is generated from Catalog.
type GeneInfo struct {
	Name    string
	Unit    string
	Source  string // kernel source(s)
	Formula string
	Absent  string // when the gene is absent
}

// Catalog documents every gene sculpt computes, in output order.
var Catalog = []GeneInfo{
	{"cpu_util", "cores", "a workload owning its cgroup (container, unit, cgroup): cpu.stat usage_usec / cpuacct.usage; else /proc/PID/stat utime+stime+cutime+cstime", "cgroup: Δusage / Δt; else (Σ Δ(utime+stime) + Σ Δ(cutime+cstime) − Σ, over processes that exited in the interval, their last (utime+stime+cutime+cstime), from the workload of the ancestor that reaped them) / Δt: processes that start and exit between two sweeps count in full, once", "no process or cgroup CPU counters were read in the window"},
	{"user_frac", "fraction 0..1", "/proc/PID/stat utime, stime, cutime, cstime", "Δ(user + reaped children's user) / Δ(user + system, own and reaped children's), counted as for cpu_util", "CPU time not measured, or no CPU used in the window"},
	{"runq_delay_frac", "ratio", "/proc/PID/task/TID/schedstat", "Δ(time runnable waiting) / Δ(time running)", "schedstat unavailable (CONFIG_SCHEDSTATS off) or no run time in the window"},
	{"ctx_vol_rate", "switches/s", "/proc/PID/task/TID/status voluntary_ctxt_switches", "Δvoluntary / Δt", "status not readable"},
	{"ctx_invol_rate", "switches/s", "/proc/PID/task/TID/status nonvoluntary_ctxt_switches", "Δnonvoluntary / Δt", "status not readable"},
	{"migrations_rate", "migrations/s", "/proc/PID/task/TID/sched se.nr_migrations, else perf cpu-migrations", "Δmigrations / Δt", "neither source readable"},
	{"minflt_rate", "faults/s", "/proc/PID/stat minflt, cminflt", "Δ(minflt + reaped children's cminflt, counted once as for cpu_util) / Δt", "stat not readable"},
	{"majflt_rate", "faults/s", "/proc/PID/stat majflt, cmajflt", "Δ(majflt + reaped children's cmajflt, counted once as for cpu_util) / Δt", "stat not readable"},
	{"rss_bytes", "bytes", "/proc/PID/status VmRSS (summed)", "latest VmRSS", "status not readable"},
	{"mem_growth_rate", "bytes/s", "/proc/PID/status VmRSS", "(last RSS − first RSS in window) / Δt", "fewer than two RSS readings in the window"},
	{"numa_local_frac", "fraction 0..1", "/proc/PID/numa_maps, /sys/devices/system/node", "pages on nodes of the CPUs it may run on / pages with a known node", "numa_maps sampling off or not yet sampled, or no pages"},
	{"io_read_bps", "bytes/s", "/proc/PID/io read_bytes (cgroup blkio/io.stat when no process values)", "Δread_bytes / Δt (storage layer; a process's io holds its reaped children's, counted once as for cpu_util)", "io not readable (another user's process without root)"},
	{"io_write_bps", "bytes/s", "/proc/PID/io write_bytes (cgroup blkio/io.stat when no process values)", "Δwrite_bytes / Δt (storage layer)", "io not readable"},
	{"io_ops_rate", "syscalls/s", "/proc/PID/io syscr+syscw", "Δ(read+write family system calls) / Δt, every file kind", "io not readable"},
	{"io_avg_size", "bytes", "/proc/PID/io rchar, wchar, syscr, syscw", "Δ(rchar+wchar) / Δ(syscr+syscw)", "io not readable, or no read/write calls in the window"},
	{"net_rx_bps", "bytes/s", "eBPF sock/sock_recv_length per process; else /proc/PID/net/dev of the workload's own network namespace", "eBPF: Δ(TCP+UDP bytes received − loopback) / Δt; else Δrx bytes on non-loopback interfaces / Δt", "no eBPF and the namespace is shared with other workloads (bytes cannot be attributed), or net/dev unreadable"},
	{"net_tx_bps", "bytes/s", "eBPF sock/sock_send_length per process; else /proc/PID/net/dev of the workload's own network namespace", "as net_rx_bps, sent", "as net_rx_bps"},
	{"net_loopback_bps", "bytes/s", "eBPF sock/sock_{send,recv}_length per process", "Δ(loopback TCP+UDP bytes sent + received) / Δt", "no eBPF collector"},
	{"ipc_rate", "calls/s", "eBPF raw_syscalls (IPC class: pipes, unix sockets, futex, SysV/POSIX IPC); else /proc/PID/io and /proc/PID/fd", "eBPF: ΔIPC-class system calls / Δt; else the estimate Δ(syscr+syscw) × (1 − storage share of Δ(rchar+wchar)), 0 when it holds no pipe or socket", "no eBPF, and io or fd table not readable"},
	{"comm_peers", "workloads", "/proc/PID/fd pipe and socket inodes, /proc/net/{tcp,tcp6,unix}, sock_diag; eBPF pipe/unix/loopback bytes", "distinct workloads sharing a pipe, unix socket or TCP connection, or exchanging bytes over one (see peers, peer_bytes)", "fd tables not scanned and no eBPF"},
	{"sockets", "sockets", "/proc/PID/fd", "open sockets (latest)", "fd tables not scanned"},
	{"threads", "threads", "/proc/PID/stat num_threads", "threads (latest, summed)", "stat not readable"},
	{"cpu_throttled_frac", "fraction 0..1", "cgroup cpu.stat throttled time", "Δthrottled seconds / Δt", "the workload has no cgroup of its own, or no CPU quota accounting"},
	{"syscall_entropy", "bits", "eBPF raw_syscalls sys_enter", "−Σ p·log2 p over the 7 system-call classes, p = Δcalls of the class / Δcalls", "no eBPF collector, or no system calls in the window"},
	{"sys_file_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "Δfile-I/O system calls / Δsystem calls", "as syscall_entropy"},
	{"sys_net_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "Δnetwork-socket system calls / Δsystem calls", "as syscall_entropy"},
	{"sys_ipc_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "ΔIPC system calls (pipes, unix sockets, futex, SysV/POSIX IPC) / Δsystem calls", "as syscall_entropy"},
	{"sys_mem_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "Δmemory-management system calls / Δsystem calls", "as syscall_entropy"},
	{"sys_sched_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "Δscheduling and waiting system calls / Δsystem calls", "as syscall_entropy"},
	{"sys_proc_frac", "fraction 0..1", "eBPF raw_syscalls sys_enter", "Δprocess-control system calls / Δsystem calls", "as syscall_entropy"},
	{"psi_cpu", "fraction 0..1", "cgroup v2 cpu.pressure some total", "Δstalled seconds / Δt", "the workload is not in a cgroup v2 group of its own with PSI files: cgroup v1 has no PSI, and the machine-wide /proc/pressure figures are not a workload's (they are in the system genes)"},
	{"psi_mem", "fraction 0..1", "cgroup v2 memory.pressure some total", "Δstalled seconds / Δt", "as psi_cpu"},
	{"psi_io", "fraction 0..1", "cgroup v2 io.pressure some total", "Δstalled seconds / Δt", "as psi_cpu"},
	{"burstiness", "coefficient of variation", "as cpu_util", "stddev / mean of cpu_util over the window's intervals", "fewer than 3 intervals in the window, or no CPU used"},
	{"ipc_insn_per_cycle", "instructions/cycle", "perf hardware instructions, cycles", "Δinstructions / Δcycles", "no hardware PMU (VMs, most containers)"},
	{"llc_miss_ratio", "fraction 0..1", "perf hw-cache LL read miss / access", "ΔLLC misses / ΔLLC loads", "no hardware PMU"},
	{"cache_miss_rate", "misses/s", "perf hardware cache-misses", "Δcache misses / Δt", "no hardware PMU"},
	{"branch_miss_ratio", "fraction 0..1", "perf hardware branch-misses, branch-instructions", "Δbranch misses / Δbranches", "no hardware PMU"},
	{"instructions_rate", "instructions/s", "perf hardware instructions", "Δinstructions retired / Δt: the work a batch workload got done, comparable across intervals of the same program (engine.BatchThroughput prefers it to cpu_util)", "no hardware PMU"},
	{"req_rate", "requests/s", "eBPF sock/sk_data_ready, sock/sock_send_length (server end of TCP and unix stream connections)", "Δrequests served / Δt; a request is data reaching the socket, answered by the process's next send on it", "no eBPF collector or kernel before 6.6 (no sk_data_ready), or the workload has served no request since sculpt started"},
	{"req_p50_s", "s", "as req_rate: a latency histogram per process (4 buckets per power of two)", "median of the window's request latencies (arrival on the socket to the reply's send: queueing, wakeup, run-queue wait, service), interpolated in its bucket", "as req_rate, or no request served in the window"},
	{"req_p90_s", "s", "as req_p50_s", "90th percentile of the window's request latencies, as req_p50_s", "as req_p50_s"},
	{"req_p99_s", "s", "as req_p50_s", "99th percentile of the window's request latencies, as req_p50_s", "as req_p50_s"},
	{"req_p999_s", "s", "as req_p50_s", "99.9th percentile of the window's request latencies, as req_p50_s (few requests in a window make it the slowest one)", "as req_p50_s"},
	{"energy_watts", "W", "RAPL /sys/class/powercap/intel-rapl:N/energy_uj (package-N zones), wrap-around at max_energy_range_uj undone", "Δjoules of every package / Δt; machine-wide: a system gene only, never a workload's (RAPL cannot tell whose work used it)", "a workload's genes; no RAPL: /sys/class/powercap or its intel-rapl zones missing (VMs), or energy_uj not readable (root only since CVE-2020-8694)"},
	{"energy_dram_watts", "W", "RAPL /sys/class/powercap/intel-rapl:*/energy_uj (dram zones)", "Δjoules of every dram zone / Δt; machine-wide, as energy_watts", "as energy_watts, or the platform measures no DRAM energy (AMD, most client CPUs)"},
}

// Genes maps gene names to values; a gene that was not measured is absent.
type Genes map[string]float64

// Names returns the gene names present, in Catalog order.
func (g Genes) Names() []string {
	names := make([]string, 0, len(g))
	for _, gi := range Catalog {
		if _, ok := g[gi.Name]; ok {
			names = append(names, gi.Name)
		}
	}
	return names
}

// window sums a workload's frames.
type window struct {
	seconds   float64
	sum       telemetry.Values // counters summed over the frames with an interval
	last      telemetry.Values // gauges of the newest frame
	cpuSteps  []float64        // cpu_util of each interval, for burstiness
	cpuSec    float64          // CPU seconds over the frames that measured it (frameCPU)
	hasCPU    bool
	firstRSS  float64
	hasFirst  bool
	peers     map[string]float64 // channels, newest scan
	peerBytes map[string]float64 // bytes, summed over the window
}

func newWindow(frames []telemetry.Frame) *window {
	w := &window{}
	for i := range frames {
		f := &frames[i]
		if rss, ok := f.Values.Get(telemetry.RSSBytes); ok && !w.hasFirst {
			w.firstRSS, w.hasFirst = rss, true
		}
		if f.Interval > 0 {
			for id, b := range f.PeerBytes {
				if w.peerBytes == nil {
					w.peerBytes = make(map[string]float64)
				}
				w.peerBytes[id] += b
			}
			secs := f.Interval.Seconds()
			w.seconds += secs
			for m := telemetry.Metric(0); m < telemetry.NumMetrics; m++ {
				if telemetry.MetricInfo[m].Kind != telemetry.Counter {
					continue
				}
				if v, ok := f.Values.Get(m); ok {
					w.sum.Add(m, v)
				}
			}
			if c, ok := frameCPU(&f.Values); ok {
				w.cpuSteps = append(w.cpuSteps, c/secs)
				w.cpuSec += c
				w.hasCPU = true
			}
		}
	}
	if n := len(frames); n > 0 {
		w.last = frames[n-1].Values
		w.peers = frames[n-1].Peers
	}
	return w
}

// frameCPU returns the CPU seconds a frame counted: the workload's own
// cgroup's usage when the cgroup collector gave it one (only workloads that
// own their cgroup get one; it counts every process that ran in it, however
// short-lived), else the processes' own user+system time plus that of the
// children they reaped in the interval (the sampler counts each once).
func frameCPU(v *telemetry.Values) (float64, bool) {
	if c, ok := v.Get(telemetry.CgCPUUsageSec); ok {
		return c, true
	}
	u, okU := v.Get(telemetry.CPUUserSec)
	s, okS := v.Get(telemetry.CPUSystemSec)
	if !okU && !okS {
		return 0, false
	}
	cu, _ := v.Get(telemetry.ChildCPUUserSec)
	cs, _ := v.Get(telemetry.ChildCPUSystemSec)
	return u + s + cu + cs, true
}

func (w *window) rate(m telemetry.Metric) (float64, bool) {
	v, ok := w.sum.Get(m)
	if !ok || w.seconds <= 0 {
		return 0, false
	}
	return v / w.seconds, true
}

// rateWithChildren is the rate of m plus that of child, the same counter of
// the reaped children (absent when m is).
func (w *window) rateWithChildren(m, child telemetry.Metric) (float64, bool) {
	v, ok := w.rate(m)
	if !ok {
		return 0, false
	}
	c, _ := w.rate(child)
	return v + c, true
}

// ComputeGenes computes genes from a workload's frames, oldest first. Only
// frames with a non-zero Interval contribute counters; the newest frame
// gives the gauges.
func ComputeGenes(frames []telemetry.Frame) (Genes, map[string]float64) {
	g, peers, _ := computeGenes(frames)
	return g, peers
}

// PeerBytes sums the bytes a workload exchanged with each peer over its
// frames (eBPF); nil without eBPF.
func PeerBytes(frames []telemetry.Frame) map[string]float64 {
	return newWindow(frames).peerBytes
}

func computeGenes(frames []telemetry.Frame) (Genes, map[string]float64, *window) {
	w := newWindow(frames)
	g := Genes{}
	set := func(name string, v float64, ok bool) {
		if ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			g[name] = v
		}
	}
	ratio := func(num, den telemetry.Metric) (float64, bool) {
		n, ok1 := w.sum.Get(num)
		d, ok2 := w.sum.Get(den)
		if !ok1 || !ok2 || d <= 0 {
			return 0, false
		}
		return n / d, true
	}

	if w.hasCPU && w.seconds > 0 {
		set("cpu_util", w.cpuSec/w.seconds, true)
	}
	user, okU := w.sum.Get(telemetry.CPUUserSec)
	sys, okS := w.sum.Get(telemetry.CPUSystemSec)
	if okU || okS {
		cu, _ := w.sum.Get(telemetry.ChildCPUUserSec)
		cs, _ := w.sum.Get(telemetry.ChildCPUSystemSec)
		if tot := user + sys + cu + cs; tot > 0 {
			set("user_frac", (user+cu)/tot, true)
		}
	}
	set2 := func(name string) func(float64, bool) { return func(v float64, ok bool) { set(name, v, ok) } }
	set2("runq_delay_frac")(ratio(telemetry.RunDelaySec, telemetry.RunTimeSec))
	set2("ctx_vol_rate")(w.rate(telemetry.CtxVoluntary))
	set2("ctx_invol_rate")(w.rate(telemetry.CtxInvoluntary))
	if v, ok := w.rate(telemetry.Migrations); ok {
		set("migrations_rate", v, true)
	} else {
		set2("migrations_rate")(w.rate(telemetry.PerfCPUMigrations))
	}
	set2("minflt_rate")(w.rateWithChildren(telemetry.MinorFaults, telemetry.ChildMinorFaults))
	set2("majflt_rate")(w.rateWithChildren(telemetry.MajorFaults, telemetry.ChildMajorFaults))
	if rss, ok := w.last.Get(telemetry.RSSBytes); ok {
		set("rss_bytes", rss, true)
		if w.hasFirst && w.seconds > 0 && len(frames) > 1 {
			set("mem_growth_rate", (rss-w.firstRSS)/w.seconds, true)
		}
	}
	if tot, ok := w.last.Get(telemetry.NUMAPagesTotal); ok && tot > 0 {
		loc, _ := w.last.Get(telemetry.NUMAPagesLocal)
		set("numa_local_frac", loc/tot, true)
	}
	if v, ok := w.rate(telemetry.IOReadBytes); ok {
		set("io_read_bps", v, true)
	} else {
		set2("io_read_bps")(w.rate(telemetry.CgIOReadBytes))
	}
	if v, ok := w.rate(telemetry.IOWriteBytes); ok {
		set("io_write_bps", v, true)
	} else {
		set2("io_write_bps")(w.rate(telemetry.CgIOWriteBytes))
	}
	rOps, okR := w.sum.Get(telemetry.IOReadOps)
	wOps, okW := w.sum.Get(telemetry.IOWriteOps)
	rCh, _ := w.sum.Get(telemetry.IOReadChars)
	wCh, _ := w.sum.Get(telemetry.IOWriteChars)
	if (okR || okW) && w.seconds > 0 {
		ops := rOps + wOps
		set("io_ops_rate", ops/w.seconds, true)
		if ops > 0 {
			set("io_avg_size", (rCh+wCh)/ops, true)
		}
		socks, okSock := w.last.Get(telemetry.Sockets)
		pipes, okPipe := w.last.Get(telemetry.Pipes)
		if okSock || okPipe {
			ipc := 0.0
			if socks+pipes > 0 {
				rb, _ := w.sum.Get(telemetry.IOReadBytes)
				wb, _ := w.sum.Get(telemetry.IOWriteBytes)
				storage := 0.0
				if rCh+wCh > 0 {
					storage = math.Min(1, (rb+wb)/(rCh+wCh))
				}
				ipc = ops * (1 - storage) / w.seconds
			}
			set("ipc_rate", ipc, true)
		}
	}
	// eBPF, where it runs, counts what /proc can only estimate.
	if v, ok := w.rate(telemetry.EBPFSysIPC); ok {
		set("ipc_rate", v, true)
	}
	sockRx, okRx := w.sum.Get(telemetry.EBPFSockRxBytes)
	sockTx, okTx := w.sum.Get(telemetry.EBPFSockTxBytes)
	if okRx && okTx && w.seconds > 0 {
		loRx, _ := w.sum.Get(telemetry.EBPFLoopRxBytes)
		loTx, _ := w.sum.Get(telemetry.EBPFLoopTxBytes)
		set("net_rx_bps", math.Max(0, sockRx-loRx)/w.seconds, true)
		set("net_tx_bps", math.Max(0, sockTx-loTx)/w.seconds, true)
		set("net_loopback_bps", (loRx+loTx)/w.seconds, true)
	} else if shared, ok := w.last.Get(telemetry.NetNSShared); ok && shared == 0 {
		set2("net_rx_bps")(w.rate(telemetry.NetRxBytes))
		set2("net_tx_bps")(w.rate(telemetry.NetTxBytes))
	}
	syscallMix(g, &w.sum)
	peerSet := make(map[string]bool, len(w.peers)+len(w.peerBytes))
	for id := range w.peers {
		peerSet[id] = true
	}
	for id := range w.peerBytes {
		peerSet[id] = true
	}
	_, scanned := w.last.Get(telemetry.Sockets)
	if v, ok := w.last.Get(telemetry.Sockets); ok {
		set("sockets", v, true)
	}
	if _, ebpf := w.sum.Get(telemetry.EBPFSysOther); scanned || ebpf || len(peerSet) > 0 {
		set("comm_peers", float64(len(peerSet)), true)
	}
	if v, ok := w.last.Get(telemetry.Threads); ok {
		set("threads", v, true)
	}
	set2("cpu_throttled_frac")(w.rate(telemetry.CgThrottledSec))
	set2("psi_cpu")(w.rate(telemetry.PSICPUSomeSec))
	set2("psi_mem")(w.rate(telemetry.PSIMemSomeSec))
	set2("psi_io")(w.rate(telemetry.PSIIOSomeSec))
	if len(w.cpuSteps) >= 3 {
		mean, sd := meanStd(w.cpuSteps)
		if mean > 0 {
			set("burstiness", sd/mean, true)
		}
	}
	set2("ipc_insn_per_cycle")(ratio(telemetry.PerfInstructions, telemetry.PerfCycles))
	set2("llc_miss_ratio")(ratio(telemetry.PerfLLCMisses, telemetry.PerfLLCLoads))
	set2("cache_miss_rate")(w.rate(telemetry.PerfCacheMisses))
	set2("branch_miss_ratio")(ratio(telemetry.PerfBranchMisses, telemetry.PerfBranches))
	set2("instructions_rate")(w.rate(telemetry.PerfInstructions))
	set2("req_rate")(w.rate(telemetry.ReqServed))
	set2("req_p50_s")(telemetry.ReqLatencyQuantile(&w.sum, 0.5))
	set2("req_p90_s")(telemetry.ReqLatencyQuantile(&w.sum, 0.9))
	set2("req_p99_s")(telemetry.ReqLatencyQuantile(&w.sum, 0.99))
	set2("req_p999_s")(telemetry.ReqLatencyQuantile(&w.sum, 0.999))
	// RAPL: only the system frame carries them (Groups[SystemID]).
	set2("energy_watts")(w.rate(telemetry.EnergyPackageJ))
	set2("energy_dram_watts")(w.rate(telemetry.EnergyDRAMJ))
	return g, w.peers, w
}

// sysClasses pairs the eBPF system-call class counters with their genes.
var sysClasses = []struct {
	m    telemetry.Metric
	gene string
}{
	{telemetry.EBPFSysFile, "sys_file_frac"},
	{telemetry.EBPFSysNet, "sys_net_frac"},
	{telemetry.EBPFSysIPC, "sys_ipc_frac"},
	{telemetry.EBPFSysMem, "sys_mem_frac"},
	{telemetry.EBPFSysSched, "sys_sched_frac"},
	{telemetry.EBPFSysProc, "sys_proc_frac"},
	{telemetry.EBPFSysOther, ""},
}

// syscallMix sets the class fractions and their entropy from eBPF counts.
func syscallMix(g Genes, sum *telemetry.Values) {
	var total float64
	counts := make([]float64, len(sysClasses))
	for i, c := range sysClasses {
		v, ok := sum.Get(c.m)
		if !ok {
			return
		}
		counts[i] = v
		total += v
	}
	if total <= 0 {
		return
	}
	var h float64
	for i, c := range sysClasses {
		p := counts[i] / total
		if c.gene != "" {
			g[c.gene] = p
		}
		if p > 0 {
			h -= p * math.Log2(p)
		}
	}
	g["syscall_entropy"] = h
}

func meanStd(xs []float64) (float64, float64) {
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)))
}

// SortedPeers returns peer IDs by descending weight, then by ID.
func SortedPeers(peers map[string]float64) []string {
	ids := make([]string, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if peers[ids[i]] != peers[ids[j]] {
			return peers[ids[i]] > peers[ids[j]]
		}
		return ids[i] < ids[j]
	})
	return ids
}
