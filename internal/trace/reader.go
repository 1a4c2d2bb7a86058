package trace

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"time"

	"sculpt/internal/telemetry"
)

// Tick is one sweep of a trace.
type Tick struct {
	Time     time.Time
	Interval time.Duration
	Frames   []telemetry.Frame
}

// Reader reads a trace block by block. It is not safe for concurrent use.
type Reader struct {
	file      string
	r         *bufio.Reader
	off       int64
	h         Header
	metrics   []telemetry.Metric // stored index -> metric; NumMetrics = unknown, skipped
	workloads []WorkloadInfo
	byID      map[string]int
	ticks     uint64
	frames    uint64
	done      bool
}

// NewReader reads the header of a trace (plain or gzip'd) from r. file names
// the trace in errors. A bad magic, checksum or version is a *FormatError.
func NewReader(r io.Reader, file string) (*Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if p, err := br.Peek(2); err == nil && p[0] == 0x1f && p[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, &FormatError{File: file, Msg: "bad gzip header", Err: errors.Join(ErrCorrupt, err)}
		}
		br = bufio.NewReaderSize(gz, 64<<10)
	}
	tr := &Reader{file: file, r: br, byID: map[string]int{}}
	var pre [len(Magic) + 2 + 4]byte
	if fe := tr.readFull(pre[:], "header"); fe != nil {
		return nil, fe
	}
	if string(pre[:len(Magic)]) != Magic {
		return nil, tr.errf(0, ErrCorrupt, "not a sculpt trace (magic %q, want %q)", pre[:len(Magic)], Magic)
	}
	if v := binary.LittleEndian.Uint16(pre[len(Magic):]); v != Version {
		return nil, tr.errf(int64(len(Magic)), ErrVersion, "trace format version %d, this sculpt reads version %d", v, Version)
	}
	n := binary.LittleEndian.Uint32(pre[len(Magic)+2:])
	if n > maxBlock {
		return nil, tr.errf(int64(len(Magic)+2), ErrCorrupt, "header length %d exceeds %d", n, maxBlock)
	}
	hj, fe := tr.readN(int(n)+4, fmt.Sprintf("header of %d bytes", n))
	if fe != nil {
		fe.Offset = 0 // the length field itself may be the damage
		return nil, fe
	}
	if got, want := crc32.Update(crc32.Update(0, castagnoli, pre[:]), castagnoli, hj[:n]), binary.LittleEndian.Uint32(hj[n:]); got != want {
		return nil, tr.errf(0, ErrCorrupt, "header checksum mismatch (crc32c %08x, stored %08x)", got, want)
	}
	if err := json.Unmarshal(hj[:n], &tr.h); err != nil {
		return nil, tr.errf(int64(len(pre)), ErrCorrupt, "bad header JSON: %v", err)
	}
	if tr.h.Version != Version {
		return nil, tr.errf(int64(len(pre)), ErrVersion, "header says version %d, this sculpt reads version %d", tr.h.Version, Version)
	}
	for _, name := range tr.h.Metrics {
		m, ok := telemetry.MetricByName(name)
		if !ok {
			m = telemetry.NumMetrics // recorded by a build with a metric this one lacks: skipped
		}
		tr.metrics = append(tr.metrics, m)
	}
	return tr, nil
}

// Header returns the trace's header.
func (tr *Reader) Header() Header { return tr.h }

// Workloads returns the workloads defined so far, in definition order.
func (tr *Reader) Workloads() []WorkloadInfo { return tr.workloads }

// Workload returns the definition of one workload ID.
func (tr *Reader) Workload(id string) (WorkloadInfo, bool) {
	i, ok := tr.byID[id]
	if !ok {
		return WorkloadInfo{}, false
	}
	return tr.workloads[i], true
}

