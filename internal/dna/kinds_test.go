package dna

import (
	"errors"
	"strings"
	"testing"
)

func TestEveryZooLabelHasAKindOfTheVocabulary(t *testing.T) {
	for label, kind := range ZooKinds {
		if !IsKind(kind) || kind == ArchMixed {
			t.Errorf("zoo label %s -> %q: not a kind the learned model may report", label, kind)
		}
	}
	m, err := DefaultModel()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range m.Catalog.Archetypes {
		if a.Kind != ZooKinds[a.Name] {
			t.Errorf("embedded model: %s has kind %q, the zoo table says %q (retrain with make model)", a.Name, a.Kind, ZooKinds[a.Name])
		}
	}
}

func TestResolveKinds(t *testing.T) {
	got, err := ResolveKinds([]string{"stress-vm", "myapp", "idle", "stress-vm"}, map[string]string{"myapp": ArchLatencyServer, "stress-vm": ArchCPUBound})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"stress-vm": ArchCPUBound, "myapp": ArchLatencyServer, "idle": ArchIdle}
	for l, k := range want {
		if got[l] != k {
			t.Errorf("%s -> %q, want %q", l, got[l], k)
		}
	}
	if _, err := ResolveKinds([]string{"myapp", "other", "myapp"}, nil); !errors.Is(err, ErrNoKind) || !strings.Contains(err.Error(), "label(s) myapp, other have no kind") {
		t.Errorf("labels without a kind: %v", err)
	}
	if _, err := ResolveKinds([]string{"myapp"}, map[string]string{"myapp": ArchMixed}); !errors.Is(err, ErrNoKind) {
		t.Errorf("a label of kind mixed: %v", err)
	}
	if _, err := ResolveKinds([]string{"myapp"}, map[string]string{"myapp": "fast"}); err == nil || !strings.Contains(err.Error(), "not a kind: myapp=fast") {
		t.Errorf("a kind outside the vocabulary: %v", err)
	}
}

// TestKindHoldIsStable feeds a fabricated sequence of verdicts: a flicker
// shorter than KindHold never shows, a change that holds shows on its
// KindHold-th interval, and a phase change shows at once.
func TestKindHoldIsStable(t *testing.T) {
	type step struct {
		arch  string
		phase bool
		want  string
	}
	steps := []step{
		{"", false, ""}, // no rates yet
		{ArchIdle, false, ArchIdle},
		{ArchLatencyServer, false, ArchIdle}, // one-interval flicker
		{KindUnknown, false, ArchIdle},
		{ArchIdle, false, ArchIdle},
		{ArchCPUBound, false, ArchIdle},
		{ArchCPUBound, false, ArchIdle},
		{ArchCPUBound, false, ArchCPUBound}, // held KindHold intervals
		{ArchCPUBound, false, ArchCPUBound},
		{ArchMemStreaming, true, ArchMemStreaming}, // phase change: at once
		{ArchCPUBound, false, ArchMemStreaming},
		{ArchCPUBound, false, ArchMemStreaming},
		{ArchIdle, false, ArchMemStreaming}, // the streak restarts
		{ArchIdle, false, ArchMemStreaming},
		{ArchIdle, false, ArchIdle},
	}
	k := &kindHold{}
	for i, s := range steps {
		conf := float64(i) / 100
		got, gotConf := k.settle(s.arch, conf, s.phase)
		if got != s.want {
			t.Fatalf("step %d (%q, phase %v): reported %q, want %q", i, s.arch, s.phase, got, s.want)
		}
		if got == s.arch && gotConf != conf {
			t.Errorf("step %d: confidence %v, want this interval's %v", i, gotConf, conf)
		}
	}
	if KindHold != 3 {
		t.Fatalf("the sequence above is written for KindHold 3, it is %d", KindHold)
	}
}
