package dna

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"sculpt/internal/telemetry"
)

var update = flag.Bool("update", false, "rewrite docs/genes.md from the catalog and the kinds")

func frame(id string, t0 time.Time, i int, interval time.Duration, set map[telemetry.Metric]float64) telemetry.Frame {
	f := telemetry.Frame{Workload: id, Time: t0.Add(time.Duration(i) * time.Second), Interval: interval}
	for m, v := range set {
		f.Values.Set(m, v)
	}
	return f
}

func TestComputeGenesRatesAndAbsence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	frames := []telemetry.Frame{
		frame("w", t0, 0, 0, map[telemetry.Metric]float64{telemetry.RSSBytes: 100 << 20}),
		frame("w", t0, 1, time.Second, map[telemetry.Metric]float64{
			telemetry.CPUUserSec: 0.6, telemetry.CPUSystemSec: 0.2, telemetry.RunTimeSec: 0.8, telemetry.RunDelaySec: 0.4,
			telemetry.CtxVoluntary: 10, telemetry.MinorFaults: 100, telemetry.RSSBytes: 110 << 20,
			telemetry.IOReadOps: 10, telemetry.IOWriteOps: 10, telemetry.IOReadChars: 4096, telemetry.IOWriteChars: 4096,
			telemetry.IOReadBytes: 0, telemetry.IOWriteBytes: 4096, telemetry.Sockets: 0, telemetry.Pipes: 1,
		}),
		frame("w", t0, 2, time.Second, map[telemetry.Metric]float64{
			telemetry.CPUUserSec: 1.0, telemetry.CPUSystemSec: 0.2, telemetry.RunTimeSec: 1.2, telemetry.RunDelaySec: 0.2,
			telemetry.CtxVoluntary: 30, telemetry.MinorFaults: 300, telemetry.RSSBytes: 120 << 20,
			telemetry.IOReadOps: 0, telemetry.IOWriteOps: 0, telemetry.IOReadChars: 0, telemetry.IOWriteChars: 0,
			telemetry.IOReadBytes: 0, telemetry.IOWriteBytes: 0, telemetry.Sockets: 0, telemetry.Pipes: 1,
		}),
	}
	g, _ := ComputeGenes(frames)
	near := func(name string, want float64) {
		t.Helper()
		got, ok := g[name]
		if !ok {
			t.Fatalf("gene %s absent; genes %v", name, g)
		}
		if d := got - want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	near("cpu_util", 1.0)        // (0.8+1.2) cpu-seconds over 2 s
	near("user_frac", 0.8)       // 1.6 / 2.0
	near("runq_delay_frac", 0.3) // 0.6 / 2.0
	near("ctx_vol_rate", 20)
	near("minflt_rate", 200)
	near("rss_bytes", 120<<20)
	near("mem_growth_rate", float64(20<<20)/2)
	near("io_ops_rate", 10)
	near("io_avg_size", 8192.0/20)
	near("io_write_bps", 2048)
	// 20 calls, half the bytes were storage writes: 10 IPC calls over 2 s.
	near("ipc_rate", 5)
	near("comm_peers", 0) // the fd table was scanned (sockets present) and nobody shares its pipe
	for _, absent := range []string{"numa_local_frac", "net_rx_bps", "psi_cpu", "syscall_entropy", "ipc_insn_per_cycle", "llc_miss_ratio", "burstiness", "majflt_rate"} {
		if v, ok := g[absent]; ok {
			t.Errorf("gene %s = %v, want absent: its inputs were not measured", absent, v)
		}
	}
}

func TestComputeGenesNeedsAnInterval(t *testing.T) {
	g, _ := ComputeGenes([]telemetry.Frame{frame("w", time.Unix(0, 0), 0, 0, map[telemetry.Metric]float64{telemetry.CPUUserSec: 5, telemetry.RSSBytes: 1})})
	if _, ok := g["cpu_util"]; ok {
		t.Errorf("cpu_util present from a single frame with no interval: %v", g)
	}
	if g["rss_bytes"] != 1 {
		t.Errorf("rss_bytes = %v, want the gauge 1", g["rss_bytes"])
	}
}

