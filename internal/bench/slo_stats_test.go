package bench

import (
	"math"
	"testing"
)

func TestAttainment(t *testing.T) {
	for _, tc := range []struct {
		series      []float64
		target      float64
		share       float64
		known       int
		description string
	}{
		{[]float64{1, 2, 3, 4}, 2, 0.5, 4, "half within"},
		{[]float64{1, 0, 3, 0}, 2, 0.5, 2, "unknown intervals left out"},
		{[]float64{2, 2}, 2, 1, 2, "the target itself is within"},
		{[]float64{0, 0}, 2, 0, 0, "none known"},
		{nil, 2, 0, 0, "empty"},
	} {
		s, k := attainment(tc.series, tc.target)
		if s != tc.share || k != tc.known {
			t.Errorf("%s: attainment(%v, %v) = %v, %d; want %v, %d", tc.description, tc.series, tc.target, s, k, tc.share, tc.known)
		}
	}
}

func TestConvergedAfter(t *testing.T) {
	bad, good := 10.0, 1.0
	series := func(n int, v float64) []float64 {
		s := make([]float64, n)
		for i := range s {
			s[i] = v
		}
		return s
	}
	cat := func(ss ...[]float64) []float64 {
		var out []float64
		for _, s := range ss {
			out = append(out, s...)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		series []float64
		want   int
	}{
		{"met from the start", series(20, good), 0},
		{"3 bad intervals, then met", cat(series(3, bad), series(20, good)), 3},
		// One miss in 20 after convergence is 95%: it still counts.
		{"one later miss allowed at 95%", cat(series(3, bad), series(10, good), series(1, bad), series(9, good)), 3},
		{"never met", series(20, bad), -1},
		{"met only in the last 4: too short a tail", cat(series(16, bad), series(4, good)), -1},
		// 1 bad then 20 good is 95% from the start, but convergence starts at a met interval.
		{"starts at a met interval", cat(series(1, bad), series(20, good)), 1},
		{"unknown intervals do not count", cat(series(2, bad), []float64{0, 0}, series(10, good)), 4},
	} {
		if got := convergedAfter(tc.series, 2, 0.95, 5); got != tc.want {
			t.Errorf("%s: convergedAfter = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSpearman(t *testing.T) {
	for _, tc := range []struct {
		name   string
		xs, ys []float64
		want   float64
		ok     bool
	}{
		{"same order", []float64{1, 2, 3, 4}, []float64{10, 20, 30, 40}, 1, true},
		{"reversed", []float64{1, 2, 3, 4}, []float64{4, 3, 2, 1}, -1, true},
		{"monotone but not linear", []float64{1, 2, 3, 4, 5}, []float64{1, 4, 9, 100, 1000}, 1, true},
		// Ranks of xs with a tie: 1, 2.5, 2.5, 4; ys: 1, 2, 3, 4. Pearson of
		// the ranks: sxy = 4.5, sxx = 4.5, syy = 5 -> 4.5/sqrt(22.5).
		{"ties at mean rank", []float64{1, 5, 5, 9}, []float64{1, 2, 3, 4}, 4.5 / math.Sqrt(22.5), true},
		// 1 2 3 4 5 against 2 1 4 3 5: d^2 = 1+1+1+1+0 = 4; 1 - 6*4/(5*24) = 0.8.
		{"two swaps", []float64{1, 2, 3, 4, 5}, []float64{2, 1, 4, 3, 5}, 0.8, true},
		{"all tied", []float64{3, 3, 3}, []float64{1, 2, 3}, 0, false},
		{"too few", []float64{1, 2}, []float64{1, 2}, 0, false},
		{"unequal lengths", []float64{1, 2, 3}, []float64{1, 2}, 0, false},
	} {
		got, ok := spearman(tc.xs, tc.ys)
		if ok != tc.ok || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: spearman = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRanksTies(t *testing.T) {
	got := ranks([]float64{30, 10, 20, 10, 30, 30})
	want := []float64{5, 1.5, 3, 1.5, 5, 5}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("ranks = %v, want %v", got, want)
		}
	}
}

func TestPickOracle(t *testing.T) {
	cands := []oracleCandidate{
		{name: "default", attainment: 0.50, known: 20, throughput: 1.9},
		{name: "idle", attainment: 0.90, known: 20, throughput: 1.6},
		{name: "quota=1", attainment: 0.95, known: 20, throughput: 0.95},
		{name: "quota=1,all-but-one", attainment: 1, known: 20, throughput: 0.9},
		{name: "quota=0.5", attainment: 1, known: 20, throughput: 0.5},
		{name: "few intervals", attainment: 1, known: 3, throughput: 1.8},
	}
	if got := pickOracle(cands, 0.95, 5); got != 2 {
		t.Errorf("pickOracle = %d, want 2 (quota=1: meets 95%% with the most antagonist CPU)", got)
	}
	if got := pickOracle(cands, 0.99, 5); got != 3 {
		t.Errorf("pickOracle at 99%% = %d, want 3", got)
	}
	if got := pickOracle(cands[:2], 0.95, 5); got != -1 {
		t.Errorf("pickOracle with none meeting it = %d, want -1", got)
	}
}

func TestMedianKnown(t *testing.T) {
	if got := MedianKnown([]float64{0, 5, 1, 0, 3}); got != 3 {
		t.Errorf("medianKnown = %v, want 3 (unknown zeros left out)", got)
	}
	if got := MedianKnown([]float64{0, 0}); got != 0 {
		t.Errorf("medianKnown of none known = %v, want 0", got)
	}
}
