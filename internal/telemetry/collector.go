package telemetry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sculpt/internal/workload"
)

// Collector reads one kernel source into a Sample. Collect must skip, not
// fail on, a process that exits while it is being read (ErrProcessGone and
// ENOENT/ESRCH from its files); it returns an error only when the source as a
// whole could not be read. Collectors are not safe for concurrent use.
type Collector interface {
	Name() string
	Collect(ctx context.Context, s *Sample) error
}

// Closer is implemented by collectors that hold kernel resources (perf file
// descriptors, eBPF links); the Sampler closes them.
type Closer interface {
	Close() error
}

// ProcKey identifies a process across samples: PIDs are reused, the pair is not.
type ProcKey struct {
	PID       int
	StartTime uint64
}

// ProcSample holds one process's cumulative values in one sweep.
type ProcSample struct {
	Workload string // the ID of the workload it belongs to
	Proc     workload.Proc
	// PPID is the parent's PID (stat field 4) as the procfs collector read
	// it; 0 when not read. The Sampler uses it to find who reaped a process
	// that exited.
	PPID int
	// Gone says the procfs collector found the process exited (or its PID
	// reused) when it came to read it.
	Gone bool
	Values
}

// Sample is one sweep of raw, cumulative readings. Collectors add to it.
type Sample struct {
	Time      time.Time
	Workloads []workload.Workload
	// Procs holds per-process values, summed per workload into frames.
	Procs map[ProcKey]*ProcSample
	// Groups holds per-workload values (cgroup files, PSI, network namespace):
	// values that are not a sum over processes. Groups[SystemID] holds
	// machine-wide values such as system PSI.
	Groups map[string]*Values
	// Peers holds, per workload ID, the workloads it shares a channel with
	// and how many channels (fd-table scan).
	Peers map[string]map[string]float64
	// PeerBytes holds, per workload ID, the bytes it exchanged with each
	// other workload during the interval (eBPF).
	PeerBytes map[string]map[string]float64
}

// SystemID is the Groups key (and Frame.Workload) of machine-wide values.
const SystemID = "@system"

// NewSample prepares a sample of the given workloads, with an entry for each
// of their processes and for each workload.
func NewSample(now time.Time, ws []workload.Workload) *Sample {
	s := &Sample{
		Time:      now,
		Workloads: ws,
		Procs:     make(map[ProcKey]*ProcSample),
		Groups:    make(map[string]*Values, len(ws)),
		Peers:     make(map[string]map[string]float64),
		PeerBytes: make(map[string]map[string]float64),
	}
	s.Groups[SystemID] = &Values{}
	for i := range ws {
		w := &ws[i]
		s.Groups[w.ID] = &Values{}
		for _, p := range w.Procs {
			s.Procs[ProcKey{p.PID, p.StartTime}] = &ProcSample{Workload: w.ID, Proc: p}
		}
	}
	return s
}

// AddPeer records that workloads a and b share weight channels (both ways).
func (s *Sample) AddPeer(a, b string, weight float64) {
	addEdge(s.Peers, a, b, weight)
}

// AddPeerBytes records that workloads a and b exchanged bytes during the
// interval (both ways).
func (s *Sample) AddPeerBytes(a, b string, bytes float64) {
	addEdge(s.PeerBytes, a, b, bytes)
}

func addEdge(g map[string]map[string]float64, a, b string, w float64) {
	if a == b {
		return
	}
	for _, e := range [2][2]string{{a, b}, {b, a}} {
		m := g[e[0]]
		if m == nil {
			m = make(map[string]float64)
			g[e[0]] = m
		}
		m[e[1]] += w
	}
}

// ErrProcessGone says a process exited while it was being read.
var ErrProcessGone = errors.New("process exited")

// NotSupportedError says a telemetry source is missing on this machine, and why.
type NotSupportedError struct {
	Source string
	Reason string
}

func (e *NotSupportedError) Error() string {
	return fmt.Sprintf("%s not supported: %s", e.Source, e.Reason)
}

// ErrNotSupported matches every *NotSupportedError with errors.Is.
var ErrNotSupported = errors.New("not supported")

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *NotSupportedError) Is(target error) bool { return target == ErrNotSupported }
