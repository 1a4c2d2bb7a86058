package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
)

func TestParseConfigOverridesDefaults(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(`version: 1
hysteresis: 3
protected:
  names: [sshd, "kube*"]
metrics:
  - workload: memcached
    url: http://127.0.0.1:9150/metrics
    metric: memcached_latency_seconds
    labels: {quantile: "0.99"}
    target: 0.001
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hysteresis != 3 || cfg.Budget != DefaultConfig().Budget || cfg.Rollback.After != 2 {
		t.Errorf("config %+v: set fields not taken or defaults lost", cfg)
	}
	if cfg.Metrics[0].Better != "lower" || cfg.Metrics[0].Labels["quantile"] != "0.99" {
		t.Errorf("metric %+v", cfg.Metrics[0])
	}
	// A protected section without ancestors keeps the default (true); one
	// that says false turns it off.
	if !cfg.Protected.Ancestors {
		t.Errorf("protected.ancestors lost its default: %+v", cfg.Protected)
	}
	cfg, err = ParseConfig("c.yaml", []byte("version: 1\nprotected:\n  ancestors: false\n"))
	if err != nil || cfg.Protected.Ancestors {
		t.Errorf("protected.ancestors: false gave %+v, %v", cfg.Protected, err)
	}
}

func TestParseConfigYAMLErrorLine(t *testing.T) {
	_, err := ParseConfig("c.yaml", []byte("version: 1\nhysteresis: 2\nprotected:\n  names: [a, b\nbudget: 3\n"))
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Line != 4 || !strings.HasPrefix(err.Error(), "config c.yaml:4: not valid YAML") {
		t.Errorf("error %v, want a YAML error on line 4", err)
	}
}

func TestParseConfigErrorsNameTheField(t *testing.T) {
	cases := map[string]string{
		"version: 1\nhysterisis: 2\n":                                                   "hysterisis",
		"version: 1\nbudget: 0\n":                                                       "budget",
		"version: 1\nreserve_shared_cpus: 0\n":                                          "reserve_shared_cpus",
		"version: 1\nrollback: {progress_floor: 2}\n":                                   "rollback.progress_floor",
		"version: 1\nhysteresis: two\n":                                                 "hysteresis",
		"version: 2\n":                                                                  "version",
		"version: 1\nprotected: {cgroups: [system.slice]}\n":                            "protected.cgroups[0]",
		"version: 1\nmetrics: [{workload: x, url: ftp://a, metric: m, target: 1}]\n":    "metrics[0].url",
		"version: 1\nmetrics: [{workload: x, url: http://a/m, metric: m, target: 0}]\n": "metrics[0].target",
	}
	for src, field := range cases {
		_, err := ParseConfig("c.yaml", []byte(src))
		if err == nil {
			t.Errorf("%q accepted", src)
			continue
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), field) {
			t.Errorf("%q: error %q does not name %s", src, err, field)
		}
	}
}

func TestRewardFromGenesAndMetric(t *testing.T) {
	g := dna.Genes{"runq_delay_frac": 0.4, "cpu_util": 0.8}
	r := ComputeReward(RewardLatency, g, nil)
	if r.Value != -0.4 {
		t.Errorf("latency reward %v, want -0.4", r.Value)
	}
	if _, ok := r.Parts["psi_cpu"]; ok {
		t.Errorf("absent psi_cpu counted: %v", r.Parts)
	}
	r = ComputeReward(RewardLatency, g, &MetricReading{Value: 0.003, Target: 0.001, Better: "lower"})
	if d := r.Value - (-0.4 - 2); d > 1e-9 || d < -1e-9 {
		t.Errorf("reward with p99 3x its target = %v, want -2.4", r.Value)
	}
	if r := ComputeReward(RewardLatency, g, &MetricReading{Value: 0.0005, Target: 0.001}); r.Value != -0.4 {
		t.Errorf("a metric within its target cost %v", r.Value+0.4)
	}
	p := ComputeReward(RewardProgress, g, nil)
	rc := DefaultConfig().Rollback
	if Worse(p, ComputeReward(RewardProgress, dna.Genes{"cpu_util": 0.5}, nil), rc) {
		t.Errorf("progress 0.8 -> 0.5 (>= half) judged worse")
	}
	if !Worse(p, ComputeReward(RewardProgress, dna.Genes{"cpu_util": 0.3}, nil), rc) {
		t.Errorf("progress 0.8 -> 0.3 (< half) not judged worse")
	}
	// An I/O streamer in the idle class: less CPU, as many bytes: not worse;
	// fewer bytes too: worse. A spinner's few KiB/s of writes are not its
	// progress.
	io := func(cpu, bps float64) Reward {
		return ComputeReward(RewardProgress, dna.Genes{"cpu_util": cpu, "io_read_bps": 0, "io_write_bps": bps}, nil)
	}
	if Worse(io(0.31, 190<<20), io(0.075, 185<<20), rc) {
		t.Errorf("I/O streamer keeping its bytes judged worse")
	}
	if !Worse(io(0.31, 190<<20), io(0.075, 20<<20), rc) {
		t.Errorf("I/O streamer losing CPU and bytes not judged worse")
	}
	if !Worse(io(0.9, 2048), io(0.2, 4096), rc) {
		t.Errorf("spinner losing CPU not judged worse because its log writes grew")
	}
	if !Worse(ComputeReward(RewardLatency, g, nil), ComputeReward(RewardLatency, dna.Genes{"runq_delay_frac": 0.9}, nil), rc) {
		t.Errorf("latency -0.4 -> -0.9 not judged worse")
	}
}

func TestParseConfigObjectives(t *testing.T) {
	cfg, err := ParseConfig("c.yaml", []byte(`version: 1
objectives:
  - workload: "redis*"
    p99: 2ms
  - workload: "unit:batch-*.service"
    maximize: throughput
  - workload: api
    p50: 500us
    metric: {url: "http://127.0.0.1:9100/metrics", name: http_request_duration_seconds}
agent:
  judge: 4
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Objectives) != 3 || cfg.Agent.Judge != 4 || cfg.Agent.Levels != 10 {
		t.Fatalf("objectives %+v agent %+v", cfg.Objectives, cfg.Agent)
	}
	o, ok := cfg.ObjectiveFor("tree:9@1", "redis-server")
	if q, target, isLat := o.Percentile(); !ok || !isLat || q != 0.99 || target != 2*time.Millisecond || o.String() != "p99 <= 2ms" {
		t.Errorf("redis-server: objective %+v (%v), want p99 <= 2ms", o, ok)
	}
	if o, ok := cfg.ObjectiveFor("unit:batch-etl.service", "batch-etl.service"); !ok || o.Maximize != "throughput" {
		t.Errorf("batch unit: objective %+v %v", o, ok)
	}
	if _, ok := cfg.ObjectiveFor("tree:1@1", "nginx"); ok {
		t.Error("nginx matched an objective")
	}
}

