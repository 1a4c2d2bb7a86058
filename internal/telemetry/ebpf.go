package telemetry

import (
	"sort"

	"sculpt/internal/host"
)

// SyscallClass groups system calls by what they do. The eBPF collector
// counts each call once, in one class, per process.
type SyscallClass uint8

// The classes. IPC covers pipes, FIFOs, unix sockets, futexes, eventfds and
// System V / POSIX message queues, semaphores and shared memory; network
// covers every other socket. read/write-family calls are classed by the kind
// of file behind their fd (pipe or FIFO: IPC; unix socket: IPC; other
// socket: network; anything else: file I/O), socket calls by the socket's
// family. Waiting for events (poll, select, epoll) and sleeping count as
// scheduling.
const (
	SysFile SyscallClass = iota
	SysNet
	SysIPC
	SysMem
	SysSched
	SysProc
	SysOther
	NumSyscallClasses
)

// Markers in the syscall table that the kernel side resolves per call from
// the first argument; see internal/telemetry/bpf/csrc/sculpt.bpf.c.
const (
	sysMarkFDRead  = 8  // read family: by the file behind fd (arg 0)
	sysMarkSockIO  = 9  // socket calls on fd (arg 0): unix -> IPC, else network
	sysMarkSocket  = 10 // socket(family, ...): AF_UNIX -> IPC, else network
	sysMarkFDWrite = 11 // write family: by the file behind fd (arg 0)
)

var syscallClassNames = [NumSyscallClasses]string{"file", "net", "ipc", "mem", "sched", "proc", "other"}

func (c SyscallClass) String() string {
	if c < NumSyscallClasses {
		return syscallClassNames[c]
	}
	return "class(?)"
}

// SyscallClassMetric returns the counter metric of class c.
func SyscallClassMetric(c SyscallClass) Metric { return EBPFSysFile + Metric(c) }

// EBPFOptions configure the eBPF collector.
type EBPFOptions struct {
	// Roots locate /sys (for kernel BTF) and /proc. The zero value means the
	// host's own.
	Roots host.Roots
	// MaxProcs sizes the per-process map (LRU: the least recently active
	// process is evicted when full). Default 16384.
	MaxProcs int
	// MaxChannels sizes the map of (process, channel) byte counters behind
	// the communication graph (LRU). Default 65536.
	MaxChannels int
	// NoPeers leaves Sample.Peers alone (counters only).
	NoPeers bool
	// MaxServers sizes the per-process map of requests served and their
	// latency histogram (LRU, ~730 bytes an entry). Default 4096.
	MaxServers int
	// MaxReqSockets sizes the map of sockets with a request in flight or a
	// known role (LRU; a TCP socket's entry goes when it closes). Default
	// 65536.
	MaxReqSockets int
}

// EBPFStats describes the collector's last Collect.
type EBPFStats struct {
	Procs    int      // entries read from the per-process map
	Channels int      // entries read from the channel map
	Edges    int      // process pairs that exchanged bytes in the interval
	Servers  int      // entries read from the request map (processes that served requests)
	Hooks    []string // kernel functions and tracepoints attached
	Missing  []string // optional hooks that could not be attached, with the reason
}

// EBPFBenchOptions configure MeasureEBPFOverhead.
type EBPFBenchOptions struct {
	Rounds    int // interleaved rounds without and with the collector; default 7
	Calls     int // system calls timed per round and mode; default 200000
	Workloads int // processes (and workloads) in the map-read measurement; default 1000
	Collects  int // Collect calls timed per round; default 20
}

// EBPFOverhead is what MeasureEBPFOverhead found; every figure is the
// median over the rounds.
type EBPFOverhead struct {
	Rounds, Calls int
	// getppid in a tight loop (the cheapest call: only sys_enter's class
	// lookup and counter update are added).
	GetppidNsOff, GetppidNsOn, GetppidNsAdded float64
	// a 1-byte write then read on a pipe, per system call (the costliest
	// path: fd lookup, pending note, sys_exit, channel update).
	PipeNsOff, PipeNsOn, PipeNsAdded float64
	// a 64-byte request and 64-byte reply over loopback TCP between two
	// threads of this process, per round trip, in process CPU time: adds
	// the request hooks (arrival on each end, the reply's send) to the
	// socket-byte accounting.
	Requests                      int
	ReqNsOff, ReqNsOn, ReqNsAdded float64
	// Collect with the per-process map holding Workloads processes and the
	// channel map 2 entries per process (a pipe each: a writer and a reader).
	Workloads, Channels int
	CollectCPUSec       float64 // CPU time (user+system) of one Collect
	CoreFracAt1s        float64 // CollectCPUSec per second: share of one core at a 1 s interval
}

// chanKind says what a channel is; values match the kernel side.
type chanKind uint32

const (
	chanPipe chanKind = 1
	chanUnix chanKind = 2
	chanTCP  chanKind = 3
)

// chanEntry is one (process, channel) counter: the bytes the process sent
// into the channel and received from it. A channel is identified by its
// receiving end (the pipe, the receiving unix socket, the direction of a
// loopback TCP flow), so senders and receivers of the same data share an id.
type chanEntry struct {
	TGID uint32
	Kind chanKind
	ID   uint64
	Tx   uint64
	Rx   uint64
}

