package engine

import (
	"fmt"

	"sculpt/internal/hal"
)

// wantFamilies pairs each field of w that needs an action family with an
// example action of that family, for the capability it needs.
func wantFamilies(w Want) []struct {
	field string
	act   hal.Action
} {
	type need = struct {
		field string
		act   hal.Action
	}
	var out []need
	if w.Cores == CoresDedicated || w.Cores == CoresShared {
		out = append(out, need{"cores", hal.PinThreads{PID: 1, CPUs: []int{0}}})
	}
	if w.Sched != "" || w.Nice != nil {
		out = append(out, need{"sched", hal.SetSched{PID: 1, Policy: "other"}})
	}
	if w.CPUShare != 0 {
		out = append(out, need{"cpu_share", hal.SetCgroupCPU{Cgroup: "/x", Weight: ptrTo(uint64(100))}})
	}
	if w.CPUQuota > 0 {
		q := int64(1000)
		out = append(out, need{"cpu_quota", hal.SetCgroupCPU{Cgroup: "/x", QuotaUS: &q}})
	}
	if w.IOReadMBps > 0 || w.IOWriteMBps > 0 {
		out = append(out, need{"io_write_mbps", hal.BlkioLimit{Cgroup: "/x", Device: "0:0"}})
	}
	if w.IRQs == IRQsAway {
		out = append(out, need{"irqs", hal.IRQAffinity{IRQ: 0, CPUs: []int{0}}})
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

// CapabilityWarnings says, for each rule of rs, each field asking for an
// action family this machine cannot change, with the capability's reason:
// the rule still matches, and the planner notes the refusal each time.
func CapabilityWarnings(rs *RuleSet, caps hal.Capabilities) []Diagnostic {
	var out []Diagnostic
	for _, r := range rs.Rules {
		for _, n := range wantFamilies(r.Then) {
			if cp := caps.For(n.act); !cp.Supported {
				field := n.field
				if field == "io_write_mbps" && r.Then.IOWriteMBps == 0 {
					field = "io_read_mbps"
				}
				out = append(out, Diagnostic{Severity: "warning", Line: r.Line, Rule: r.Name, Field: "then." + field,
					Message: fmt.Sprintf("this machine cannot change %s: %s", n.act.Kind(), cp.Reason)})
			}
		}
	}
	return out
}
