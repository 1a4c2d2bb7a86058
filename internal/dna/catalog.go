package dna

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// ArchetypeCentroid is one prototype of a labelled kind in the catalog: the
// mean of a cluster of its training embeddings and their spread. A kind may
// have several (a program that alternates between behaviours).
type ArchetypeCentroid struct {
	Name     string    `json:"name"` // the label: the program it resembles
	Kind     string    `json:"kind"` // its behavioural kind (Kinds)
	Centroid []float64 `json:"centroid"`
	// Spread is the root-mean-square distance of the kind's training
	// embeddings to the centroid, floored (see BuildArchetypes).
	Spread float64 `json:"spread"`
	Count  int     `json:"count"`
}

// ArchetypeCatalog holds the labelled kinds and the novelty calibration.
type ArchetypeCatalog struct {
	Archetypes []ArchetypeCentroid `json:"archetypes"`
	// NoveltyThreshold is the distance-to-nearest-centroid, in units of that
	// centroid's spread, that NoveltyQuantile of the training embeddings stay
	// under. Match reports novelty divided by it: 1 is the boundary.
	NoveltyThreshold float64 `json:"novelty_threshold"`
	NoveltyQuantile  float64 `json:"novelty_quantile"`
}

// Match is the catalog's verdict on one embedding.
type Match struct {
	Archetype  string  // the nearest centroid's label: the program it resembles
	Kind       string  // the nearest centroid's kind
	Distance   float64 // to the nearest centroid
	Confidence float64 // 0..1 from the margin over the nearest other label
	// KindConfidence is the same margin over the nearest centroid of
	// another kind: two programs of one kind (stress-vm, sysbench-memory)
	// may be hard to tell apart while their kind is certain.
	KindConfidence float64
	Novelty        float64 // (distance / spread) / threshold: >= 1 is novel
	Novel          bool
}

// BuildArchetypes computes a catalog from labelled vectors (kinds gives
// each label's kind, see ResolveKinds): up to
// prototypes clusters per label (k-means, deterministic; one per 25
// vectors at most), each with its centroid and spread, then the novelty
// threshold as the quantile q (e.g. 0.99) of every training vector's
// distance to its nearest centroid in units of that centroid's spread. A
// spread is floored at a quarter of the median spread, so one very steady
// kind (an idle daemon) does not call every small wobble novel.
func BuildArchetypes(vecs [][]float64, labels []string, kinds map[string]string, q float64, prototypes int) (ArchetypeCatalog, error) {
	if len(vecs) == 0 || len(vecs) != len(labels) {
		return ArchetypeCatalog{}, fmt.Errorf("build archetypes: %d vectors, %d labels", len(vecs), len(labels))
	}
	dim := len(vecs[0])
	byLabel := map[string][]int{}
	for i, l := range labels {
		if l == "" {
			return ArchetypeCatalog{}, fmt.Errorf("build archetypes: vector %d has no label", i)
		}
		if !IsKind(kinds[l]) {
			return ArchetypeCatalog{}, fmt.Errorf("build archetypes: label %q has kind %q, not one of %v", l, kinds[l], KindNames())
		}
		byLabel[l] = append(byLabel[l], i)
	}
	names := make([]string, 0, len(byLabel))
	for l := range byLabel {
		names = append(names, l)
	}
	sort.Strings(names)
	c := ArchetypeCatalog{NoveltyQuantile: q}
	for _, name := range names {
		idx := byLabel[name]
		k := max(1, min(prototypes, len(idx)/25))
		for _, cl := range kmeans(vecs, idx, k, dim) {
			cen := make([]float64, dim)
			for _, i := range cl {
				addTo(cen, vecs[i])
			}
			for j := range cen {
				cen[j] /= float64(len(cl))
			}
			var ss float64
			for _, i := range cl {
				d := dist(cen, vecs[i])
				ss += d * d
			}
			c.Archetypes = append(c.Archetypes, ArchetypeCentroid{Name: name, Kind: kinds[name], Centroid: cen, Spread: math.Sqrt(ss / float64(len(cl))), Count: len(cl)})
		}
	}
	spreads := make([]float64, len(c.Archetypes))
	for i, a := range c.Archetypes {
		spreads[i] = a.Spread
	}
	floor := math.Max(quantile(spreads, 0.5)/4, 1e-6)
	for i := range c.Archetypes {
		c.Archetypes[i].Spread = math.Max(c.Archetypes[i].Spread, floor)
	}
	scores := make([]float64, len(vecs))
	c.NoveltyThreshold = 1
	for i, v := range vecs {
		scores[i] = c.Match(v).Novelty
	}
	c.NoveltyThreshold = math.Max(quantile(scores, q), 1e-9)
	return c, nil
}

