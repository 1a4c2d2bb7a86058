package journal

import (
	"path/filepath"
	"testing"

	"sculpt/internal/hal"
	"sculpt/internal/sealed"
)

// FuzzDecode feeds the journal decoder whole files and, since a random
// file rarely passes the checksum, bodies sealed with a good header: it
// refuses garbage with a *FormatError, never panics, and a journal it
// accepts encodes and decodes again (docs/reliability.md).
func FuzzDecode(f *testing.F) {
	path := filepath.Join(f.TempDir(), "journal")
	j, err := Open(path)
	if err != nil {
		f.Fatal(err)
	}
	nice := 5
	for _, e := range []Entry{
		{Action: hal.SetSched{PID: 42, Policy: "batch", Nice: &nice}, Undo: hal.SetSched{PID: 42, Threads: map[int]hal.ThreadSched{42: {Policy: "other"}}}, Process: &Process{PID: 42, StartTime: 7, Comm: "x"}, BootTicks: 1234},
		{Action: hal.PinThreads{PID: 42, CPUs: []int{0, 1}}, Undo: hal.Steps{Steps: []hal.Action{hal.SetCpuset{Cgroup: "/a", CPUs: []int{0}}, hal.PinThreads{PID: 42, Threads: map[int][]int{42: {0, 1}}}}}},
	} {
		if _, err := j.Record(e); err != nil {
			f.Fatal(err)
		}
	}
	b := j.b
	_ = j.Close()
	file, err := encodeFile(&b)
	if err != nil {
		f.Fatal(err)
	}
	_, sealedBody, err := sealed.Open(file, Magic, "journal", Version)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	f.Add(sealedBody)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, sealed.Seal(Magic, Version, data)} {
			var b body
			if err := decodeFile("journal", in, &b); err != nil {
				continue
			}
			enc, err := encodeFile(&b)
			if err != nil {
				continue // an action the decoder let through but cannot encode: refused on write
			}
			var again body
			if err := decodeFile("journal", enc, &again); err != nil {
				t.Fatalf("a journal decoded from %q does not decode after encoding: %v", in, err)
			}
		}
	})
}
