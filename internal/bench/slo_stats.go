package bench

import (
	"math"
	"slices"
)

// Per-interval figures of the service-level-objective benchmark: a series
// holds one value per interval, 0 where the interval has no value (no reply
// measured, or no server-side signal).

// attainment is the share of the known intervals of series (those > 0) that
// are within target, and how many were known. It is 0, 0 for none known.
func attainment(series []float64, target float64) (share float64, known int) {
	met := 0
	for _, v := range series {
		if v <= 0 {
			continue
		}
		known++
		if v <= target {
			met++
		}
	}
	if known == 0 {
		return 0, 0
	}
	return float64(met) / float64(known), known
}

// convergedAfter is the number of intervals before the series settles: the
// least i such that interval i meets the objective (known and <= target),
// and series[i:] has at least minTail known intervals of which at least
// share meet it. It is -1 if there is no such i (the objective never holds
// often enough).
func convergedAfter(series []float64, target, share float64, minTail int) int {
	for i := range series {
		s, known := attainment(series[i:], target)
		if known < minTail {
			return -1
		}
		if series[i] > 0 && series[i] <= target && s >= share {
			return i
		}
	}
	return -1
}

// MedianKnown is the median of the known (> 0) values of series; 0 if none.
func MedianKnown(series []float64) float64 {
	var k []float64
	for _, v := range series {
		if v > 0 {
			k = append(k, v)
		}
	}
	if len(k) == 0 {
		return 0
	}
	return spreadOf(k).Median
}

// ranks are the ranks (1-based) of xs, ties getting the mean of the ranks
// they span.
func ranks(xs []float64) []float64 {
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case xs[a] < xs[b]:
			return -1
		case xs[a] > xs[b]:
			return 1
		}
		return 0
	})
	r := make([]float64, len(xs))
	for i := 0; i < len(idx); {
		j := i
		for j+1 < len(idx) && xs[idx[j+1]] == xs[idx[i]] {
			j++
		}
		mean := float64(i+j)/2 + 1
		for k := i; k <= j; k++ {
			r[idx[k]] = mean
		}
		i = j + 1
	}
	return r
}

// spearman is Spearman's rank correlation of xs and ys (the Pearson
// correlation of their ranks, ties at mean rank). ok is false with fewer
// than 3 pairs, unequal lengths, or a series whose ranks are all equal.
func spearman(xs, ys []float64) (rho float64, ok bool) {
	if len(xs) != len(ys) || len(xs) < 3 {
		return 0, false
	}
	rx, ry := ranks(xs), ranks(ys)
	var mx, my float64
	for i := range rx {
		mx += rx[i]
		my += ry[i]
	}
	n := float64(len(rx))
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range rx {
		dx, dy := rx[i]-mx, ry[i]-my
		sxy += dx * dy
		sxx += dx * dx
		syy += dy * dy
	}
	if sxx == 0 || syy == 0 {
		return 0, false
	}
	return sxy / math.Sqrt(sxx*syy), true
}

// oracleCandidate is a static arrangement measured in one run.
type oracleCandidate struct {
	name       string
	attainment float64 // share of intervals within the objective
	known      int     // intervals with a value
	throughput float64 // the antagonists' CPU, cores
}

// pickOracle returns the index of the candidate that meets the objective
// (attainment >= share over at least minKnown intervals) with the most
// antagonist throughput, the first of equals; -1 if none meets it.
func pickOracle(cands []oracleCandidate, share float64, minKnown int) int {
	best := -1
	for i, c := range cands {
		if c.known < minKnown || c.attainment < share {
			continue
		}
		if best < 0 || c.throughput > cands[best].throughput {
			best = i
		}
	}
	return best
}
