package telemetry

import (
	"math"
	"testing"
)

// TestReqLatBuckets: every latency falls in the bucket whose bounds hold it
// (the Go mirror of the kernel's req_bucket against ReqLatBucketBounds),
// buckets are contiguous, and each is at most 25% wider than its start.
func TestReqLatBuckets(t *testing.T) {
	for _, ns := range []uint64{0, 1, 2047, 2048, 2559, 2560, 3071, 3072, 4095, 4096, 1e5, 123456, 1e6, 2e6, 1e9, 7e9, 8e9, 1e12} {
		b := reqLatBucket(ns)
		lo, hi := ReqLatBucketBounds(b)
		s := float64(ns) / 1e9
		if s < lo || s >= hi {
			t.Errorf("%d ns: bucket %d [%g, %g) does not hold it", ns, b, lo, hi)
		}
	}
	for b := 1; b < ReqLatBuckets; b++ {
		_, prevHi := ReqLatBucketBounds(b - 1)
		lo, hi := ReqLatBucketBounds(b)
		if lo != prevHi {
			t.Errorf("bucket %d starts at %g, bucket %d ends at %g", b, lo, b-1, prevHi)
		}
		if !math.IsInf(hi, 1) && hi > 1.25*lo+1e-15 {
			t.Errorf("bucket %d [%g, %g) wider than 25%%", b, lo, hi)
		}
	}
	if _, hi := ReqLatBucketBounds(ReqLatBuckets - 1); !math.IsInf(hi, 1) {
		t.Errorf("last bucket ends at %g, want open", hi)
	}
	if MetricInfo[ReqLatBucket0+ReqLatBuckets-1].Name != "request_latency_bucket_88" || int(NumMetrics) != int(ReqLatBucket0)+ReqLatBuckets {
		t.Errorf("bucket metrics: last %q, %d metrics", MetricInfo[NumMetrics-1].Name, NumMetrics)
	}
}

// TestReqLatencyQuantile: quantiles of latencies spread over known values
// come back within the bucket error, and no requests give none.
func TestReqLatencyQuantile(t *testing.T) {
	var v Values
	if _, ok := ReqLatencyQuantile(&v, 0.5); ok {
		t.Fatal("quantile of an absent histogram")
	}
	for b := 0; b < ReqLatBuckets; b++ {
		v.Set(ReqLatBucket0+Metric(b), 0)
	}
	if _, ok := ReqLatencyQuantile(&v, 0.5); ok {
		t.Fatal("quantile of an empty histogram")
	}
	// 1000 requests: 980 at 1..1.98 ms evenly, 20 at 10 ms.
	var truth []float64
	for i := 0; i < 980; i++ {
		truth = append(truth, 1e-3+float64(i)*1e-6)
	}
	for i := 0; i < 20; i++ {
		truth = append(truth, 10e-3)
	}
	for _, s := range truth {
		m := ReqLatBucket0 + Metric(reqLatBucket(uint64(s*1e9)))
		v.Add(m, 1)
	}
	for _, c := range []struct{ q, want float64 }{{0.5, truth[499]}, {0.9, truth[899]}, {0.99, 10e-3}} {
		got, ok := ReqLatencyQuantile(&v, c.q)
		if !ok || math.Abs(got-c.want) > 0.125*c.want {
			t.Errorf("q%.2f = %g (%v), want %g ± 12.5%%", c.q, got, ok, c.want)
		}
	}
}
