// Package trace reads and writes sculpt telemetry traces: the frames of
// chosen workloads over time, with labels, for training and benchmarking the
// learned DNA model (docs/trace-format.md).
//
// A trace is a header followed by blocks, each with its own CRC-32C, so a
// corrupt or truncated file is refused with the byte offset of the damage.
// The header lists the metric names in the order the frames store them, so a
// trace survives metrics being added to or removed from telemetry: a name
// this build does not know is skipped, a metric the trace lacks is absent.
// A trace may be gzip-compressed as a whole (the reader detects it); offsets
// in errors then count bytes of the uncompressed stream.
//
// The package does no I/O of its own beyond the io.Reader and io.Writer it is
// given (and ReadFile/Create, which open the named file).
package trace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"sculpt/internal/telemetry"
)

// Magic opens every trace file.
const Magic = "SCULPTTR"

// Version is the format version this package writes and reads.
const Version = 1

// Block types.
const (
	blockWorkload = 'W' // JSON WorkloadInfo
	blockTick     = 'T' // the frames of one sweep
	blockEnd      = 'E' // closes the trace: counts of ticks and frames
)

// maxBlock bounds one block's payload (a tick of 10 000 workloads fits).
const maxBlock = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Host describes the machine a trace was recorded on.
type Host struct {
	Hostname string `json:"hostname,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	CPUs     int    `json:"cpus,omitempty"`
	Sculpt   string `json:"sculpt_version,omitempty"`
}

// Header is a trace's preamble.
type Header struct {
	Version  int           `json:"version"`
	Metrics  []string      `json:"metrics"` // telemetry.MetricInfo names, in stored order
	Interval time.Duration `json:"interval_ns"`
	Start    time.Time     `json:"start"`
	Host     Host          `json:"host"`
	// Labels are the --label arguments as given (documentation only; each
	// workload's label is in its WorkloadInfo).
	Labels  []string `json:"labels,omitempty"`
	Command string   `json:"command,omitempty"`
}

// WorkloadInfo identifies one workload of a trace. Peer-only workloads (seen
// only as a peer of a recorded one) have just an ID.
type WorkloadInfo struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Kind  string `json:"kind,omitempty"`
	Label string `json:"label,omitempty"`
	PIDs  []int  `json:"pids,omitempty"`
}

// FormatError says why a trace was refused and where.
type FormatError struct {
	File   string // the file name ("" when reading a stream)
	Offset int64  // byte offset of the damaged block (uncompressed stream)
	Msg    string
	Err    error // the underlying error, if any
}

func (e *FormatError) Error() string {
	name := e.File
	if name == "" {
		name = "<stream>"
	}
	s := fmt.Sprintf("trace %s: byte offset %d: %s", name, e.Offset, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *FormatError) Unwrap() error { return e.Err }

// ErrTruncated is wrapped by a FormatError when the trace ends early.
var ErrTruncated = errors.New("truncated")

// ErrCorrupt is wrapped by a FormatError when a checksum or a field is bad.
var ErrCorrupt = errors.New("corrupt")

// ErrVersion is wrapped by a FormatError when the trace's version is not
// Version.
var ErrVersion = errors.New("unsupported trace version")

// DefaultMetrics returns every metric name of this build, in Metric order.
func DefaultMetrics() []string {
	names := make([]string, telemetry.NumMetrics)
	for m := telemetry.Metric(0); m < telemetry.NumMetrics; m++ {
		names[m] = telemetry.MetricInfo[m].Name
	}
	return names
}

// blockHeader is type (1 byte) + payload length (uint32 LE).
const blockHeaderLen = 5

func blockCRC(typ byte, payload []byte) uint32 {
	var h [blockHeaderLen]byte
	h[0] = typ
	binary.LittleEndian.PutUint32(h[1:], uint32(len(payload)))
	c := crc32.Update(0, castagnoli, h[:])
	return crc32.Update(c, castagnoli, payload)
}