// Match returns the nearest archetype of v, a confidence from the margin
// between the nearest centroid and the nearest centroid of another label
// ((d2-d1)/(d2+d1), halved when v is novel), the same margin over the
// nearest centroid of another kind, and its novelty.
func (c *ArchetypeCatalog) Match(v []float64) Match {
	if len(c.Archetypes) == 0 {
		return Match{}
	}
	// Squared distances; one square root each for the two that count.
	best, d1 := -1, math.Inf(1)
	var ds [64]float64
	dd := ds[:0]
	for i := range c.Archetypes {
		d := dist2(c.Archetypes[i].Centroid, v)
		dd = append(dd, d)
		if d < d1 {
			best, d1 = i, d
		}
	}
	a := &c.Archetypes[best]
	d2, dk := math.Inf(1), math.Inf(1)
	for i, d := range dd {
		if c.Archetypes[i].Name != a.Name && d < d2 {
			d2 = d
		}
		if c.Archetypes[i].Kind != a.Kind && d < dk {
			dk = d
		}
	}
	d1 = math.Sqrt(d1)
	m := Match{Archetype: a.Name, Kind: a.Kind, Distance: d1}
	m.Novelty = d1 / a.Spread / c.NoveltyThreshold
	m.Novel = m.Novelty >= 1
	margin := func(d2 float64) float64 {
		var conf float64
		switch {
		case math.IsInf(d2, 1):
			conf = 1 / (1 + m.Novelty)
		case d1+d2 > 0:
			conf = (d2 - d1) / (d2 + d1)
		}
		if m.Novel {
			conf /= 2
		}
		return conf
	}
	m.Confidence = margin(math.Sqrt(d2))
	m.KindConfidence = margin(math.Sqrt(dk))
	return m
}

// Names returns the distinct archetype names in catalog order.
func (c *ArchetypeCatalog) Names() []string {
	var out []string
	for _, a := range c.Archetypes {
		if len(out) == 0 || out[len(out)-1] != a.Name {
			out = append(out, a.Name)
		}
	}
	return out
}

// KindsByLabel returns the kind of every label in the catalog.
func (c *ArchetypeCatalog) KindsByLabel() map[string]string {
	out := make(map[string]string, len(c.Archetypes))
	for _, a := range c.Archetypes {
		out[a.Name] = a.Kind
	}
	return out
}

// kmeans splits the vectors vecs[idx] into k clusters (Lloyd's algorithm,
// farthest-point initialisation from the vector nearest the mean, so the
// result is deterministic) and returns the members of each non-empty one.
func kmeans(vecs [][]float64, idx []int, k, dim int) [][]int {
	if k <= 1 || len(idx) <= k {
		return [][]int{idx}
	}
	mean := make([]float64, dim)
	for _, i := range idx {
		addTo(mean, vecs[i])
	}
	for j := range mean {
		mean[j] /= float64(len(idx))
	}
	first, bd := idx[0], math.Inf(1)
	for _, i := range idx {
		if d := dist(mean, vecs[i]); d < bd {
			first, bd = i, d
		}
	}
	cents := [][]float64{slices.Clone(vecs[first])}
	for len(cents) < k {
		far, fd := -1, -1.0
		for _, i := range idx {
			nd := math.Inf(1)
			for _, c := range cents {
				nd = math.Min(nd, dist(c, vecs[i]))
			}
			if nd > fd {
				far, fd = i, nd
			}
		}
		cents = append(cents, slices.Clone(vecs[far]))
	}
	assign := make([]int, len(idx))
	for it := 0; it < 20; it++ {
		changed := false
		for n, i := range idx {
			best, bd := 0, math.Inf(1)
			for c := range cents {
				if d := dist(cents[c], vecs[i]); d < bd {
					best, bd = c, d
				}
			}
			if assign[n] != best || it == 0 {
				changed = changed || assign[n] != best
				assign[n] = best
			}
		}
		counts := make([]int, k)
		for c := range cents {
			clear(cents[c])
		}
		for n, i := range idx {
			addTo(cents[assign[n]], vecs[i])
			counts[assign[n]]++
		}
		for c := range cents {
			for j := range cents[c] {
				cents[c][j] /= math.Max(1, float64(counts[c]))
			}
		}
		if !changed && it > 0 {
			break
		}
	}
	out := make([][]int, k)
	for n, i := range idx {
		out[assign[n]] = append(out[assign[n]], i)
	}
	var nonEmpty [][]int
	for _, cl := range out {
		if len(cl) > 0 {
			nonEmpty = append(nonEmpty, cl)
		}
	}
	return nonEmpty
}

func dist2(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return s
}

func dist(a, b []float64) float64 {
	var s float64
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(s)
}

// quantile returns the q-quantile of xs (nearest rank); xs is not modified.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(len(s)-1, i))]
}
