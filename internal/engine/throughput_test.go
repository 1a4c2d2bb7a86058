package engine

import (
	"math"
	"testing"
	"time"

	"sculpt/internal/dna"
)

func TestBatchThroughputPreference(t *testing.T) {
	cases := []struct {
		what  string
		genes dna.Genes
		value float64
		unit  string
	}{
		{"instructions where the PMU exists", dna.Genes{"instructions_rate": 3e9, "cpu_util": 1.5, "io_read_bps": 1e6}, 3e9, ThroughputInstructions},
		{"CPU cores without a PMU", dna.Genes{"cpu_util": 1.5, "io_write_bps": 1e8}, 1.5, ThroughputCores},
		{"an idle batch job is measured, and zero", dna.Genes{"cpu_util": 0}, 0, ThroughputCores},
		{"zero instructions is still instructions", dna.Genes{"instructions_rate": 0, "cpu_util": 0.2}, 0, ThroughputInstructions},
		{"a broken instructions_rate falls back", dna.Genes{"instructions_rate": math.NaN(), "cpu_util": 0.7}, 0.7, ThroughputCores},
		{"storage alone is not throughput", dna.Genes{"io_read_bps": 1e6}, 0, ""},
		{"nothing measured", dna.Genes{}, 0, ""},
		{"nil genes", nil, 0, ""},
	}
	for _, c := range cases {
		v, u := BatchThroughput(c.genes)
		if v != c.value || u != c.unit {
			t.Errorf("%s: BatchThroughput(%v) = %v %q, want %v %q", c.what, c.genes, v, u, c.value, c.unit)
		}
	}
}

func TestCounterRate(t *testing.T) {
	cases := []struct {
		what      string
		prev, cur float64
		dt        time.Duration
		rate      float64
		ok        bool
	}{
		{"steady", 100, 600, 5 * time.Second, 100, true},
		{"no progress", 42, 42, time.Second, 0, true},
		{"sub-second interval", 0, 30, 500 * time.Millisecond, 60, true},
		{"reset: counts since the restart", 1e6, 250, 5 * time.Second, 50, true},
		{"reset to zero", 1e6, 0, 5 * time.Second, 0, true},
		{"no interval", 1, 2, 0, 0, false},
		{"negative interval", 1, 2, -time.Second, 0, false},
		{"NaN reading", math.NaN(), 2, time.Second, 0, false},
		{"infinite reading", 1, math.Inf(1), time.Second, 0, false},
		{"negative reading is no counter", -5, 10, time.Second, 0, false},
	}
	for _, c := range cases {
		r, ok := CounterRate(c.prev, c.cur, c.dt)
		if ok != c.ok || math.Abs(r-c.rate) > 1e-12 {
			t.Errorf("%s: CounterRate(%v, %v, %v) = %v, %v, want %v, %v", c.what, c.prev, c.cur, c.dt, r, ok, c.rate, c.ok)
		}
	}
}
