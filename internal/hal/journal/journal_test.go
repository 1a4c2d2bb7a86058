package journal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/hal"
)

func openT(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func TestRecordMarkReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "journal.json")
	j := openT(t, path)
	nice := 5
	a := hal.SetSched{PID: 42, Policy: "batch", Nice: &nice}
	undo := hal.SetSched{PID: 42, Threads: map[int]hal.ThreadSched{42: {Policy: "other"}, 43: {Policy: "idle", Nice: 3}}}
	seq, err := j.Record(Entry{Action: a, Undo: undo, Process: &Process{PID: 42, StartTime: 7, Comm: "x"}, BootTicks: 1234})
	if err != nil {
		t.Fatal(err)
	}
	pin := hal.PinThreads{PID: 42, CPUs: []int{0, 1}}
	seq2, err := j.Record(Entry{Action: pin, Undo: hal.Steps{Steps: []hal.Action{hal.SetCpuset{Cgroup: "/a", CPUs: []int{0}}, hal.PinThreads{PID: 42, Threads: map[int][]int{42: {0, 1}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if seq2 != seq+1 {
		t.Fatalf("seq %d then %d, want consecutive", seq, seq2)
	}
	if err := j.MarkApplied(seq); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()

	j2 := openT(t, path)
	es := j2.Entries()
	if len(es) != 2 {
		t.Fatalf("reopened journal has %d entries, want 2", len(es))
	}
	if es[0].State != Applied || es[1].State != Pending {
		t.Errorf("states %s, %s; want applied, pending", es[0].State, es[1].State)
	}
	got := es[0].Undo.(hal.SetSched)
	if got.Threads[43].Nice != 3 || got.Threads[43].Policy != "idle" || es[0].Process.StartTime != 7 {
		t.Errorf("undo came back as %+v, process %+v", got, es[0].Process)
	}
	if es[0].BootTicks != 1234 || es[1].BootTicks != 0 {
		t.Errorf("boot ticks came back as %d, %d; want 1234, 0", es[0].BootTicks, es[1].BootTicks)
	}
	if *es[0].Action.(hal.SetSched).Nice != 5 {
		t.Errorf("action nice lost: %+v", es[0].Action)
	}
	steps := es[1].Undo.(hal.Steps)
	if len(steps.Steps) != 2 || steps.Steps[0].(hal.SetCpuset).Cgroup != "/a" {
		t.Errorf("steps undo came back as %+v", steps)
	}
	// Sequence numbers keep growing after a reopen.
	seq3, err := j2.Record(Entry{Action: pin, Undo: pin})
	if err != nil || seq3 != seq2+1 {
		t.Errorf("seq after reopen = %d, %v; want %d", seq3, err, seq2+1)
	}
	if err := j2.Drop(seq); err != nil || j2.Len() != 2 {
		t.Errorf("Drop: %v, len %d", err, j2.Len())
	}
	if err := j2.Clear(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal file still there after Clear: %v", err)
	}
}

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.json")
	j := openT(t, path)
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	_ = j.Close()
	j2, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	_ = j2.Close()
}

func TestRefusesBadFiles(t *testing.T) {
	good, err := encodeFile(&body{NextSeq: 2, Entries: []Entry{{Seq: 1, State: Applied, Action: hal.PinThreads{PID: 1, CPUs: []int{0}}, Undo: hal.PinThreads{PID: 1, CPUs: []int{0, 1}}}}})
	if err != nil {
		t.Fatal(err)
	}
	flipped := []byte(string(good))
	flipped[len(flipped)-5] ^= 0x01
	newer := []byte(strings.Replace(string(good), Magic+" 1 ", Magic+" 9 ", 1))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"corrupt", flipped, "checksum does not match"},
		{"truncated", good[:len(good)-10], "truncated"},
		{"header only", good[:20], "truncated"},
		{"empty", []byte{}, "empty"},
		{"foreign", []byte(`{"hello":"world"}`), "not a sculpt journal"},
		{"newer", newer, "newer sculpt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "journal.json")
			if err := os.WriteFile(path, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Open = %v, want a *FormatError", err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--force-discard") || !strings.Contains(err.Error(), path) {
				t.Errorf("message %q should name the problem (%q), the path and --force-discard", err, c.want)
			}
			// The lock was released: discarding works.
			dst, err := ForceDiscard(path)
			if err != nil || dst == "" {
				t.Fatalf("ForceDiscard = %q, %v", dst, err)
			}
			j, err := Open(path)
			if err != nil || j.Len() != 0 {
				t.Fatalf("Open after discard = %v", err)
			}
			_ = j.Close()
		})
	}
	// The good one opens.
	path := filepath.Join(t.TempDir(), "journal.json")
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	j := openT(t, path)
	if j.Len() != 1 {
		t.Errorf("good journal has %d entries", j.Len())
	}
}

func TestRecordNeedsUndo(t *testing.T) {
	j := openT(t, filepath.Join(t.TempDir(), "j"))
	if _, err := j.Record(Entry{Action: hal.PinThreads{PID: 1, CPUs: []int{0}}}); err == nil {
		t.Error("Record without undo succeeded")
	}
}

func TestDropMany(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.json")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	var seqs []uint64
	for i := 0; i < 5; i++ {
		seq, err := j.Record(Entry{Action: hal.SetSched{PID: 100 + i, Policy: "batch"}, Undo: hal.SetSched{PID: 100 + i, Policy: "other"}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	if err := j.DropMany(seqs[1], 9999); err == nil {
		t.Fatal("DropMany with an unknown seq succeeded")
	}
	if j.Len() != 5 {
		t.Fatalf("a failed DropMany dropped entries: %d left", j.Len())
	}
	if err := j.DropMany(seqs[1], seqs[3]); err != nil {
		t.Fatal(err)
	}
	_ = j.Close()
	j2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j2.Close() }()
	var left []uint64
	for _, e := range j2.Entries() {
		left = append(left, e.Seq)
	}
	if want := []uint64{seqs[0], seqs[2], seqs[4]}; !slices.Equal(left, want) {
		t.Errorf("after DropMany and reopen: entries %v, want %v", left, want)
	}
}
