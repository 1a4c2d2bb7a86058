package main

import (
	"strings"
	"testing"

	"sculpt/internal/dna"
)

// WAIT is the run-queue wait in cores, not the ratio to a CPU time near zero
// (which read "RUNQ 19.5" beside "CPU 0.00"); every heading is in the legend.
func TestTableWaitColumnAndLegend(t *testing.T) {
	var b strings.Builder
	ds := []dna.DNA{
		{ID: "tree:1@1", Name: "busy", Genes: dna.Genes{"cpu_util": 0.5, "runq_delay_frac": 0.4}},
		{ID: "tree:2@1", Name: "idle", Genes: dna.Genes{"cpu_util": 0.001, "runq_delay_frac": 19.5}},
		{ID: "tree:3@1", Name: "blind", Genes: dna.Genes{}},
	}
	if err := writeTable(&b, ds, 10); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	head := strings.Fields(lines[0])
	for i, want := range []string{"0.20", "0.02", "-"} {
		f := strings.Fields(lines[i+1])
		// WORKLOAD ID PIDS ARCHETYPE CPU USER WAIT ...: WAIT is the 7th field.
		if got := f[6]; got != want {
			t.Errorf("row %q: WAIT %q, want %q", lines[i+1], got, want)
		}
	}
	legend := tableLegend()
	for _, h := range head {
		if !strings.Contains(legend, "  "+h+" ") {
			t.Errorf("legend does not explain column %s:\n%s", h, legend)
		}
	}
}
