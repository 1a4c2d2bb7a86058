// Package telemetry samples the machine: one collector per kernel source,
// each reading an injectable root, together producing one Frame per workload
// per tick.
//
// Collectors make no decisions and never write to the machine. A source the
// machine lacks is reported by its probe with a typed *NotSupportedError and
// its metrics stay absent in every frame; absent is never written as zero.
package telemetry

import (
	"iter"
	"math/bits"
	"time"
)

// Metric names one raw value a collector can produce. Counters are
// cumulative in a Sample and per-interval deltas in a Frame; gauges are the
// latest reading in both.
type Metric uint8

// The raw metrics. Keep MetricInfo in step when adding one.
const (
	// /proc/PID/stat, /proc/PID/status (summed over a workload's processes)
	CPUUserSec   Metric = iota // counter, seconds of user CPU (stat utime)
	CPUSystemSec               // counter, seconds of system CPU (stat stime)
	MinorFaults                // counter, stat minflt
	MajorFaults                // counter, stat majflt
	// Of the children a process reaped (waited for), over their whole lives:
	// see Sampler for how a frame counts them once.
	ChildCPUUserSec   // counter, seconds of user CPU (stat cutime)
	ChildCPUSystemSec // counter, seconds of system CPU (stat cstime)
	ChildMinorFaults  // counter, stat cminflt
	ChildMajorFaults  // counter, stat cmajflt
	CtxVoluntary      // counter, status voluntary_ctxt_switches (all threads)
	CtxInvoluntary    // counter, status nonvoluntary_ctxt_switches (all threads)
	Threads           // gauge, stat num_threads
	Processes         // gauge, number of live processes
	RSSBytes          // gauge, status VmRSS
	// /proc/PID/schedstat (per thread, summed)
	RunTimeSec  // counter, seconds on CPU
	RunDelaySec // counter, seconds runnable but waiting on a run queue
	Timeslices  // counter, number of timeslices run
	// /proc/PID/sched
	Migrations // counter, se.nr_migrations
	// /proc/PID/io
	IOReadBytes  // counter, read_bytes (storage layer)
	IOWriteBytes // counter, write_bytes (storage layer)
	IOReadChars  // counter, rchar (all read syscalls incl. pipes/sockets)
	IOWriteChars // counter, wchar
	IOReadOps    // counter, syscr
	IOWriteOps   // counter, syscw
	// /proc/PID/smaps_rollup
	PSSBytes  // gauge, Pss
	AnonBytes // gauge, Anonymous
	SwapBytes // gauge, Swap
	// /proc/PID/numa_maps (sampled less often)
	NUMAPagesTotal // gauge, pages with a known node
	NUMAPagesLocal // gauge, pages on the nodes of the CPUs the workload may run on
	// cgroup (v1 or v2) files of the workload's cgroup
	CgCPUUsageSec  // counter, cpuacct.usage or cpu.stat usage_usec
	CgThrottledSec // counter, cpu.stat throttled_time / throttled_usec
	CgMemoryBytes  // gauge, memory.usage_in_bytes or memory.current
	CgIOReadBytes  // counter, blkio / io.stat rbytes
	CgIOWriteBytes // counter, blkio / io.stat wbytes
	CgIOOps        // counter, blkio / io.stat rios+wios
	// PSI: the workload's cgroup (v2) or, where only the system's is known, absent
	PSICPUSomeSec // counter, cpu.pressure some total
	PSIMemSomeSec // counter, memory.pressure some total
	PSIIOSomeSec  // counter, io.pressure some total
	// perf software events (per thread, summed)
	PerfTaskClockSec  // counter
	PerfCtxSwitches   // counter
	PerfCPUMigrations // counter
	PerfPageFaults    // counter
	// perf hardware events, absent where the machine has no PMU
	PerfCycles       // counter
	PerfInstructions // counter
	PerfCacheRefs    // counter
	PerfCacheMisses  // counter
	PerfLLCLoads     // counter
	PerfLLCMisses    // counter
	PerfBranches     // counter
	PerfBranchMisses // counter
	// network: the workload's network namespace (/proc/PID/net/dev) and its sockets
	NetRxBytes     // counter, bytes received on the namespace's non-loopback interfaces
	NetTxBytes     // counter, bytes sent on the namespace's non-loopback interfaces
	NetNSShared    // gauge, 1 when the workload shares its netns with others (so NetRx/Tx are not its own)
	Sockets        // gauge, open sockets (tcp, udp, unix)
	SocketsTCP     // gauge
	SocketsUnix    // gauge
	Pipes          // gauge, open pipe ends
	SockQueueBytes // gauge, bytes queued in the workload's TCP/UDP sockets (tx+rx queues)
	// eBPF (ebpf*.go): system calls by class (SyscallClass order) and bytes per process
	EBPFSysFile     // counter, file I/O system calls
	EBPFSysNet      // counter, network socket system calls
	EBPFSysIPC      // counter, IPC system calls (pipes, unix sockets, futex, SysV/POSIX IPC)
	EBPFSysMem      // counter, memory-management system calls
	EBPFSysSched    // counter, scheduling and waiting system calls
	EBPFSysProc     // counter, process-control system calls
	EBPFSysOther    // counter, other system calls
	EBPFSockTxBytes // counter, TCP+UDP bytes sent (every destination, loopback included)
	EBPFSockRxBytes // counter, TCP+UDP bytes received
	EBPFLoopTxBytes // counter, of EBPFSockTxBytes: to a peer on this host (loopback)
	EBPFLoopRxBytes // counter, of EBPFSockRxBytes: from a peer on this host
	EBPFUnixTxBytes // counter, unix-socket bytes sent
	EBPFUnixRxBytes // counter, unix-socket bytes received
	EBPFPipeTxBytes // counter, bytes written to pipes
	EBPFPipeRxBytes // counter, bytes read from pipes
	// eBPF server-side requests (reqlat.go), per process; present only for
	// processes that served a request since the collector attached
	ReqServed     // counter, requests served (a reply after a request reached a server socket)
	ReqLatencySec // counter, summed latency of the requests served, seconds
	// RAPL energy (rapl_linux.go), machine-wide only (Groups[SystemID]):
	// joules since the collector started, wrap-arounds of energy_uj undone
	EnergyPackageJ // counter, joules of the package zones (package-N), summed over sockets
	EnergyCoreJ    // counter, joules of the core subzones (the cores of each package)
	EnergyUncoreJ  // counter, joules of the uncore subzones (integrated GPU on client parts)
	EnergyDRAMJ    // counter, joules of the dram zones, where the platform measures DRAM
	// ReqLatBucket0 is the first of ReqLatBuckets consecutive counters: the
	// requests served by latency bucket (ReqLatBucketBounds). Add new
	// metrics above it.
	ReqLatBucket0

	NumMetrics = ReqLatBucket0 + ReqLatBuckets
)

