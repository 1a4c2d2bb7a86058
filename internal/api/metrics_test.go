package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/hal"
)

// scrape reads the server's /metrics as Prometheus would.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	ts := httptest.NewServer(s)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value finds the sample of name whose labels include want; ok false when
// there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestMetricsCountWhatTheStepsDid(t *testing.T) {
	s := New(Options{Version: "v9", MaxWorkloads: 1})
	snap := fixture()
	s.Publish(snap)
	s.Publish(snap) // the same step twice: counters add up
	s.Reverted([]engine.AppliedAction{{Workload: "cg:/svc/web", Action: hal.PinThreads{PID: 1, CPUs: []int{0}}}})
	fams := scrape(t, s)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"sculpt_decisions_total", nil, 2},
		{"sculpt_actions_total", map[string]string{"family": "pin", "result": "applied"}, 2},
		{"sculpt_actions_total", map[string]string{"family": "sched", "result": "failed"}, 2},
		{"sculpt_refusals_total", map[string]string{"family": "sched"}, 2},
		{"sculpt_rollbacks_total", map[string]string{"family": "pin"}, 2},
		{"sculpt_reverts_total", map[string]string{"family": "pin"}, 1},
		{"sculpt_ticks_total", nil, 2},
		{"sculpt_tick_duration_seconds", nil, 2}, // observations
		{"sculpt_collector_success", map[string]string{"collector": "procfs"}, 1},
		{"sculpt_collector_success", map[string]string{"collector": "perf"}, 0},
		{"sculpt_collector_duration_seconds", map[string]string{"collector": "procfs"}, 0.002},
		{"sculpt_objective_met", map[string]string{"workload": "cg:/svc/web"}, 1},
		{"sculpt_objective_met", map[string]string{"workload": "cg:/svc/api"}, 0},
		{"sculpt_objective_attainment_ratio", map[string]string{"workload": "cg:/svc/api"}, 3},
		{"sculpt_objective_interval_latency_seconds", map[string]string{"workload": "cg:/svc/web", "objective": "p99 <= 2ms"}, 2},
		{"sculpt_mode", map[string]string{"mode": "advise"}, 1},
		{"sculpt_mode", map[string]string{"mode": "apply"}, 0},
		{"sculpt_build_info", map[string]string{"version": "v9"}, 1},
		{"sculpt_workloads", nil, 2},
		{"sculpt_workloads_exported", nil, 1},
		{"sculpt_journal_entries", nil, 1},
		// The cap keeps the busiest: batch (1.9 cores), not web (0.9).
		{"sculpt_workload_gene", map[string]string{"workload": "tree:4343@99", "gene": "cpu_util"}, 1.9},
	} {
		got, ok := value(fams, c.name, c.labels)
		if !ok {
			t.Errorf("%s%v: missing", c.name, c.labels)
			continue
		}
		if d := got - c.want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if _, ok := value(fams, "sculpt_workload_gene", map[string]string{"workload": "cg:/svc/web"}); ok {
		t.Error("genes of a workload beyond the cap were exported")
	}
	// A workload that is gone leaves the gauges; absent genes stay absent.
	s.Publish(&Snapshot{Mode: engine.ModeAdvise, Workloads: []dna.DNA{{ID: "x", Name: "x", Genes: dna.Genes{"cpu_util": 0.1}}}})
	fams = scrape(t, s)
	if _, ok := value(fams, "sculpt_workload_gene", map[string]string{"workload": "tree:4343@99"}); ok {
		t.Error("a workload that is gone is still exported")
	}
	if _, ok := value(fams, "sculpt_workload_gene", map[string]string{"workload": "x", "gene": "psi_cpu"}); ok {
		t.Error("a gene not measured was exported")
	}
}
