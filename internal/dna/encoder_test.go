package dna

import (
	"math"
	"math/rand/v2"
	"testing"
)

// randomRows makes a window with some absent features and a padded start.
func randomRows(rng *rand.Rand, s shape, pad int) [][]float64 {
	rows := make([][]float64, s.W)
	for i := pad; i < s.W; i++ {
		x := make([]float64, 2*s.F)
		for j := 0; j < s.F; j++ {
			if rng.Float64() < 0.8 {
				x[j] = rng.NormFloat64()
				x[s.F+j] = 1
			}
		}
		rows[i] = x
	}
	return rows
}

// TestGradientMatchesFiniteDifferences checks every parameter's analytic
// gradient against a central difference on a tiny model.
func TestGradientMatchesFiniteDifferences(t *testing.T) {
	s := shape{F: 3, H: 4, Z: 2, D: 3, W: 4}
	l := newLayout(s)
	rng := rand.New(rand.NewPCG(1, 2))
	p := make([]float64, l.n)
	l.initParams(p, rng)
	for i := range p { // non-trivial biases too
		p[i] += 0.1 * rng.NormFloat64()
	}
	rows := randomRows(rng, s, 1)
	tr := newTrainer(l)
	g := make([]float64, l.n)
	tr.lossGrad(p, rows, g)
	const h = 1e-5
	worst := 0.0
	for i := range p {
		old := p[i]
		p[i] = old + h
		lp := tr.lossGrad(p, rows, nil)
		p[i] = old - h
		lm := tr.lossGrad(p, rows, nil)
		p[i] = old
		num := (lp - lm) / (2 * h)
		den := math.Max(math.Abs(num)+math.Abs(g[i]), 1e-7)
		rel := math.Abs(num-g[i]) / den
		if rel > worst {
			worst = rel
		}
		if rel > 1e-4 {
			t.Errorf("param %d: analytic %.9g, numeric %.9g (relative error %.2g)", i, g[i], num, rel)
		}
	}
	t.Logf("%d parameters, worst relative error %.2g", l.n, worst)
}

// TestEmbedMatchesTrainerForward: inference and training compute the same z.
func TestEmbedMatchesTrainerForward(t *testing.T) {
	s := shape{F: 5, H: 6, Z: 3, D: 4, W: 5}
	l := newLayout(s)
	rng := rand.New(rand.NewPCG(3, 4))
	p := make([]float64, l.n)
	l.initParams(p, rng)
	rows := randomRows(rng, s, 2)
	tr := newTrainer(l)
	tr.lossGrad(p, rows, nil)
	z := make([]float64, s.Z)
	newEncoder(l, p).embed(rows, z)
	for i := range z {
		if math.Abs(z[i]-tr.z[i]) > 1e-12 {
			t.Fatalf("z[%d] = %v by embed, %v by the trainer", i, z[i], tr.z[i])
		}
	}
}

// TestAdamLearnsToReconstruct: a few hundred steps on two windows drive the
// loss down by an order of magnitude.
func TestAdamLearnsToReconstruct(t *testing.T) {
	s := shape{F: 4, H: 8, Z: 4, D: 8, W: 4}
	l := newLayout(s)
	rng := rand.New(rand.NewPCG(5, 6))
	p := make([]float64, l.n)
	l.initParams(p, rng)
	data := [][][]float64{randomRows(rng, s, 0), randomRows(rng, s, 0)}
	tr := newTrainer(l)
	opt := newAdam(l.n, 0.01)
	g := make([]float64, l.n)
	first := tr.lossGrad(p, data[0], nil) + tr.lossGrad(p, data[1], nil)
	for it := 0; it < 400; it++ {
		clear(g)
		for _, d := range data {
			tr.lossGrad(p, d, g)
		}
		opt.step(p, g)
	}
	last := tr.lossGrad(p, data[0], nil) + tr.lossGrad(p, data[1], nil)
	if last > first/10 {
		t.Errorf("loss %v -> %v: training does not learn", first, last)
	}
}

func TestEmbedProjectedMatchesEmbed(t *testing.T) {
	s := shape{F: 5, H: 6, Z: 3, D: 4, W: 5}
	l := newLayout(s)
	rng := rand.New(rand.NewPCG(7, 8))
	p := make([]float64, l.n)
	l.initParams(p, rng)
	rows := randomRows(rng, s, 2)
	e := newEncoder(l, p)
	z1, z2 := make([]float64, s.Z), make([]float64, s.Z)
	e.embed(rows, z1)
	pres := make([][]float64, len(rows))
	for i, r := range rows {
		if r != nil {
			pres[i] = e.project(r)
		}
	}
	e.embedProjected(pres, z2)
	for i := range z1 {
		if math.Abs(z1[i]-z2[i]) > 1e-12 {
			t.Fatalf("z[%d]: %v direct, %v projected", i, z1[i], z2[i])
		}
	}
}
