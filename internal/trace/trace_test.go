package trace

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sculpt/internal/telemetry"
)

func sampleTrace(t *testing.T, compress bool) ([]byte, []Tick) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Interval: time.Second, Start: time.Unix(100, 0), Host: Host{Hostname: "h", CPUs: 2}, Labels: []string{"42=memcached"}}, compress)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Define(WorkloadInfo{ID: "tree:42@1", Name: "memcached", Kind: "tree", Label: "memcached", PIDs: []int{42, 43}}); err != nil {
		t.Fatal(err)
	}
	var ticks []Tick
	for i := 0; i < 5; i++ {
		tm := time.Unix(100+int64(i), 0)
		iv := time.Second
		if i == 0 {
			iv = 0
		}
		a := telemetry.Frame{Workload: "tree:42@1", Time: tm, Interval: iv}
		a.Values.Set(telemetry.RSSBytes, 1<<20)
		if i > 0 {
			a.Values.Set(telemetry.CPUUserSec, 0.25*float64(i))
			a.Values.Set(telemetry.CtxVoluntary, 0) // present and zero
			a.Peers = map[string]float64{"cg:/other": 2}
		}
		b := telemetry.Frame{Workload: "cg:/x", Time: tm, Interval: iv}
		b.Values.Set(telemetry.Threads, 3)
		fr := []telemetry.Frame{a, b}
		if err := w.WriteTick(tm, iv, fr); err != nil {
			t.Fatal(err)
		}
		ticks = append(ticks, Tick{Time: tm, Interval: iv, Frames: fr})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), ticks
}

func TestRoundTrip(t *testing.T) {
	for _, compress := range []bool{false, true} {
		data, want := sampleTrace(t, compress)
		tr, err := Read(bytes.NewReader(data), "x.trace")
		if err != nil {
			t.Fatalf("compress=%v: %v", compress, err)
		}
		if tr.Header.Interval != time.Second || tr.Header.Host.CPUs != 2 || len(tr.Header.Metrics) != int(telemetry.NumMetrics) {
			t.Errorf("header %+v", tr.Header)
		}
		if tr.Label("tree:42@1") != "memcached" || tr.Label("cg:/x") != "" {
			t.Errorf("labels: %+v", tr.Workloads)
		}
		if len(tr.Ticks) != len(want) {
			t.Fatalf("%d ticks, want %d", len(tr.Ticks), len(want))
		}
		for i, tick := range tr.Ticks {
			if !tick.Time.Equal(want[i].Time) || tick.Interval != want[i].Interval {
				t.Errorf("tick %d: %v %v", i, tick.Time, tick.Interval)
			}
			for j, f := range tick.Frames {
				w := want[i].Frames[j]
				if f.Workload != w.Workload || f.Interval != w.Interval || f.Values != w.Values || len(f.Peers) != len(w.Peers) {
					t.Errorf("tick %d frame %d: got %+v, want %+v", i, j, f, w)
				}
				for p, v := range w.Peers {
					if f.Peers[p] != v {
						t.Errorf("peer %s = %v, want %v", p, f.Peers[p], v)
					}
				}
			}
		}
		// Present-and-zero survives; never-set stays absent.
		f := tr.Ticks[1].Frames[0]
		if v, ok := f.Values.Get(telemetry.CtxVoluntary); !ok || v != 0 {
			t.Errorf("ctx_voluntary = %v,%v, want present 0", v, ok)
		}
		if f.Values.Has(telemetry.PerfCycles) {
			t.Errorf("perf_cycles present though never recorded")
		}
		if s := tr.Series(); len(s["tree:42@1"]) != 5 {
			t.Errorf("series %d frames", len(s["tree:42@1"]))
		}
	}
}

func TestCompressedIsSmaller(t *testing.T) {
	plain, _ := sampleTrace(t, false)
	gz, _ := sampleTrace(t, true)
	if len(gz) >= len(plain) {
		t.Errorf("gzip'd trace %d bytes, plain %d", len(gz), len(plain))
	}
}

