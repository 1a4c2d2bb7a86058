package trace

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"sculpt/internal/telemetry"
)

// Writer writes a trace. It is not safe for concurrent use.
type Writer struct {
	w       *bufio.Writer
	gz      *gzip.Writer
	metrics []telemetry.Metric // stored order -> metric (all known ones)
	index   map[string]int     // workload ID -> index
	infos   map[string]WorkloadInfo
	ticks   uint64
	frames  uint64
	buf     []byte
	closed  bool
	err     error
}

// NewWriter writes the header to w. h.Metrics defaults to DefaultMetrics();
// every name must be a metric of this build. h.Version is set to Version.
// With compress the whole stream is gzip'd.
func NewWriter(w io.Writer, h Header, compress bool) (*Writer, error) {
	if len(h.Metrics) == 0 {
		h.Metrics = DefaultMetrics()
	}
	h.Version = Version
	tw := &Writer{index: map[string]int{}, infos: map[string]WorkloadInfo{}}
	for _, name := range h.Metrics {
		m, ok := telemetry.MetricByName(name)
		if !ok {
			return nil, fmt.Errorf("trace header: unknown metric %q", name)
		}
		tw.metrics = append(tw.metrics, m)
	}
	if compress {
		tw.gz = gzip.NewWriter(w)
		w = tw.gz
	}
	tw.w = bufio.NewWriterSize(w, 64<<10)
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encode trace header: %w", err)
	}
	var pre [len(Magic) + 2 + 4]byte
	copy(pre[:], Magic)
	binary.LittleEndian.PutUint16(pre[len(Magic):], Version)
	binary.LittleEndian.PutUint32(pre[len(Magic)+2:], uint32(len(hj)))
	_, _ = tw.w.Write(pre[:]) // bufio keeps the first error; the last Write returns it
	_, _ = tw.w.Write(hj)
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], crc32Castagnoli(pre[:], hj))
	if _, err := tw.w.Write(c[:]); err != nil {
		return nil, fmt.Errorf("write trace header: %w", err)
	}
	return tw, nil
}

// Define records a workload's identity (and label). Frames of a workload not
// yet defined define it with just its ID. Redefining an ID is ignored.
func (tw *Writer) Define(info WorkloadInfo) error {
	if _, ok := tw.index[info.ID]; ok {
		return nil
	}
	tw.index[info.ID] = len(tw.index)
	tw.infos[info.ID] = info
	b, err := json.Marshal(info)
	if err != nil {
		return fmt.Errorf("encode workload %s: %w", info.ID, err)
	}
	return tw.block(blockWorkload, b)
}

// Defined reports whether a workload ID has been defined.
func (tw *Writer) Defined(id string) bool {
	_, ok := tw.index[id]
	return ok
}

// WriteTick writes the frames of one sweep. Frames with Interval 0 (a
// workload's first sweep, no counters) are written too: their gauges count.
func (tw *Writer) WriteTick(t time.Time, interval time.Duration, frames []telemetry.Frame) error {
	for i := range frames {
		if err := tw.Define(WorkloadInfo{ID: frames[i].Workload}); err != nil {
			return err
		}
		for p := range frames[i].Peers {
			if err := tw.Define(WorkloadInfo{ID: p}); err != nil {
				return err
			}
		}
	}
	b := tw.buf[:0]
	b = binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(interval))
	b = binary.AppendUvarint(b, uint64(len(frames)))
	nb := (len(tw.metrics) + 7) / 8
	for i := range frames {
		f := &frames[i]
		b = binary.AppendUvarint(b, uint64(tw.index[f.Workload]))
		b = binary.LittleEndian.AppendUint64(b, uint64(f.Interval))
		bm := len(b)
		b = append(b, make([]byte, nb)...)
		for j, m := range tw.metrics {
			if v, ok := f.Values.Get(m); ok {
				b[bm+j/8] |= 1 << (j % 8)
				b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
			}
		}
		b = binary.AppendUvarint(b, uint64(len(f.Peers)))
		for _, p := range sortedKeys(f.Peers) {
			b = binary.AppendUvarint(b, uint64(tw.index[p]))
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f.Peers[p])))
		}
	}
	tw.buf = b
	tw.ticks++
	tw.frames += uint64(len(frames))
	return tw.block(blockTick, b)
}