// Kind says how a metric accumulates.
type Kind uint8

// Counter metrics only grow (within one process's life); gauges are levels.
const (
	Counter Kind = iota
	Gauge
)

// Info documents a metric.
type Info struct {
	Name   string // snake_case, stable: used in traces and JSON
	Kind   Kind
	Unit   string
	Source string
}

// MetricInfo documents every Metric, indexed by it.
var MetricInfo = [NumMetrics]Info{
	CPUUserSec:        {"cpu_user_seconds", Counter, "s", "/proc/PID/stat utime"},
	CPUSystemSec:      {"cpu_system_seconds", Counter, "s", "/proc/PID/stat stime"},
	MinorFaults:       {"minor_faults", Counter, "faults", "/proc/PID/stat minflt"},
	MajorFaults:       {"major_faults", Counter, "faults", "/proc/PID/stat majflt"},
	ChildCPUUserSec:   {"cpu_children_user_seconds", Counter, "s", "/proc/PID/stat cutime (reaped children)"},
	ChildCPUSystemSec: {"cpu_children_system_seconds", Counter, "s", "/proc/PID/stat cstime (reaped children)"},
	ChildMinorFaults:  {"children_minor_faults", Counter, "faults", "/proc/PID/stat cminflt (reaped children)"},
	ChildMajorFaults:  {"children_major_faults", Counter, "faults", "/proc/PID/stat cmajflt (reaped children)"},
	CtxVoluntary:      {"ctx_voluntary", Counter, "switches", "/proc/PID/task/TID/status voluntary_ctxt_switches"},
	CtxInvoluntary:    {"ctx_involuntary", Counter, "switches", "/proc/PID/task/TID/status nonvoluntary_ctxt_switches"},
	Threads:           {"threads", Gauge, "threads", "/proc/PID/stat num_threads"},
	Processes:         {"processes", Gauge, "processes", "/proc"},
	RSSBytes:          {"rss_bytes", Gauge, "bytes", "/proc/PID/status VmRSS"},
	RunTimeSec:        {"run_seconds", Counter, "s", "/proc/PID/task/TID/schedstat field 1"},
	RunDelaySec:       {"run_delay_seconds", Counter, "s", "/proc/PID/task/TID/schedstat field 2"},
	Timeslices:        {"timeslices", Counter, "slices", "/proc/PID/task/TID/schedstat field 3"},
	Migrations:        {"migrations", Counter, "migrations", "/proc/PID/task/TID/sched se.nr_migrations"},
	IOReadBytes:       {"io_read_bytes", Counter, "bytes", "/proc/PID/io read_bytes"},
	IOWriteBytes:      {"io_write_bytes", Counter, "bytes", "/proc/PID/io write_bytes"},
	IOReadChars:       {"io_read_chars", Counter, "bytes", "/proc/PID/io rchar"},
	IOWriteChars:      {"io_write_chars", Counter, "bytes", "/proc/PID/io wchar"},
	IOReadOps:         {"io_read_ops", Counter, "syscalls", "/proc/PID/io syscr"},
	IOWriteOps:        {"io_write_ops", Counter, "syscalls", "/proc/PID/io syscw"},
	PSSBytes:          {"pss_bytes", Gauge, "bytes", "/proc/PID/smaps_rollup Pss"},
	AnonBytes:         {"anon_bytes", Gauge, "bytes", "/proc/PID/smaps_rollup Anonymous"},
	SwapBytes:         {"swap_bytes", Gauge, "bytes", "/proc/PID/smaps_rollup Swap"},
	NUMAPagesTotal:    {"numa_pages_total", Gauge, "pages", "/proc/PID/numa_maps N<node>= counts"},
	NUMAPagesLocal:    {"numa_pages_local", Gauge, "pages", "/proc/PID/numa_maps on nodes of Cpus_allowed"},
	CgCPUUsageSec:     {"cgroup_cpu_usage_seconds", Counter, "s", "cpuacct.usage | cpu.stat usage_usec"},
	CgThrottledSec:    {"cgroup_cpu_throttled_seconds", Counter, "s", "cpu.stat throttled_time | throttled_usec"},
	CgMemoryBytes:     {"cgroup_memory_bytes", Gauge, "bytes", "memory.usage_in_bytes | memory.current"},
	CgIOReadBytes:     {"cgroup_io_read_bytes", Counter, "bytes", "blkio.throttle.io_service_bytes | io.stat rbytes"},
	CgIOWriteBytes:    {"cgroup_io_write_bytes", Counter, "bytes", "blkio.throttle.io_service_bytes | io.stat wbytes"},
	CgIOOps:           {"cgroup_io_ops", Counter, "ops", "blkio.throttle.io_serviced | io.stat rios+wios"},
	PSICPUSomeSec:     {"psi_cpu_some_seconds", Counter, "s", "cgroup cpu.pressure some total"},
	PSIMemSomeSec:     {"psi_memory_some_seconds", Counter, "s", "cgroup memory.pressure some total"},
	PSIIOSomeSec:      {"psi_io_some_seconds", Counter, "s", "cgroup io.pressure some total"},
	PerfTaskClockSec:  {"perf_task_clock_seconds", Counter, "s", "perf software task-clock"},
	PerfCtxSwitches:   {"perf_context_switches", Counter, "switches", "perf software context-switches"},
	PerfCPUMigrations: {"perf_cpu_migrations", Counter, "migrations", "perf software cpu-migrations"},
	PerfPageFaults:    {"perf_page_faults", Counter, "faults", "perf software page-faults"},
	PerfCycles:        {"perf_cycles", Counter, "cycles", "perf hardware cpu-cycles"},
	PerfInstructions:  {"perf_instructions", Counter, "instructions", "perf hardware instructions"},
	PerfCacheRefs:     {"perf_cache_references", Counter, "refs", "perf hardware cache-references"},
	PerfCacheMisses:   {"perf_cache_misses", Counter, "misses", "perf hardware cache-misses"},
	PerfLLCLoads:      {"perf_llc_loads", Counter, "loads", "perf hw-cache LL read access"},
	PerfLLCMisses:     {"perf_llc_load_misses", Counter, "misses", "perf hw-cache LL read miss"},
	PerfBranches:      {"perf_branches", Counter, "branches", "perf hardware branch-instructions"},
	PerfBranchMisses:  {"perf_branch_misses", Counter, "misses", "perf hardware branch-misses"},
	NetRxBytes:        {"net_rx_bytes", Counter, "bytes", "/proc/PID/net/dev (netns)"},
	NetTxBytes:        {"net_tx_bytes", Counter, "bytes", "/proc/PID/net/dev (netns)"},
	NetNSShared:       {"netns_shared", Gauge, "bool", "/proc/PID/ns/net"},
	Sockets:           {"sockets", Gauge, "sockets", "/proc/PID/fd socket:[inode]"},
	SocketsTCP:        {"sockets_tcp", Gauge, "sockets", "/proc/net/tcp{,6} by inode"},
	SocketsUnix:       {"sockets_unix", Gauge, "sockets", "/proc/net/unix by inode"},
	Pipes:             {"pipes", Gauge, "pipes", "/proc/PID/fd pipe:[inode]"},
	SockQueueBytes:    {"socket_queue_bytes", Gauge, "bytes", "/proc/net/{tcp,udp}{,6} tx_queue+rx_queue"},
	EBPFSysFile:       {"sys_file_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysNet:        {"sys_net_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysIPC:        {"sys_ipc_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysMem:        {"sys_mem_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysSched:      {"sys_sched_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysProc:       {"sys_proc_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSysOther:      {"sys_other_calls", Counter, "syscalls", "eBPF raw_syscalls/sys_enter"},
	EBPFSockTxBytes:   {"sock_tx_bytes", Counter, "bytes", "eBPF sock/sock_send_length (inet)"},
	EBPFSockRxBytes:   {"sock_rx_bytes", Counter, "bytes", "eBPF sock/sock_recv_length (inet)"},
	EBPFLoopTxBytes:   {"sock_loopback_tx_bytes", Counter, "bytes", "eBPF sock/sock_send_length, peer address local"},
	EBPFLoopRxBytes:   {"sock_loopback_rx_bytes", Counter, "bytes", "eBPF sock/sock_recv_length, peer address local"},
	EBPFUnixTxBytes:   {"unix_tx_bytes", Counter, "bytes", "eBPF sock/sock_send_length (AF_UNIX)"},
	EBPFUnixRxBytes:   {"unix_rx_bytes", Counter, "bytes", "eBPF sock/sock_recv_length (AF_UNIX)"},
	EBPFPipeTxBytes:   {"pipe_tx_bytes", Counter, "bytes", "eBPF raw_syscalls sys_enter+sys_exit (write family on a pipe)"},
	EBPFPipeRxBytes:   {"pipe_rx_bytes", Counter, "bytes", "eBPF raw_syscalls sys_enter+sys_exit (read family on a pipe)"},
	ReqServed:         {"requests_served", Counter, "requests", "eBPF sock/sk_data_ready then sock/sock_send_length on a server socket"},
	ReqLatencySec:     {"request_latency_seconds", Counter, "s", "eBPF sock/sk_data_ready to sock/sock_send_length"},
	EnergyPackageJ:    {"energy_package_joules", Counter, "J", "/sys/class/powercap/intel-rapl:N/energy_uj (name package-N)"},
	EnergyCoreJ:       {"energy_core_joules", Counter, "J", "/sys/class/powercap/intel-rapl:N:M/energy_uj (name core)"},
	EnergyUncoreJ:     {"energy_uncore_joules", Counter, "J", "/sys/class/powercap/intel-rapl:N:M/energy_uj (name uncore)"},
	EnergyDRAMJ:       {"energy_dram_joules", Counter, "J", "/sys/class/powercap/intel-rapl:*/energy_uj (name dram)"},
	// ReqLatBucket0 and the buckets after it: reqLatBucketInfo (reqlat.go).
}

// MetricByName returns the Metric with the given Info.Name.
func MetricByName(name string) (Metric, bool) {
	for m := Metric(0); m < NumMetrics; m++ {
		if MetricInfo[m].Name == name {
			return m, true
		}
	}
	return 0, false
}

func (m Metric) String() string {
	if m < NumMetrics {
		return MetricInfo[m].Name
	}
	return "metric(?)"
}

// Values is a set of metric values; a metric not Set is absent.
type Values struct {
	v   [NumMetrics]float64
	has [(NumMetrics + 63) / 64]uint64
}

// Set records v for m.
func (s *Values) Set(m Metric, v float64) {
	s.v[m] = v
	s.has[m/64] |= 1 << (m % 64)
}

// Add adds v to m, making it present.
func (s *Values) Add(m Metric, v float64) {
	if s.Has(m) {
		s.v[m] += v
		return
	}
	s.Set(m, v)
}

// Get returns m's value and whether it is present.
func (s *Values) Get(m Metric) (float64, bool) {
	return s.v[m], s.Has(m)
}

// Has reports whether m is present.
func (s *Values) Has(m Metric) bool {
	return s.has[m/64]&(1<<(m%64)) != 0
}

// Unset makes m absent.
func (s *Values) Unset(m Metric) {
	s.v[m] = 0
	s.has[m/64] &^= 1 << (m % 64)
}

// Len returns the number of present metrics.
func (s *Values) Len() int {
	n := 0
	for _, w := range s.has {
		n += bits.OnesCount64(w)
	}
	return n
}

// All yields every present metric and its value, in Metric order, visiting
// only the present ones.
func (s *Values) All() iter.Seq2[Metric, float64] {
	return func(yield func(Metric, float64) bool) {
		for i, w := range s.has {
			for w != 0 {
				m := Metric(i*64 + bits.TrailingZeros64(w))
				w &= w - 1
				if !yield(m, s.v[m]) {
					return
				}
			}
		}
	}
}

// Merge adds every present metric of o into s (Add semantics).
func (s *Values) Merge(o *Values) {
	for m := Metric(0); m < NumMetrics; m++ {
		if o.Has(m) {
			s.Add(m, o.v[m])
		}
	}
}

// Frame is one workload's telemetry over one interval: counters as the
// increase over Interval, gauges as the reading at Time. The first frame of a
// workload has Interval 0 and no counters.
type Frame struct {
	Workload string        `json:"workload"`
	Time     time.Time     `json:"time"`
	Interval time.Duration `json:"interval"`
	Values   Values        `json:"-"`
	// Peers maps the IDs of other workloads this one exchanged data with
	// (sharing a pipe, a unix socket or a loopback TCP connection) to a weight:
	// the number of such channels.
	Peers map[string]float64 `json:"peers,omitempty"`
	// PeerBytes maps the IDs of other workloads this one exchanged data with
	// in the interval (pipes, unix sockets, loopback TCP) to the bytes moved
	// either way, as the eBPF collector counted them; nil without eBPF.
	PeerBytes map[string]float64 `json:"peer_bytes,omitempty"`
}

// Rate returns the per-second rate of counter m over the frame's interval.
func (f *Frame) Rate(m Metric) (float64, bool) {
	v, ok := f.Values.Get(m)
	if !ok || f.Interval <= 0 {
		return 0, false
	}
	return v / f.Interval.Seconds(), true
}
