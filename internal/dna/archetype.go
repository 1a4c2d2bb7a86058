package dna

import "math"

// Archetype names. The first classifier (Classify) is a documented set of
// thresholds over genes; the learned catalog of issue 5 replaces it.
const (
	ArchIdle          = "idle"
	ArchCPUBound      = "cpu-bound-batch"
	ArchMemStreaming  = "memory-streaming"
	ArchIOStreaming   = "io-streaming"
	ArchSmallRandomIO = "small-random-io"
	ArchNetworkHeavy  = "network-heavy"
	ArchIPCChatty     = "ipc-chatty"
	ArchLatencyServer = "latency-critical-server"
	ArchMixed         = "mixed"
)

// ClassifierName says which classifier produced an archetype.
const ClassifierName = "gene-thresholds-v1"

// score is how strongly a workload's genes match one archetype: 0 (no) to 1.
type score struct {
	name string
	s    float64
}

// Classify returns the archetype whose thresholds the genes meet most
// strongly, and a confidence in 0..1 (how far past its threshold the
// deciding gene is, squashed, times the margin over the runner-up). With no
// CPU measurement at all it returns "" and 0.
func Classify(g Genes) (string, float64) {
	cpu, ok := g["cpu_util"]
	if !ok {
		return "", 0
	}
	get := func(name string) float64 { return g[name] } // absent counts as none here
	// sat maps x/threshold onto 0..1: 0.5 at the threshold, towards 1 above.
	sat := func(x, threshold float64) float64 {
		if x <= 0 || threshold <= 0 {
			return 0
		}
		r := x / threshold
		return r / (1 + r)
	}
	ioBytes := get("io_read_bps") + get("io_write_bps")
	netBytes := get("net_rx_bps") + get("net_tx_bps")
	ipc := get("ipc_rate")
	scores := []score{
		{ArchCPUBound, math.Min(sat(cpu, 0.5), sat(get("user_frac"), 0.7)) * (1 - sat(get("ctx_vol_rate"), 200)) * 2},
		{ArchMemStreaming, sat(get("minflt_rate"), 20000)},
		{ArchIOStreaming, sat(ioBytes, 4<<20) * boolf(get("io_avg_size") >= 64<<10 || get("io_avg_size") == 0)},
		{ArchSmallRandomIO, sat(ioBytes, 256<<10) * boolf(get("io_avg_size") > 0 && get("io_avg_size") < 64<<10) * sat(get("io_ops_rate"), 200)},
		{ArchNetworkHeavy, sat(netBytes, 8<<20)},
		{ArchIPCChatty, sat(ipc, 2000) * boolf(get("comm_peers") >= 1)},
		{ArchLatencyServer, sat(get("ctx_vol_rate"), 500) * boolf(get("sockets") >= 1) * (1 - sat(cpu, 1.5)) * boolf(get("comm_peers") >= 1 || netBytes > 0)},
	}
	best, second := score{ArchIdle, 0}, 0.0
	for _, sc := range scores {
		if sc.s > best.s {
			second = best.s
			best = sc
		} else if sc.s > second {
			second = sc.s
		}
	}
	if best.s < 0.5 {
		if cpu < 0.02 && ioBytes < 64<<10 && ipc < 50 {
			return ArchIdle, 1 - sat(cpu, 0.02)
		}
		return ArchMixed, 0.5 - best.s/2
	}
	conf := math.Min(1, best.s) * (1 - second/(best.s+second+1e-9)/2)
	return best.name, conf
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
