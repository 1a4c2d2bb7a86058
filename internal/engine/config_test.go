package engine

import (
	"errors"
	"strings"
	"testing"

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

func TestParsePromText(t *testing.T) {
	body := `# HELP rpc_latency_seconds latency
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{quantile="0.5",service="a"} 0.0002
rpc_latency_seconds{quantile="0.99",service="a"} 0.0031
rpc_latency_seconds_sum 12.5
rpc_latency_seconds_count 1000
up 1
`
	v, err := ParsePromText(strings.NewReader(body), "rpc_latency_seconds", map[string]string{"quantile": "0.99"})
	if err != nil || v != 0.0031 {
		t.Errorf("p99 = %v, %v; want 0.0031", v, err)
	}
	if v, err := ParsePromText(strings.NewReader(body), "up", nil); err != nil || v != 1 {
		t.Errorf("up = %v, %v", v, err)
	}
	if _, err := ParsePromText(strings.NewReader(body), "rpc_latency_seconds", map[string]string{"quantile": "0.999"}); err == nil {
		t.Errorf("a missing sample gave no error")
	}
	if _, err := ParsePromText(strings.NewReader(`m{a="x} 1`), "m", nil); err == nil {
		t.Errorf("a malformed label gave no error")
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
