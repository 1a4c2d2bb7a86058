package telemetry

import (
	"fmt"
	"math"
	"time"
)

// Server-side request latency, as the eBPF collector measures it (see
// docs/telemetry.md, "Requests"): per process, the requests it served and a
// histogram of their latency, from a request reaching one of its server
// sockets to its reply leaving. The histogram is a run of counter metrics
// (ReqLatBucket0 ...), so the sampler turns it into per-interval counts per
// workload like any other counter, and a window of frames sums it.

// ReqLatBuckets is the number of latency buckets; keep in step with
// REQ_BUCKETS in bpf/csrc/sculpt.bpf.c.
const ReqLatBuckets = 89

// reqLatMinShift: bucket 0 holds [0, 2^11 ns); then each power of two is
// split into 4 buckets (each at most 25% wider than its lower bound), up to
// the last bucket, which starts at 1.75 × 2^32 ns (~7.5 s) and is open.
const reqLatMinShift = 11

// ReqLatBucketBounds returns bucket b's latency range [lo, hi) in seconds;
// the last bucket's hi is +Inf.
func ReqLatBucketBounds(b int) (lo, hi float64) {
	if b <= 0 {
		return 0, math.Ldexp(1, reqLatMinShift) / 1e9
	}
	oct, sub := (b-1)/4, (b-1)%4
	base := math.Ldexp(1, reqLatMinShift+oct-2) // a quarter octave, ns
	lo = base * float64(4+sub) / 1e9
	hi = base * float64(5+sub) / 1e9
	if b >= ReqLatBuckets-1 {
		hi = math.Inf(1)
	}
	return lo, hi
}

// reqLatBucket returns the bucket of a latency of ns nanoseconds, as the
// kernel side computes it (req_bucket).
func reqLatBucket(ns uint64) int {
	if ns < 1<<reqLatMinShift {
		return 0
	}
	msb := 63
	for ns>>uint(msb) == 0 {
		msb--
	}
	sub := int(ns>>uint(msb-2)) & 3
	b := 1 + (msb-reqLatMinShift)*4 + sub
	return min(b, ReqLatBuckets-1)
}

func init() {
	for b := 0; b < ReqLatBuckets; b++ {
		lo, hi := ReqLatBucketBounds(b)
		rng := fmt.Sprintf("[%v, %v)", time.Duration(lo*1e9), time.Duration(hi*1e9))
		if math.IsInf(hi, 1) {
			rng = fmt.Sprintf("[%v, ∞)", time.Duration(lo*1e9))
		}
		MetricInfo[ReqLatBucket0+Metric(b)] = Info{
			Name:   fmt.Sprintf("request_latency_bucket_%02d", b),
			Kind:   Counter,
			Unit:   "requests",
			Source: "eBPF sock/sk_data_ready to sock/sock_send_length, latency in " + rng,
		}
	}
}

// ReqLatencyQuantile returns the q-quantile (0 < q < 1) of the request
// latencies counted in v's bucket metrics, in seconds, interpolating
// linearly within the bucket it falls in (so within 25% of the truth, and
// in practice much closer; the open last bucket gives its lower bound). It
// reports false when v holds no bucket metrics or they count no request.
func ReqLatencyQuantile(v *Values, q float64) (float64, bool) {
	var counts [ReqLatBuckets]float64
	total := 0.0
	for b := range counts {
		c, ok := v.Get(ReqLatBucket0 + Metric(b))
		if ok && c > 0 {
			counts[b] = c
			total += c
		}
	}
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	cum := 0.0
	for b, c := range counts {
		if c == 0 || cum+c < rank {
			cum += c
			continue
		}
		lo, hi := ReqLatBucketBounds(b)
		if math.IsInf(hi, 1) {
			return lo, true
		}
		return lo + (hi-lo)*(rank-cum)/c, true
	}
	lo, _ := ReqLatBucketBounds(ReqLatBuckets - 1)
	return lo, true
}

// reqHist is one process's cumulative request counters from the kernel.
type reqHist struct {
	Count   uint64
	SumNs   uint64
	Buckets [ReqLatBuckets]uint64
}

// applyReqs sets the request metrics of every process of s that the
// kernel's map holds; the others (no request served since the collector
// attached) keep them absent.
func applyReqs(s *Sample, reqs map[uint32]*reqHist) {
	for _, ps := range s.Procs {
		h := reqs[uint32(ps.Proc.PID)]
		if h == nil {
			continue
		}
		ps.Set(ReqServed, float64(h.Count))
		ps.Set(ReqLatencySec, float64(h.SumNs)/1e9)
		for b, n := range h.Buckets {
			ps.Set(ReqLatBucket0+Metric(b), float64(n))
		}
	}
}
