package engine

import (
	"strings"
	"testing"

	"sculpt/internal/hal"
)

// A rule asking for a family this machine cannot change is warned about
// with its rule, line, field and the capability's reason; one the machine
// supports is not.
func TestCapabilityWarnings(t *testing.T) {
	rs, diags := ParseRules("r.yaml", []byte(`version: 1
rules:
  - name: writer
    when: "true"
    then: {sched: batch, io_write_mbps: 20}
  - name: svc
    when: "false"
    then: {cores: dedicated, count: 1, irqs: away}
`))
	if rs == nil {
		t.Fatalf("rules refused: %v", diags)
	}
	y := hal.Yes("here")
	caps := hal.Capabilities{Pin: y, Sched: y, Cpuset: y, IRQAffinity: hal.No("irqbalance owns them"),
		BlkioLimit: hal.No("no throttle files")}
	ws := CapabilityWarnings(rs, caps)
	if len(ws) != 2 {
		t.Fatalf("warnings %v, want the I/O cap and the interrupts", ws)
	}
	if w := ws[0]; w.Rule != "writer" || w.Line != 3 || w.Field != "then.io_write_mbps" || w.Severity != "warning" || !strings.Contains(w.Message, "no throttle files") {
		t.Errorf("first warning %+v", w)
	}
	if w := ws[1]; w.Rule != "svc" || w.Field != "then.irqs" || !strings.Contains(w.Message, "irqbalance owns them") {
		t.Errorf("second warning %+v", w)
	}
	caps.BlkioLimit, caps.IRQAffinity = y, y
	if ws := CapabilityWarnings(rs, caps); len(ws) != 0 {
		t.Errorf("warnings on a machine that can: %v", ws)
	}
}