// Flush pushes buffered blocks to the underlying writer (and, compressed,
// through gzip), so a crash loses at most the blocks written since.
func (tw *Writer) Flush() error {
	if tw.err != nil {
		return tw.err
	}
	if err := tw.w.Flush(); err != nil {
		tw.err = fmt.Errorf("write trace: %w", err)
		return tw.err
	}
	if tw.gz != nil {
		if err := tw.gz.Flush(); err != nil {
			tw.err = fmt.Errorf("write trace: %w", err)
		}
	}
	return tw.err
}

// Close writes the end block and flushes; it does not close the underlying
// writer.
func (tw *Writer) Close() error {
	if tw.closed {
		return tw.err
	}
	tw.closed = true
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, tw.ticks)
	b = binary.LittleEndian.AppendUint64(b, tw.frames)
	if err := tw.block(blockEnd, b); err != nil {
		return err
	}
	if err := tw.w.Flush(); err != nil {
		return fmt.Errorf("write trace: %w", err)
	}
	if tw.gz != nil {
		if err := tw.gz.Close(); err != nil {
			return fmt.Errorf("write trace: %w", err)
		}
	}
	return nil
}

// Ticks and Frames count what has been written.
func (tw *Writer) Ticks() uint64  { return tw.ticks }
func (tw *Writer) Frames() uint64 { return tw.frames }

func (tw *Writer) block(typ byte, payload []byte) error {
	if tw.err != nil {
		return tw.err
	}
	if len(payload) > maxBlock {
		return fmt.Errorf("trace block of %d bytes exceeds the %d-byte limit", len(payload), maxBlock)
	}
	var h [blockHeaderLen]byte
	h[0] = typ
	binary.LittleEndian.PutUint32(h[1:], uint32(len(payload)))
	_, _ = tw.w.Write(h[:]) // bufio keeps the first error; the last Write returns it
	_, _ = tw.w.Write(payload)
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], blockCRC(typ, payload))
	if _, err := tw.w.Write(c[:]); err != nil {
		tw.err = fmt.Errorf("write trace: %w", err)
	}
	return tw.err
}

// File is a trace being written to a named file.
type File struct {
	*Writer
	f    *os.File
	path string
	tmp  string
}

// Create writes a trace to path via a temporary file in the same directory,
// renamed into place by Close (a crash leaves no half-written trace under
// path; Flush still makes the blocks so far durable in the temporary file).
// A path ending in .gz is compressed.
func Create(path string, h Header) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, fmt.Errorf("create trace %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, fmt.Errorf("create trace %s: %w", path, err)
	}
	w, err := NewWriter(f, h, strings.HasSuffix(path, ".gz"))
	if err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return nil, err
	}
	return &File{Writer: w, f: f, path: path, tmp: f.Name()}, nil
}

// TempPath is where the trace is written until Close.
func (tf *File) TempPath() string { return tf.tmp }

// Close ends the trace, syncs it and renames it to its path.
func (tf *File) Close() error {
	err := tf.Writer.Close()
	if err == nil {
		err = tf.f.Sync()
	}
	if cerr := tf.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tf.tmp, tf.path)
	}
	if err != nil {
		_ = os.Remove(tf.tmp)
		return fmt.Errorf("write trace %s: %w", tf.path, err)
	}
	return nil
}

// Abort discards the trace.
func (tf *File) Abort() {
	_ = tf.f.Close()
	_ = os.Remove(tf.tmp)
}

func crc32Castagnoli(parts ...[]byte) uint32 {
	var c uint32
	for _, p := range parts {
		c = crc32.Update(c, castagnoli, p)
	}
	return c
}

func sortedKeys(m map[string]float64) []string {
	return slices.Sorted(maps.Keys(m))
}