// chanID names a channel without its process.
type chanID struct {
	Kind chanKind
	ID   uint64
}

// procPair is an unordered pair of processes, the smaller TGID first.
type procPair struct{ A, B uint32 }

func newProcPair(a, b uint32) procPair {
	if a > b {
		a, b = b, a
	}
	return procPair{a, b}
}

// chanTracker turns cumulative channel counters into per-interval edges.
type chanTracker struct {
	prev map[chanEntryKey]chanEntry
}

type chanEntryKey struct {
	TGID uint32
	Kind chanKind
	ID   uint64
}

// edges returns the bytes each pair of processes exchanged since the last
// call, from the cumulative entries now in the kernel map. For each channel
// the bytes a writer sent in the interval are split among the channel's
// readers in proportion to what each read in the interval (or, when none
// read in it, what each has read in total); a process reading its own
// writes is no edge. Entries are cumulative; a counter that went down (an
// evicted and re-created entry) counts from zero.
func (t *chanTracker) edges(cur []chanEntry) map[procPair]float64 {
	type side struct {
		tgid        uint32
		tx, rx, cum uint64
	}
	chans := make(map[chanID][]side)
	next := make(map[chanEntryKey]chanEntry, len(cur))
	for _, e := range cur {
		k := chanEntryKey{e.TGID, e.Kind, e.ID}
		next[k] = e
		d := e
		if p, ok := t.prev[k]; ok {
			d.Tx = sub0(e.Tx, p.Tx)
			d.Rx = sub0(e.Rx, p.Rx)
		}
		id := chanID{e.Kind, e.ID}
		chans[id] = append(chans[id], side{tgid: e.TGID, tx: d.Tx, rx: d.Rx, cum: e.Rx})
	}
	t.prev = next
	out := make(map[procPair]float64)
	for _, sides := range chans {
		var rxSum, cumSum uint64
		for _, s := range sides {
			rxSum += s.rx
			cumSum += s.cum
		}
		for _, w := range sides {
			if w.tx == 0 {
				continue
			}
			for _, r := range sides {
				if r.tgid == w.tgid {
					continue
				}
				var share float64
				switch {
				case rxSum > 0:
					share = float64(r.rx) / float64(rxSum)
				case cumSum > 0:
					share = float64(r.cum) / float64(cumSum)
				}
				if share > 0 {
					out[newProcPair(w.tgid, r.tgid)] += float64(w.tx) * share
				}
			}
		}
	}
	return out
}

func sub0(a, b uint64) uint64 {
	if a >= b {
		return a - b
	}
	return a
}

// procCounters are one process's cumulative eBPF counters.
type procCounters struct {
	Sys            [NumSyscallClasses]uint64
	InetTx, InetRx uint64
	LoopTx, LoopRx uint64
	UnixTx, UnixRx uint64
	PipeTx, PipeRx uint64
}

// applyEBPF writes the per-process counters into s (zero for a process the
// maps do not hold: it made no system call since the collector attached, or
// its entry was evicted) and the edges as peers between workloads, weighted
// by bytes. have* say which hook families are attached: metrics of a family
// that is not are left absent.
func applyEBPF(s *Sample, procs map[uint32]*procCounters, edges map[procPair]float64, haveSock, haveUnix, havePipe, peers bool) {
	var zero procCounters
	for _, ps := range s.Procs {
		c := procs[uint32(ps.Proc.PID)]
		if c == nil {
			c = &zero
		}
		for cl := SyscallClass(0); cl < NumSyscallClasses; cl++ {
			ps.Set(SyscallClassMetric(cl), float64(c.Sys[cl]))
		}
		if haveSock {
			ps.Set(EBPFSockTxBytes, float64(c.InetTx))
			ps.Set(EBPFSockRxBytes, float64(c.InetRx))
			ps.Set(EBPFLoopTxBytes, float64(c.LoopTx))
			ps.Set(EBPFLoopRxBytes, float64(c.LoopRx))
		}
		if haveUnix {
			ps.Set(EBPFUnixTxBytes, float64(c.UnixTx))
			ps.Set(EBPFUnixRxBytes, float64(c.UnixRx))
		}
		if havePipe {
			ps.Set(EBPFPipeTxBytes, float64(c.PipeTx))
			ps.Set(EBPFPipeRxBytes, float64(c.PipeRx))
		}
	}
	if !peers || len(edges) == 0 {
		return
	}
	owner := make(map[uint32]string, len(s.Procs))
	for _, ps := range s.Procs {
		owner[uint32(ps.Proc.PID)] = ps.Workload
	}
	pairs := make([]procPair, 0, len(edges))
	for p := range edges {
		pairs = append(pairs, p)
	}
	// Deterministic order: float sums do not depend on map order.
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].A != pairs[j].A {
			return pairs[i].A < pairs[j].A
		}
		return pairs[i].B < pairs[j].B
	})
	for _, p := range pairs {
		a, okA := owner[p.A]
		b, okB := owner[p.B]
		if okA && okB && a != b {
			s.AddPeerBytes(a, b, edges[p])
		}
	}
}