// Next returns the next tick, io.EOF after the end block, or a *FormatError
// for a corrupt or truncated trace (including one that ends without its end
// block).
func (tr *Reader) Next() (Tick, error) {
	for {
		if tr.done {
			return Tick{}, io.EOF
		}
		start := tr.off
		var h [blockHeaderLen]byte
		n, err := io.ReadFull(tr.r, h[:])
		tr.off += int64(n)
		if err == io.EOF {
			return Tick{}, tr.errf(start, ErrTruncated, "trace ends without its end block (the recording was interrupted?)")
		}
		if err != nil {
			return Tick{}, tr.ioErr(start, "block header", err)
		}
		typ, size := h[0], binary.LittleEndian.Uint32(h[1:])
		if size > maxBlock {
			return Tick{}, tr.errf(start, ErrCorrupt, "block length %d exceeds %d", size, maxBlock)
		}
		body, fe := tr.readN(int(size)+4, fmt.Sprintf("block %q of %d bytes", typ, size))
		if fe != nil {
			fe.Offset = start
			return Tick{}, fe
		}
		payload := body[:size]
		if got, want := blockCRC(typ, payload), binary.LittleEndian.Uint32(body[size:]); got != want {
			return Tick{}, tr.errf(start, ErrCorrupt, "block checksum mismatch (crc32c %08x, stored %08x)", got, want)
		}
		switch typ {
		case blockWorkload:
			var info WorkloadInfo
			if err := json.Unmarshal(payload, &info); err != nil || info.ID == "" {
				return Tick{}, tr.errf(start, ErrCorrupt, "bad workload block: %v", err)
			}
			if _, dup := tr.byID[info.ID]; dup {
				return Tick{}, tr.errf(start, ErrCorrupt, "workload %s defined twice", info.ID)
			}
			tr.byID[info.ID] = len(tr.workloads)
			tr.workloads = append(tr.workloads, info)
		case blockTick:
			t, err := tr.parseTick(payload)
			if err != nil {
				return Tick{}, tr.errf(start, ErrCorrupt, "bad tick block: %v", err)
			}
			tr.ticks++
			tr.frames += uint64(len(t.Frames))
			return t, nil
		case blockEnd:
			if len(payload) != 16 {
				return Tick{}, tr.errf(start, ErrCorrupt, "end block of %d bytes, want 16", len(payload))
			}
			ticks, frames := binary.LittleEndian.Uint64(payload), binary.LittleEndian.Uint64(payload[8:])
			if ticks != tr.ticks || frames != tr.frames {
				return Tick{}, tr.errf(start, ErrCorrupt, "end block counts %d ticks / %d frames, read %d / %d", ticks, frames, tr.ticks, tr.frames)
			}
			tr.done = true
			// Anything after the end block is damage too.
			if _, err := tr.r.ReadByte(); err == nil {
				return Tick{}, tr.errf(tr.off, ErrCorrupt, "data after the end block")
			} else if err != io.EOF {
				return Tick{}, tr.ioErr(tr.off, "after the end block", err)
			}
			return Tick{}, io.EOF
		default:
			return Tick{}, tr.errf(start, ErrCorrupt, "unknown block type %q", typ)
		}
	}
}

func (tr *Reader) parseTick(b []byte) (Tick, error) {
	d := decoder{b: b}
	t := Tick{Time: time.Unix(0, int64(d.u64())), Interval: time.Duration(d.u64())}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(b)) {
		return Tick{}, fmt.Errorf("frame count %d: %w", n, errOr(d.err))
	}
	nb := (len(tr.metrics) + 7) / 8
	t.Frames = make([]telemetry.Frame, n)
	for i := range t.Frames {
		f := &t.Frames[i]
		wi := d.uvarint()
		if d.err == nil && wi >= uint64(len(tr.workloads)) {
			return Tick{}, fmt.Errorf("frame %d: undefined workload index %d", i, wi)
		}
		f.Time = t.Time
		f.Interval = time.Duration(d.u64())
		bm := d.bytes(nb)
		if d.err != nil {
			return Tick{}, fmt.Errorf("frame %d: %w", i, d.err)
		}
		f.Workload = tr.workloads[wi].ID
		for j, m := range tr.metrics {
			if bm[j/8]&(1<<(j%8)) == 0 {
				continue
			}
			v := float64(math.Float32frombits(d.u32()))
			if m < telemetry.NumMetrics {
				f.Values.Set(m, v)
			}
		}
		np := d.uvarint()
		if d.err == nil && np > uint64(len(tr.workloads)) {
			return Tick{}, fmt.Errorf("frame %d: %d peers", i, np)
		}
		for k := uint64(0); k < np && d.err == nil; k++ {
			pi := d.uvarint()
			w := float64(math.Float32frombits(d.u32()))
			if d.err == nil && pi >= uint64(len(tr.workloads)) {
				return Tick{}, fmt.Errorf("frame %d: undefined peer index %d", i, pi)
			}
			if d.err == nil {
				if f.Peers == nil {
					f.Peers = map[string]float64{}
				}
				f.Peers[tr.workloads[pi].ID] = w
			}
		}
		if d.err != nil {
			return Tick{}, fmt.Errorf("frame %d: %w", i, d.err)
		}
	}
	if len(d.b) != 0 {
		return Tick{}, fmt.Errorf("%d trailing bytes", len(d.b))
	}
	return t, nil
}

