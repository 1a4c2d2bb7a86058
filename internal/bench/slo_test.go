package bench

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func rep(n int, v float64) []float64 {
	s := make([]float64, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// TestJudgeSLO judges fabricated measurements of two runs: the objective
// from the p99 alone, the oracle (most antagonist CPU among the grid points
// that meet it), the agent's attainment after it settled and its
// antagonists' CPU against the oracle's, and the signal's rank correlation.
func TestJudgeSLO(t *testing.T) {
	var ms []SLOMeasurement
	for run := 1; run <= 2; run++ {
		ms = append(ms,
			SLOMeasurement{Case: SLOCaseAlone, Run: run, ServerP99Micros: rep(20, 100), ClientP99Micros: rep(20, 1000)},
			// 150% of alone is the target: default misses it, idle meets
			// it in 18 of 20 (90%), quota=1 in all.
			SLOMeasurement{Case: CaseDefault, Run: run, ServerP99Micros: rep(20, 400), ClientP99Micros: rep(20, 5000), AntagonistCPU: 1.9},
			SLOMeasurement{Case: "idle", Run: run, ServerP99Micros: append(rep(18, 120), 300, 300), ClientP99Micros: rep(20, 1300), AntagonistCPU: 1.5},
			SLOMeasurement{Case: "quota=1", Run: run, ServerP99Micros: rep(20, 130), ClientP99Micros: rep(20, 1400), AntagonistCPU: 1.0},
			SLOMeasurement{Case: "quota=0.5", Run: run, ServerP99Micros: rep(20, 110), ClientP99Micros: rep(20, 1100), AntagonistCPU: 0.5},
			SLOMeasurement{Case: SLOCaseRules, Run: run, ServerP99Micros: rep(20, 200), ClientP99Micros: rep(20, 2500), AntagonistCPU: 1.2},
			// The agent settles at interval 4 of the window: the 4 misses
			// before do not count.
			SLOMeasurement{Case: SLOCaseAgentCold, Factor: 1.5, Run: run, SettledAt: 4, AgentConvergedAfter: 9,
				ServerP99Micros: append(rep(4, 500), rep(16, 140)...), ClientP99Micros: append(rep(4, 6000), rep(16, 1400)...), AntagonistCPU: 0.9},
			// Another objective's agent run is not judged against this one.
			SLOMeasurement{Case: SLOCaseAgentCold, Factor: 1.25, Run: run, ServerP99Micros: rep(20, 1), ClientP99Micros: rep(20, 1), AntagonistCPU: 5},
		)
	}
	sr := SLOService{Service: "memcached", Measurements: ms, Settings: map[string]string{}}
	judgeSLO(&sr, []float64{1.5}, 0.95)
	if len(sr.Factors) != 1 {
		t.Fatalf("factors: %+v", sr.Factors)
	}
	f := sr.Factors[0]
	if f.TargetServerMicros.Median != 150 || f.TargetClientMicros.Median != 1500 {
		t.Errorf("targets %v µs server, %v µs client; want 150, 1500", f.TargetServerMicros.Median, f.TargetClientMicros.Median)
	}
	if len(f.Oracles) != 2 || f.Oracles[0] != "quota=1" || f.Oracles[1] != "quota=1" {
		t.Errorf("oracles %q, want quota=1 in both runs", f.Oracles)
	}
	cs := map[string]SLOCaseSummary{}
	for _, c := range f.Cases {
		cs[c.Name] = c
	}
	agent := cs[SLOCaseAgentCold]
	if agent.Attainment.Median != 1 || agent.Attainment.N != 2 {
		t.Errorf("agent attainment %+v, want 1 in 2 runs (after it settled)", agent.Attainment)
	}
	if math.Abs(agent.VsOracle.Median-0.9) > 1e-9 {
		t.Errorf("agent vs oracle %v, want 0.9", agent.VsOracle.Median)
	}
	if agent.AgentConvergedAfter.Median != 9 || agent.ConvergedAfter.Median != 4 {
		t.Errorf("agent converged after %v (agent), %v (series); want 9, 4", agent.AgentConvergedAfter.Median, agent.ConvergedAfter.Median)
	}
	if agent.ClientP99Micros.Median != 1400 {
		t.Errorf("agent client p99 %v, want 1400 (after it settled)", agent.ClientP99Micros.Median)
	}
	if a := cs["idle"].Attainment.Median; a != 0.9 {
		t.Errorf("idle attainment %v, want 0.9", a)
	}
	if d := cs[CaseDefault]; d.Attainment.Median != 0 || d.NotConverged != 2 || math.Abs(d.VsOracle.Median-1.9) > 1e-9 {
		t.Errorf("default %+v: want attainment 0, never converged in 2 runs, 1.9x the oracle", d)
	}
	if cs["quota=1"].Oracle != 2 {
		t.Errorf("quota=1 oracle in %d runs, want 2", cs["quota=1"].Oracle)
	}
	sig := sr.Signal
	if len(sig.Arrangements) != 5 || sig.Spearman == nil || *sig.Spearman != 1 {
		t.Errorf("signal %+v: want 5 arrangements (alone and the grid) ranked alike", sig)
	}
	// Ratios 10 (alone), 12.5, 1300/120, 1400/130, 10: the median is quota=1's.
	if math.Abs(sig.RatioClientServer-1400.0/130) > 1e-9 {
		t.Errorf("median client/server ratio %v, want 1400/130", sig.RatioClientServer)
	}
}

func TestParseStep(t *testing.T) {
	agentLine := `{"tick":12,"plan":{"decisions":[{"name":"memcached","genes":{"req_p99_s":0.002}}]},"agent":{"settled":true,"converged_after":7,"objectives":[{"value":0.0015,"known":true}]}}`
	p99, ca, settled, ok := parseStep([]byte(agentLine), "memcached")
	if !ok || math.Abs(p99-1500) > 1e-6 || ca != 7 || !settled {
		t.Errorf("agent line: %v µs, converged after %d, settled %v, ok %v; want 1500 (the objective's value), 7, true, true", p99, ca, settled, ok)
	}
	rulesLine := `{"tick":3,"plan":{"decisions":[{"name":"stress-ng","genes":{"req_p99_s":1}},{"name":"memcached","genes":{"req_p99_s":0.002}}]}}`
	if p99, _, _, ok := parseStep([]byte(rulesLine), "memcached"); !ok || math.Abs(p99-2000) > 1e-6 {
		t.Errorf("rules line: %v µs, ok %v; want 2000 from the service's genes", p99, ok)
	}
	if _, _, _, ok := parseStep([]byte(`time=2026-12-03T09:24:25Z level=INFO msg="sculpt running"`), "memcached"); ok {
		t.Error("a log line parsed as a step")
	}
	obs := `{"time":"2026-12-03T09:27:04Z","workloads":[{"pids":[7],"genes":{"req_p99_s":0.5}},{"pids":[42,43],"genes":{"req_p99_s":0.0025}}]}`
	if v := serverP99FromObserve([]byte(obs), 42); math.Abs(v-2500) > 1e-6 {
		t.Errorf("observe line: %v µs, want 2500 (the workload holding the pid)", v)
	}
	if v := serverP99FromObserve([]byte(obs), 99); v != 0 {
		t.Errorf("observe line without the pid: %v, want 0", v)
	}
}

func TestSLOGrid(t *testing.T) {
	g := sloGrid(SLOOptions{Classes: []string{ClassIdle}, Quotas: []float64{0.25, 1, 0.5}, QuotaWeight: "min"}, 4)
	if len(g) != 9 || g[0].name != CaseDefault {
		t.Fatalf("grid %d points, first %q; want 9, default first", len(g), g[0].name)
	}
	if g[1].name != "class=idle,quota=none,cpus=all" || g[2].name != "class=idle,quota=1,cpus=all" || g[4].name != "class=idle,quota=0.25,cpus=all" {
		t.Errorf("chain order %q %q %q: want quotas descending after none", g[1].name, g[2].name, g[4].name)
	}
	last := g[8].setting
	if last.antagonistCPUs != "0-2" || !last.antagonistIdle || last.antagonistQuota != 0.25 || !last.antagonistMinWeight {
		t.Errorf("last point %+v: want CPUs 0-2, idle, quota 0.25, min weight", last)
	}
	if g[5].setting.antagonistMinWeight {
		t.Errorf("%s: min weight without a quota", g[5].name)
	}
}

// TestMakeQuotaCgroup writes the quota and the weight into a fake cgroup v1
// cpu hierarchy, and refuses a hierarchy without CFS quota.
func TestMakeQuotaCgroup(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cpu.cfs_quota_us"), []byte("-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := staticSetting{name: "q", antagonistQuota: 0.25, antagonistMinWeight: true}
	dir, err := s.makeQuotaCgroup(filepath.Join(root, "bench"))
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "25000", "cpu.shares": "2"} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", file, b, err, want)
		}
	}
	if _, err := s.makeQuotaCgroup(filepath.Join(t.TempDir(), "bench")); err == nil {
		t.Error("no error without cpu.cfs_quota_us in the parent")
	}
}

// TestAcctUsage sums cpuacct.usage (ns) over the run's cgroups, in seconds.
func TestAcctUsage(t *testing.T) {
	base := t.TempDir()
	for name, ns := range map[string]string{"cpu": "1500000000\n", "vm": "500000000\n"} {
		if err := os.MkdirAll(filepath.Join(base, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(base, name, "cpuacct.usage"), []byte(ns), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := &colocRun{acct: base}
	if got := h.acctUsage(); got != 2 {
		t.Errorf("acctUsage = %v s, want 2", got)
	}
	if got := (&colocRun{}).acctUsage(); got != 0 {
		t.Errorf("acctUsage without cgroups = %v, want 0", got)
	}
}