func TestBurstinessNeedsThreeIntervals(t *testing.T) {
	t0 := time.Unix(0, 0)
	var frames []telemetry.Frame
	for i, cpu := range []float64{0.1, 0.9, 0.1, 0.9} {
		frames = append(frames, frame("w", t0, i+1, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: cpu}))
		g, _ := ComputeGenes(frames)
		_, ok := g["burstiness"]
		if want := len(frames) >= 3; ok != want {
			t.Fatalf("after %d intervals burstiness present=%v, want %v", len(frames), ok, want)
		}
	}
	g, _ := ComputeGenes(frames)
	if g["burstiness"] < 0.7 { // mean 0.5, sd 0.4
		t.Errorf("burstiness of an on/off workload = %v, want 0.8", g["burstiness"])
	}
}

func TestHardwareGenesFromCounters(t *testing.T) {
	frames := []telemetry.Frame{frame("w", time.Unix(0, 0), 1, time.Second, map[telemetry.Metric]float64{
		telemetry.PerfCycles: 1000, telemetry.PerfInstructions: 2500, telemetry.PerfLLCLoads: 100, telemetry.PerfLLCMisses: 25,
	})}
	g, _ := ComputeGenes(frames)
	if g["ipc_insn_per_cycle"] != 2.5 || g["llc_miss_ratio"] != 0.25 || g["instructions_rate"] != 2500 {
		t.Errorf("hardware genes %v", g)
	}
}

func TestInstructionsRateOverTheWindow(t *testing.T) {
	t0 := time.Unix(0, 0)
	frames := []telemetry.Frame{
		frame("w", t0, 1, 2*time.Second, map[telemetry.Metric]float64{telemetry.PerfInstructions: 6e9, telemetry.CPUUserSec: 2}),
		frame("w", t0, 2, 3*time.Second, map[telemetry.Metric]float64{telemetry.PerfInstructions: 4e9, telemetry.CPUUserSec: 3}),
	}
	g, _ := ComputeGenes(frames)
	if got, ok := g["instructions_rate"]; !ok || got != 2e9 {
		t.Errorf("instructions_rate = %v (present %v), want 2e9 (10e9 over 5 s)", got, ok)
	}
	noPMU, _ := ComputeGenes([]telemetry.Frame{frame("w", t0, 1, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: 1})})
	if _, ok := noPMU["instructions_rate"]; ok {
		t.Errorf("instructions_rate present without a PMU: %v", noPMU)
	}
}

