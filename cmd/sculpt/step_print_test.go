package main

import (
	"strings"
	"testing"
	"time"

	"sculpt/internal/engine"
	"sculpt/internal/hal"
)

// A steady advice is printed once, with the interval's time on a line of its
// own; a changed plan and a lapsed one are printed when they happen.
func TestStepPrinterPrintsChangesOnly(t *testing.T) {
	var out strings.Builder
	p := newStepPrinter(&out, engine.ModeAdvise)
	t0 := time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	dec := func(cpu float64, sched string) engine.Decision {
		return engine.Decision{
			Workload: "tree:42@1", Name: "spin", Rule: "batch-idle-small",
			Genes:   map[string]float64{"cpu_util": cpu},
			Want:    engine.Want{Sched: sched},
			Actions: []engine.PlannedAction{{Action: hal.SetSched{PID: 42, Policy: sched}, Reason: "r"}},
		}
	}
	step := func(ds ...engine.Decision) *engine.Step { return &engine.Step{Plan: engine.Plan{Decisions: ds}} }

	p.print(t0, step(dec(0.95, "idle")))
	p.print(t0.Add(time.Second), step(dec(0.99, "idle"))) // same plan, other genes: silent
	if got := strings.Count(out.String(), "rule batch-idle-small"); got != 1 {
		t.Fatalf("steady plan printed %d times:\n%s", got, out.String())
	}
	if !strings.HasPrefix(out.String(), "08:00:00\n  spin (tree:42@1): rule batch-idle-small [cpu_util=0.95]") {
		t.Errorf("first interval printed as\n%s", out.String())
	}
	if strings.Count(out.String(), "08:00:0") != 1 {
		t.Errorf("a silent interval printed its time:\n%s", out.String())
	}

	out.Reset()
	p.print(t0.Add(2*time.Second), step(dec(0.99, "batch")))
	if !strings.Contains(out.String(), "-> cores=- sched=batch") || !strings.Contains(out.String(), "would: ") {
		t.Errorf("changed plan printed as\n%s", out.String())
	}

	out.Reset()
	p.print(t0.Add(3*time.Second), step())
	if !strings.Contains(out.String(), "spin (tree:42@1): no plan any more") {
		t.Errorf("lapsed plan printed as\n%s", out.String())
	}
}