func TestParseConfigBadObjectivesNameFieldAndLine(t *testing.T) {
	for src, want := range map[string]string{
		"version: 1\nobjectives:\n  - workload: a\n    p99: fast\n":                               "c.yaml:4",
		"version: 1\nobjectives:\n  - workload: a\n    p99: -2ms\n":                               "objectives[0].p99: -2ms",
		"version: 1\nobjectives:\n  - workload: a\n":                                              "objectives[0].workload",
		"version: 1\nobjectives:\n  - workload: a\n    maximize: speed\n":                         "objectives[0].maximize: \"speed\"",
		"version: 1\nobjectives:\n  - workload: a\n    p99: 1ms\n    maximize: throughput\n":      "not both",
		"version: 1\nobjectives:\n  - workload: a\n    p99: 1ms\n    p50: 1ms\n":                  "one latency percentile",
		"version: 1\nobjectives:\n  - p99: 1ms\n":                                                 "objectives[0].workload: missing",
		"version: 1\nobjectives:\n  - workload: \"[\"\n    p99: 1ms\n":                            "objectives[0].workload",
		"version: 1\nobjectives:\n  - workload: a\n    p99: 1ms\n    metric: {url: x, name: m}\n": "objectives[0].metric.url",
		"version: 1\nobjectives:\n  - workload: a\n    p99: 1ms\n    latency: 3\n":                "c.yaml:5",
		"version: 1\nagent: {floor_cpu: 0}\n":                                                     "agent.floor_cpu",
		"version: 1\nagent: {levels: 1}\n":                                                        "agent.levels",
	} {
		_, err := ParseConfig("c.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to say %q", src, err, want)
		}
	}
}