func TestEnergyGenes(t *testing.T) {
	t0 := time.Unix(0, 0)
	sys := []telemetry.Frame{
		frame(telemetry.SystemID, t0, 1, 5*time.Second, map[telemetry.Metric]float64{telemetry.EnergyPackageJ: 400, telemetry.EnergyDRAMJ: 50}),
		frame(telemetry.SystemID, t0, 2, 5*time.Second, map[telemetry.Metric]float64{telemetry.EnergyPackageJ: 600, telemetry.EnergyDRAMJ: 70}),
	}
	g, _ := ComputeGenes(sys)
	if g["energy_watts"] != 100 || g["energy_dram_watts"] != 12 {
		t.Errorf("energy genes %v, want energy_watts 100, energy_dram_watts 12", g)
	}
	// No dram zone (AMD): the dram gene is absent, not zero.
	amd, _ := ComputeGenes([]telemetry.Frame{frame(telemetry.SystemID, t0, 1, 2*time.Second, map[telemetry.Metric]float64{telemetry.EnergyPackageJ: 90})})
	if _, ok := amd["energy_dram_watts"]; ok || amd["energy_watts"] != 45 {
		t.Errorf("without dram: %v, want energy_watts 45 and no energy_dram_watts", amd)
	}
	// A workload's frames carry no energy: absent.
	w, _ := ComputeGenes([]telemetry.Frame{frame("w", t0, 1, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: 1})})
	if _, ok := w["energy_watts"]; ok {
		t.Errorf("a workload has energy_watts: %v", w)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name  string
		genes Genes
		want  string
	}{
		{"spinner", Genes{"cpu_util": 1.0, "user_frac": 0.99, "ctx_vol_rate": 0.5}, ArchCPUBound},
		{"streamer", Genes{"cpu_util": 1.0, "user_frac": 0.3, "minflt_rate": 200000, "ctx_vol_rate": 1}, ArchMemStreaming},
		{"pipe pair", Genes{"cpu_util": 0.6, "user_frac": 0.2, "ipc_rate": 50000, "comm_peers": 1, "ctx_vol_rate": 50000}, ArchIPCChatty},
		{"writer", Genes{"cpu_util": 0.3, "io_write_bps": 50 << 20, "io_avg_size": 256 << 10}, ArchIOStreaming},
		{"sleeper", Genes{"cpu_util": 0.0001}, ArchIdle},
		{"unmeasured", Genes{}, ""},
	}
	for _, c := range cases {
		got, conf := Classify(c.genes)
		if got != c.want {
			t.Errorf("%s: Classify(%v) = %q, want %q", c.name, c.genes, got, c.want)
		}
		if c.want != "" && (conf <= 0 || conf > 1) {
			t.Errorf("%s: confidence %v outside (0,1]", c.name, conf)
		}
	}
}

func TestProfilerWindowForgetsOldAndGone(t *testing.T) {
	p := NewProfiler(3 * time.Second)
	t0 := time.Unix(0, 0)
	for i := 0; i < 10; i++ {
		p.Observe([]telemetry.Frame{frame("a", t0, i, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: float64(i)})})
	}
	d := p.Profile("a")
	if d == nil || d.Window > 4 || d.Window < 3 {
		t.Fatalf("window = %+v, want 3-4 s of frames", d)
	}
	// Frames 6..9 (or 7..9): cpu_util is their mean, not the whole history's.
	if d.Genes["cpu_util"] < 7 {
		t.Errorf("cpu_util %v: old frames were not dropped", d.Genes["cpu_util"])
	}
	p.Observe([]telemetry.Frame{frame("b", t0, 11, time.Second, nil)})
	if p.Profile("a") != nil {
		t.Errorf("a workload absent from a sweep is still profiled")
	}
}

func TestGenesDocUpToDate(t *testing.T) {
	const path = "../../docs/genes.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	want := s
	for _, sec := range []struct{ name, text string }{{"genes", GenesMarkdown()}, {"kinds", KindsMarkdown()}} {
		begin, end := "<!-- "+sec.name+":begin -->\n", "<!-- "+sec.name+":end -->"
		i, j := strings.Index(want, begin), strings.Index(want, end)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the %q ... %q markers", path, begin, end)
		}
		want = want[:i+len(begin)] + sec.text + want[j:]
	}
	if want == s {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with dna.Catalog or dna.Kinds: run go test ./internal/dna -run TestGenesDocUpToDate -update", path)
}