func errOr(err error) error {
	if err == nil {
		return errors.New("more frames than bytes")
	}
	return err
}

// readFull fills p; a short read is a *FormatError (nil when all is read).
func (tr *Reader) readFull(p []byte, what string) *FormatError {
	start := tr.off
	n, err := io.ReadFull(tr.r, p)
	tr.off += int64(n)
	if err != nil {
		return tr.ioErr(start, what, err)
	}
	return nil
}

// readN reads n bytes. Past 64 KiB the buffer grows with what is actually
// read, so a damaged length field (up to maxBlock) in a short file costs
// what the file holds, not the length it claims.
func (tr *Reader) readN(n int, what string) ([]byte, *FormatError) {
	if n <= 64<<10 {
		p := make([]byte, n)
		return p, tr.readFull(p, what)
	}
	start := tr.off
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, tr.r, int64(n))
	tr.off += got
	if err != nil {
		return nil, tr.ioErr(start, what, err)
	}
	return buf.Bytes(), nil
}

func (tr *Reader) ioErr(off int64, what string, err error) *FormatError {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &FormatError{File: tr.file, Offset: off, Msg: fmt.Sprintf("truncated in %s (file ends at byte %d)", what, tr.off), Err: ErrTruncated}
	}
	if errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) {
		return &FormatError{File: tr.file, Offset: off, Msg: "reading " + what, Err: errors.Join(ErrCorrupt, err)}
	}
	return &FormatError{File: tr.file, Offset: off, Msg: "reading " + what, Err: err}
}

func (tr *Reader) errf(off int64, kind error, format string, args ...any) *FormatError {
	return &FormatError{File: tr.file, Offset: off, Msg: fmt.Sprintf(format, args...), Err: kind}
}

// decoder reads little-endian fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("block shorter than its fields")

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) u64() uint64 {
	if p := d.bytes(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if p := d.bytes(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// Trace is a whole trace in memory.
type Trace struct {
	File      string
	Header    Header
	Workloads []WorkloadInfo
	Ticks     []Tick
}

// ReadFile reads and checks a whole trace file.
func ReadFile(path string) (*Trace, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	return Read(bytes.NewReader(b), path)
}

// Read reads and checks a whole trace; file names it in errors.
func Read(r io.Reader, file string) (*Trace, error) {
	tr, err := NewReader(r, file)
	if err != nil {
		return nil, err
	}
	t := &Trace{File: file, Header: tr.Header()}
	for {
		tick, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		t.Ticks = append(t.Ticks, tick)
	}
	t.Workloads = tr.Workloads()
	return t, nil
}

// Label returns a workload's label ("" when unlabelled or unknown).
func (t *Trace) Label(id string) string {
	for _, w := range t.Workloads {
		if w.ID == id {
			return w.Label
		}
	}
	return ""
}

// Series returns each recorded workload's frames, oldest first, keyed by
// workload ID.
func (t *Trace) Series() map[string][]telemetry.Frame {
	s := map[string][]telemetry.Frame{}
	for _, tick := range t.Ticks {
		for _, f := range tick.Frames {
			s[f.Workload] = append(s[f.Workload], f)
		}
	}
	return s
}
