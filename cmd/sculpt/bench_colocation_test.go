package main

import (
	"bytes"
	"strings"
	"testing"

	"sculpt/internal/bench"
)

// TestBenchColocationBadFlags: bad input exits 2 with a message naming the
// flag and the value, before anything starts.
func TestBenchColocationBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--service", "redis"}, `--service redis:`},
		{[]string{"--antagonists", "cpu,gpu"}, `--antagonists: "gpu"`},
		{[]string{"--cases", "alone,best"}, `--cases: "best"`},
		{[]string{"--static", "rt"}, `--static: "rt"`},
		{[]string{"--runs", "0"}, "--runs 0"},
		{[]string{"--duration", "100ms"}, "--duration 100ms"},
		{[]string{"--rate", "-1"}, "--rate -1"},
		{[]string{"--nginx-client", "wrk2"}, `--nginx-client wrk2:`},
		{[]string{"--sculpt-rules", "/nonexistent/rules.yaml"}, `--sculpt-rules /nonexistent/rules.yaml:`},
		{[]string{"--slo", "1.5,fast"}, "--slo fast:"},
		{[]string{"--slo", "1"}, "--slo 1:"},
		{[]string{"--slo", "0.8"}, "--slo 0.8:"},
		{[]string{"--slo", "1.5", "--slo-quotas", "1,-0.5"}, "--slo-quotas -0.5:"},
		{[]string{"--slo", "1.5", "--slo-classes", "fifo"}, "--slo-classes fifo:"},
		{[]string{"--slo", "1.5", "--slo-share", "1.5"}, "--slo-share 1.5:"},
		{[]string{"--slo", "1.5", "--slo-quota-weight", "max"}, "--slo-quota-weight max:"},
		{[]string{"--slo", "1.5", "--nginx-client", "wrk"}, "--nginx-client wrk: --slo"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"bench", "colocation"}, tc.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", tc.args, code, errb.String(), tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q, want nothing", tc.args, out.String())
		}
	}
}

// TestWriteColocationTable renders a result with an unavailable case and
// checks the figures, ratios, best static setting and targets appear.
func TestWriteColocationTable(t *testing.T) {
	minRatio := 0.97
	sp := func(m float64) bench.Spread { return bench.Spread{Median: m, Min: m - 1, Max: m + 1, N: 5} }
	res := &bench.ColocationResult{
		Machine: bench.Machine{CPUs: 2, CPUModel: "Test CPU", Kernel: "Linux 6.18"},
		Runs:    5, DurationSec: 10,
		Antagonists: map[string]string{"cpu": "--cpu 2"},
		Services: []bench.ColocationService{{
			Service: "memcached", Load: "open loop", BestStatic: "static:idle",
			Cases: []bench.ColocationCase{
				{Name: "alone", Setting: "the service alone", P50Micros: sp(100), P99Micros: sp(200), Throughput: sp(5000), P99VsAlone: 1},
				{Name: "static:idle", Setting: "antagonists SCHED_IDLE", P50Micros: sp(110), P99Micros: sp(300), Throughput: sp(5000),
					Antagonists: map[string]bench.Spread{"cpu": sp(900)}, P99VsAlone: 1.5, P99VsBestStatic: 1, AntagonistsVsDefaultMin: &minRatio},
				{Name: "sculpt", Setting: "sculpt run --mode apply", Unavailable: "unavailable: sculpt: --mode apply is not available yet"},
			},
			Targets: &bench.ColocationTargets{P99WithinAlone: true},
		}},
	}
	var out bytes.Buffer
	if err := writeColocationTable(&out, res); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"antagonist cpu: stress-ng --cpu 2",
		"memcached: open loop",
		"300 [299-301]", "900 [899-901]", "1.50", "0.97",
		"unavailable (below)",
		"unavailable: sculpt: --mode apply is not available yet",
		"best static setting (lowest median p99): static:idle",
		"p99 <= 1.25x alone: yes; p99 < best static: no; antagonists >= 0.5x default: no",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}
