package engine

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/dna"
)

// RevertWorkload undoes one workload's arrangement and leaves the other's;
// a workload sculpt changed nothing of is ErrUnknownWorkload.
func TestEngineRevertWorkload(t *testing.T) {
	f := newFakeHAL(10, 20)
	e, _ := testEngine(t, ModeApply, f, nil)
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	step(t, e, o)
	step(t, e, o)
	if got := e.Arranged(); !slices.Equal(got, []string{"hog", "svc"}) {
		t.Fatalf("arranged %v, want hog and svc", got)
	}
	undone, err := e.RevertWorkload(context.Background(), "hog", "asked")
	if err != nil || len(undone) == 0 {
		t.Fatalf("revert hog: %d undone, %v", len(undone), err)
	}
	if !slices.Equal(f.cpus[20], []int{0, 1}) || f.policy[20] != "other" {
		t.Errorf("hog after revert: %v %s, want both CPUs, other", f.cpus[20], f.policy[20])
	}
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Errorf("reverting hog moved svc: %v", f.cpus[10])
	}
	if got := e.Arranged(); !slices.Equal(got, []string{"svc"}) {
		t.Errorf("arranged after revert %v", got)
	}
	if _, err := e.RevertWorkload(context.Background(), "hog", "again"); !errors.Is(err, ErrUnknownWorkload) {
		t.Errorf("second revert of hog: %v, want ErrUnknownWorkload", err)
	}
}

// Leaving apply undoes everything; advise then applies nothing; an
// unknown mode is refused and changes nothing.
func TestEngineSetMode(t *testing.T) {
	f := newFakeHAL(10, 20)
	e, audit := testEngine(t, ModeApply, f, nil)
	o := obsOf(wl{"svc", 10, svcGenes}, wl{"hog", 20, hogGenes})
	step(t, e, o)
	step(t, e, o)
	if _, err := e.SetMode(context.Background(), "fast"); err == nil || e.Mode() != ModeApply {
		t.Fatalf("mode fast: %v, mode %s", err, e.Mode())
	}
	undone, err := e.SetMode(context.Background(), ModeAdvise)
	if err != nil || len(undone) == 0 || e.Mode() != ModeAdvise {
		t.Fatalf("apply -> advise: %d undone, %v, mode %s", len(undone), err, e.Mode())
	}
	if !slices.Equal(f.cpus[10], []int{0, 1}) || f.policy[20] != "other" || len(e.Arranged()) != 0 {
		t.Errorf("after leaving apply: svc %v, hog %s, arranged %v; want as before", f.cpus[10], f.policy[20], e.Arranged())
	}
	n := len(f.applied)
	for i := 0; i < 3; i++ {
		step(t, e, o)
	}
	if len(f.applied) != n {
		t.Errorf("advise applied %v", f.applied[n:])
	}
	if !strings.Contains(audit.String(), `"event":"mode"`) {
		t.Error("the mode change is not in the audit log")
	}
	// Back to apply: the engine arranges again.
	if _, err := e.SetMode(context.Background(), ModeApply); err != nil {
		t.Fatal(err)
	}
	step(t, e, o)
	step(t, e, o)
	if !slices.Equal(f.cpus[10], []int{1}) {
		t.Errorf("back in apply, svc %v, want CPU 1", f.cpus[10])
	}
}

// An undo made by a rollback says so (the metrics count it), and the
// step's JSON is as before.
func TestUndoSaysRollback(t *testing.T) {
	f := newFakeHAL(10)
	e, _ := testEngine(t, ModeApply, f, func(c *Config) { c.Rollback.After = 2; c.Cooldown = 10 })
	good, worse := dna.Genes{}, dna.Genes{}
	for k, v := range svcGenes {
		good[k], worse[k] = v, v
	}
	good["runq_delay_frac"], worse["runq_delay_frac"] = 0.1, 0.9
	step(t, e, obsOf(wl{"svc", 10, good}))
	step(t, e, obsOf(wl{"svc", 10, good}))
	step(t, e, obsOf(wl{"svc", 10, worse}))
	st := step(t, e, obsOf(wl{"svc", 10, worse}))
	if len(st.Undone) == 0 {
		t.Fatal("nothing rolled back")
	}
	for _, u := range st.Undone {
		if u.Event != "rollback" {
			t.Errorf("undo %v: event %q, want rollback", u.Action, u.Event)
		}
		if b, _ := json.Marshal(u); strings.Contains(string(b), `"event"`) {
			t.Errorf("the event leaked into the step's JSON: %s", b)
		}
	}
}
