package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestBenchColocationSLOFrom reports and plots a saved --slo --json result:
// the objectives, the oracle per run, the cases and the signal check appear,
// and the plot is a PNG.
func TestBenchColocationSLOFrom(t *testing.T) {
	rho := 0.94
	sp := func(m float64) bench.Spread { return bench.Spread{Median: m, Min: m * 0.9, Max: m * 1.1, N: 3} }
	res := bench.SLOResult{
		Machine: bench.Machine{CPUs: 2, CPUModel: "Test CPU", Kernel: "Linux 6.18"},
		Runs:    3, DurationSec: 15, Share: 0.95, Antagonists: map[string]string{"cpu": "--cpu 2"},
		LoadAvgBefore: [3]float64{1.5, 1, 0.5},
		Services: []bench.SLOService{{
			Service: "memcached", Load: "open loop",
			Factors: []bench.SLOFactor{{
				Factor: 1.5, TargetServerMicros: sp(150), TargetClientMicros: sp(1500),
				Oracles: []string{"class=idle,quota=1,cpus=all", "", "class=idle,quota=1,cpus=all"},
				Cases: []bench.SLOCaseSummary{
					{Name: "class=idle,quota=1,cpus=all", Attainment: sp(0.97), AntagonistCPU: sp(0.93), VsOracle: sp(1), Oracle: 2},
					{Name: bench.SLOCaseAgentCold, Attainment: sp(0.96), AntagonistCPU: sp(0.88), VsOracle: sp(0.947), AgentConvergedAfter: sp(12)},
				},
			}},
			Signal: bench.SLOSignal{Arrangements: []string{"alone", "default", "idle"}, ServerMicros: []float64{100, 400, 120},
				ClientMicros: []float64{1000, 5000, 1300}, Spearman: &rho, RatioClientServer: 10.8},
			Measurements: []bench.SLOMeasurement{
				{Case: bench.SLOCaseAlone, Run: 1, ServerP99Micros: []float64{100, 110}, ClientP99Micros: []float64{900, 1000}},
				{Case: "class=idle,quota=1,cpus=all", Run: 1, ServerP99Micros: []float64{120, 130}, AntagonistCPU: 0.93},
				{Case: bench.SLOCaseAgentCold, Factor: 1.5, Run: 1, ServerP99Micros: []float64{140}, AntagonistCPU: 0.88},
			},
		}},
	}
	dir := t.TempDir()
	in, png := filepath.Join(dir, "slo.json"), filepath.Join(dir, "slo.png")
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "colocation", "--slo-from", in, "--plot", png}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"objective p99 <= 1.5x alone: server-side (eBPF) 150 [135-165] µs; in client terms 1500 [1350-1650] µs",
		"oracle per run: class=idle,quota=1,cpus=all; none met it; class=idle,quota=1,cpus=all",
		"agent-cold", "0.95 [0.85-1.04]", // the agent's antagonist CPU against the oracle's
		"Spearman(server p99, client p99) over 3 arrangements = 0.94; median client/server ratio 10.80",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	img, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Errorf("plot %s: %v, %d bytes; want a PNG", png, err, len(img))
	}
}

func TestBenchColocationPlotFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--plot", "out.svg", "--slo", "1.5"}, "--plot out.svg: want a .png"},
		{[]string{"--slo-from", "/nonexistent/slo.json"}, "--slo-from /nonexistent/slo.json:"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"bench", "colocation"}, tc.args...), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