func TestEBPFGenes(t *testing.T) {
	frames := []telemetry.Frame{frame("w", time.Unix(0, 0), 1, 2*time.Second, map[telemetry.Metric]float64{
		telemetry.EBPFSysFile: 50, telemetry.EBPFSysNet: 0, telemetry.EBPFSysIPC: 50, telemetry.EBPFSysMem: 0,
		telemetry.EBPFSysSched: 0, telemetry.EBPFSysProc: 0, telemetry.EBPFSysOther: 0,
		telemetry.EBPFSockRxBytes: 3000, telemetry.EBPFSockTxBytes: 1000, telemetry.EBPFLoopRxBytes: 1000, telemetry.EBPFLoopTxBytes: 1000,
	})}
	frames[0].PeerBytes = map[string]float64{"other": 4096}
	g, _ := ComputeGenes(frames)
	want := map[string]float64{
		"syscall_entropy": 1, // two classes, half each: one bit
		"sys_file_frac":   0.5, "sys_ipc_frac": 0.5, "sys_net_frac": 0,
		"ipc_rate":         25,   // 50 IPC calls in 2 s
		"net_rx_bps":       1000, // (3000-1000)/2: loopback is not network
		"net_tx_bps":       0,
		"net_loopback_bps": 1000,
		"comm_peers":       1,
	}
	for name, v := range want {
		if got, ok := g[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if pb := PeerBytes(frames); pb["other"] != 4096 {
		t.Errorf("PeerBytes = %v", pb)
	}
	// Without the collector the mix is absent, not zero.
	g, _ = ComputeGenes([]telemetry.Frame{frame("w", time.Unix(0, 0), 1, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: 1})})
	for _, name := range []string{"syscall_entropy", "sys_file_frac", "net_loopback_bps", "comm_peers"} {
		if _, ok := g[name]; ok {
			t.Errorf("%s present without eBPF or an fd scan", name)
		}
	}
}

// reqFrame is a frame whose server answered n requests per latency given
// (seconds), each in its histogram bucket.
func reqFrame(i int, lat map[float64]float64) telemetry.Frame {
	set := map[telemetry.Metric]float64{telemetry.ReqServed: 0, telemetry.ReqLatencySec: 0}
	for b := 0; b < telemetry.ReqLatBuckets; b++ {
		set[telemetry.ReqLatBucket0+telemetry.Metric(b)] = 0
	}
	for s, n := range lat {
		for b := 0; b < telemetry.ReqLatBuckets; b++ {
			if lo, hi := telemetry.ReqLatBucketBounds(b); s >= lo && s < hi {
				set[telemetry.ReqLatBucket0+telemetry.Metric(b)] += n
			}
		}
		set[telemetry.ReqServed] += n
		set[telemetry.ReqLatencySec] += n * s
	}
	return frame("w", time.Unix(0, 0), i, time.Second, set)
}

// TestRequestGenes: the rate and the quantiles come from the whole
// window's histogram (a slow interval shows in p99 even when the newest
// one is fast); an idle server has a rate of 0 and no quantiles; a
// workload that never served has none of the three.
func TestRequestGenes(t *testing.T) {
	frames := []telemetry.Frame{
		reqFrame(1, map[float64]float64{1e-3: 100}),
		reqFrame(2, map[float64]float64{1e-3: 96, 50e-3: 4}),
		reqFrame(3, map[float64]float64{1e-3: 100}),
	}
	g, _ := ComputeGenes(frames)
	if g["req_rate"] != 100 {
		t.Errorf("req_rate = %v, want 100 (300 requests in 3 s)", g["req_rate"])
	}
	if p := g["req_p50_s"]; p < 0.8e-3 || p > 1.25e-3 {
		t.Errorf("req_p50_s = %v, want ~1ms", p)
	}
	if p := g["req_p99_s"]; p < 40e-3 || p > 62.5e-3 {
		t.Errorf("req_p99_s = %v, want ~50ms (4 of 300 requests, over 1%%)", p)
	}
	g, _ = ComputeGenes([]telemetry.Frame{reqFrame(1, nil)})
	if v, ok := g["req_rate"]; !ok || v != 0 {
		t.Errorf("idle server: req_rate = %v (present %v), want 0", v, ok)
	}
	for _, name := range []string{"req_p50_s", "req_p99_s"} {
		if _, ok := g[name]; ok {
			t.Errorf("idle server: %s present without a request", name)
		}
	}
	g, _ = ComputeGenes([]telemetry.Frame{frame("w", time.Unix(0, 0), 1, time.Second, map[telemetry.Metric]float64{telemetry.CPUUserSec: 1})})
	for _, name := range []string{"req_rate", "req_p50_s", "req_p99_s"} {
		if _, ok := g[name]; ok {
			t.Errorf("no server: %s present", name)
		}
	}
}