func TestEveryTruncationIsRefused(t *testing.T) {
	for _, compress := range []bool{false, true} {
		data, _ := sampleTrace(t, compress)
		for n := 0; n < len(data); n++ {
			_, err := Read(bytes.NewReader(data[:n]), "cut.trace")
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("compress=%v cut at %d of %d: err %v, want a FormatError", compress, n, len(data), err)
			}
			if !strings.Contains(err.Error(), "cut.trace") || !strings.Contains(err.Error(), "byte offset") {
				t.Fatalf("message %q does not name the file and offset", err)
			}
		}
	}
}

func TestEveryFlippedByteIsRefused(t *testing.T) {
	data, _ := sampleTrace(t, false)
	for i := 0; i < len(data); i++ {
		bad := bytes.Clone(data)
		bad[i] ^= 0x5a
		_, err := Read(bytes.NewReader(bad), "bad.trace")
		if err == nil {
			t.Fatalf("flipping byte %d of %d went unnoticed", i, len(data))
		}
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("byte %d: %v is not a FormatError", i, err)
		}
		// Damage in a block is reported at or before the damaged byte.
		if fe.Offset > int64(i) {
			t.Fatalf("byte %d: reported at offset %d", i, fe.Offset)
		}
	}
}

func TestCorruptBlockNamesItsOffset(t *testing.T) {
	data, _ := sampleTrace(t, false)
	hlen := len(Magic) + 2 + 4 + int(binary.LittleEndian.Uint32(data[len(Magic)+2:])) + 4
	bad := bytes.Clone(data)
	bad[hlen+blockHeaderLen+2] ^= 1 // inside the first block's payload
	_, err := Read(bytes.NewReader(bad), "w.trace")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("err %v", err)
	}
	var fe *FormatError
	errors.As(err, &fe)
	if fe.Offset != int64(hlen) {
		t.Errorf("offset %d, want the block's start %d", fe.Offset, hlen)
	}
}

func TestVersionMismatch(t *testing.T) {
	data, _ := sampleTrace(t, false)
	bad := bytes.Clone(data)
	binary.LittleEndian.PutUint16(bad[len(Magic):], Version+1)
	_, err := Read(bytes.NewReader(bad), "v2.trace")
	if !errors.Is(err, ErrVersion) || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("err %v, want a version error naming version 2", err)
	}
	_, err = Read(strings.NewReader("hello world, I am not a trace"), "txt")
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "not a sculpt trace") {
		t.Fatalf("err %v", err)
	}
}

func TestUnknownMetricIsSkipped(t *testing.T) {
	// A trace from a build with a metric this one lacks: rewrite a header
	// name (same length keeps the framing) and fix the header checksum.
	data, _ := sampleTrace(t, false)
	n := int(binary.LittleEndian.Uint32(data[len(Magic)+2:]))
	pre := len(Magic) + 2 + 4
	hj := bytes.Replace(data[pre:pre+n], []byte(`"threads"`), []byte(`"thready"`), 1)
	bad := bytes.Clone(data)
	copy(bad[pre:], hj)
	binary.LittleEndian.PutUint32(bad[pre+n:], crc32Castagnoli(bad[:pre], hj))
	tr, err := Read(bytes.NewReader(bad), "old.trace")
	if err != nil {
		t.Fatal(err)
	}
	f := tr.Ticks[0].Frames[1]
	if f.Values.Has(telemetry.Threads) {
		t.Errorf("threads present though the trace stored it under another name")
	}
	if v, _ := tr.Ticks[0].Frames[0].Values.Get(telemetry.RSSBytes); v != 1<<20 {
		t.Errorf("rss %v: the metrics after the unknown one shifted", v)
	}
}

func TestCreateRenamesOnClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.trace.gz")
	f, err := Create(path, Header{Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("trace visible before Close: %v", err)
	}
	fr := telemetry.Frame{Workload: "w", Interval: time.Second}
	fr.Values.Set(telemetry.CPUUserSec, 1)
	if err := f.WriteTick(time.Unix(1, 0), time.Second, []telemetry.Frame{fr}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	tr, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Ticks) != 1 {
		t.Errorf("%d ticks", len(tr.Ticks))
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
}
