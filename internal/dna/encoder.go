package dna

import (
	"math"
	"math/rand/v2"
)

// The sequence autoencoder (docs/dna-model.md).
//
// Input: a window of W frames, each a row of 2F numbers: F normalised
// feature values (0 where absent) and F presence flags (1 measured, 0
// absent). A GRU with H units reads the rows oldest first; its last state
// goes through a linear layer to the latent z (Z numbers: the embedding).
// An MLP decoder (Z -> D tanh units -> W·F) reconstructs the window's values,
// and the loss is the squared error over present values only (masked MSE).
//
// GRU step (r reset, u update, n candidate; ⊙ elementwise):
//
//	r = σ(Wxr x + Whr h + br)
//	u = σ(Wxu x + Whu h + bu)
//	n = tanh(Wxn x + r ⊙ (W_hn h) + bn)
//	h' = (1-u) ⊙ n + u ⊙ h
//
// Gradients are hand-written (backprop through time) and checked against
// finite differences in encoder_test.go.

// shape is the network's dimensions.
type shape struct {
	F, H, Z, D, W int
}

func (s shape) in() int { return 2 * s.F }

// layout locates each weight block inside one flat parameter vector.
type layout struct {
	shape
	wx, wh, b, wz, bz, wd1, bd1, wd2, bd2 [2]int // [start, end)
	n                                     int
}

func newLayout(s shape) layout {
	l := layout{shape: s}
	off := 0
	take := func(n int) [2]int {
		r := [2]int{off, off + n}
		off += n
		return r
	}
	l.wx = take(3 * s.H * s.in())
	l.wh = take(3 * s.H * s.H)
	l.b = take(3 * s.H)
	l.wz = take(s.Z * s.H)
	l.bz = take(s.Z)
	l.wd1 = take(s.D * s.Z)
	l.bd1 = take(s.D)
	l.wd2 = take(s.W * s.F * s.D)
	l.bd2 = take(s.W * s.F)
	l.n = off
	return l
}

func view(p []float64, r [2]int) []float64 { return p[r[0]:r[1]] }

// initParams fills p with small random weights (Glorot-uniform) from rng;
// biases start at 0 except the update gate's, at 1 (remember by default).
func (l layout) initParams(p []float64, rng *rand.Rand) {
	fill := func(r [2]int, fanIn, fanOut int) {
		a := math.Sqrt(6 / float64(fanIn+fanOut))
		for i := r[0]; i < r[1]; i++ {
			p[i] = (rng.Float64()*2 - 1) * a
		}
	}
	fill(l.wx, l.in(), l.H)
	fill(l.wh, l.H, l.H)
	fill(l.wz, l.H, l.Z)
	fill(l.wd1, l.Z, l.D)
	fill(l.wd2, l.D, l.W*l.F)
	b := view(p, l.b)
	for i := range b {
		b[i] = 0
	}
	for i := l.H; i < 2*l.H; i++ {
		b[i] = 1
	}
	clear(view(p, l.bz))
	clear(view(p, l.bd1))
	clear(view(p, l.bd2))
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// matVecAdd computes out += M v for M with len(v) columns, row-major.
func matVecAdd(out, m, v []float64) {
	c := len(v)
	for i := range out {
		row := m[i*c : i*c+c : i*c+c]
		var s0, s1, s2, s3 float64
		x := v
		for len(row) >= 4 && len(x) >= 4 {
			s0 += row[0] * x[0]
			s1 += row[1] * x[1]
			s2 += row[2] * x[2]
			s3 += row[3] * x[3]
			row, x = row[4:], x[4:]
		}
		for j := range row {
			s0 += row[j] * x[j]
		}
		out[i] += s0 + s1 + s2 + s3
	}
}

// matTVecAdd computes out += Mᵀ v for M with len(out) columns.
func matTVecAdd(out, m, v []float64) {
	c := len(out)
	for i, vi := range v {
		if vi == 0 {
			continue
		}
		row := m[i*c : i*c+c]
		for j := range out {
			out[j] += row[j] * vi
		}
	}
}

// outerAdd computes G += a bᵀ (G row-major with len(b) columns).
func outerAdd(g, a, b []float64) {
	c := len(b)
	for i, ai := range a {
		if ai == 0 {
			continue
		}
		row := g[i*c : i*c+c]
		for j, bj := range b {
			row[j] += ai * bj
		}
	}
}

// encoder holds the scratch space to embed windows; it is not safe for
// concurrent use.
type encoder struct {
	l   layout
	p   []float64
	h   []float64
	pre []float64 // 3H: input projections
	gh  []float64 // 3H: recurrent projections
}

func newEncoder(l layout, p []float64) *encoder {
	return &encoder{l: l, p: p, h: make([]float64, l.H), pre: make([]float64, 3*l.H), gh: make([]float64, 3*l.H)}
}

// project returns a row's input projection b + Wx x (3H), the part of a
// GRU step that depends only on the row; nil (padding) gives b.
func (e *encoder) project(x []float64) []float64 {
	l := e.l
	out := make([]float64, 3*l.H)
	copy(out, view(e.p, l.b))
	if x != nil {
		matVecAdd(out, view(e.p, l.wx), x)
	}
	return out
}

// embedProjected is embed over projected rows (see project); a nil entry
// is padding. Each frame is projected once and reused by the W windows it
// belongs to, so a sweep costs one projection plus W recurrent steps.
func (e *encoder) embedProjected(pres [][]float64, z []float64) {
	l, p := e.l, e.p
	H := l.H
	h := e.h
	clear(h)
	wh, b := view(p, l.wh), view(p, l.b)
	for _, pre := range pres {
		if pre == nil {
			pre = b
		}
		clear(e.gh)
		matVecAdd(e.gh, wh, h)
		for i := 0; i < H; i++ {
			r := sigmoid(pre[i] + e.gh[i])
			u := sigmoid(pre[H+i] + e.gh[H+i])
			n := math.Tanh(pre[2*H+i] + r*e.gh[2*H+i])
			h[i] = (1-u)*n + u*h[i]
		}
	}
	copy(z, view(p, l.bz))
	matVecAdd(z, view(p, l.wz), h)
}

// embed runs the GRU over rows (oldest first, each 2F long; nil rows are
// padding: all absent) and writes the latent into z (len Z).
func (e *encoder) embed(rows [][]float64, z []float64) {
	l, p := e.l, e.p
	H := l.H
	h := e.h
	clear(h)
	wx, wh, b := view(p, l.wx), view(p, l.wh), view(p, l.b)
	for _, x := range rows {
		copy(e.pre, b)
		if x != nil {
			matVecAdd(e.pre, wx, x)
		}
		clear(e.gh)
		matVecAdd(e.gh, wh, h)
		for i := 0; i < H; i++ {
			r := sigmoid(e.pre[i] + e.gh[i])
			u := sigmoid(e.pre[H+i] + e.gh[H+i])
			n := math.Tanh(e.pre[2*H+i] + r*e.gh[2*H+i])
			h[i] = (1-u)*n + u*h[i]
		}
	}
	copy(z, view(p, l.bz))
	matVecAdd(z, view(p, l.wz), h)
}

// trainer computes the loss and gradient of one window; one per goroutine.
type trainer struct {
	l layout
	// per step caches
	hs        [][]float64 // h before each step, and after the last (W+1)
	r, u, n   [][]float64
	ghn       [][]float64 // W_hn h (before r gating)
	pre, gh   []float64
	z, a1, d  []float64
	y         []float64
	dh, dhp   []float64
	dz, dd    []float64
	dar, dau  []float64
	dan, dghn []float64
	dy        []float64
	dpre      []float64
}

func newTrainer(l layout) *trainer {
	H, W := l.H, l.W
	mk := func(n, k int) [][]float64 {
		out := make([][]float64, n)
		for i := range out {
			out[i] = make([]float64, k)
		}
		return out
	}
	return &trainer{
		l: l, hs: mk(W+1, H), r: mk(W, H), u: mk(W, H), n: mk(W, H), ghn: mk(W, H),
		pre: make([]float64, 3*H), gh: make([]float64, 3*H),
		z: make([]float64, l.Z), a1: make([]float64, l.D), d: make([]float64, l.D), y: make([]float64, W*l.F),
		dh: make([]float64, H), dhp: make([]float64, H), dz: make([]float64, l.Z), dd: make([]float64, l.D),
		dar: make([]float64, H), dau: make([]float64, H), dan: make([]float64, H), dghn: make([]float64, H),
		dy: make([]float64, W*l.F), dpre: make([]float64, 3*H),
	}
}

// lossGrad returns the masked squared error of reconstructing rows (len W,
// nil = padding) and, when g is not nil, adds its gradient to g.
func (t *trainer) lossGrad(p []float64, rows [][]float64, g []float64) float64 {
	l := t.l
	H, F, W := l.H, l.F, l.W
	wx, wh, b := view(p, l.wx), view(p, l.wh), view(p, l.b)
	clear(t.hs[0])
	for s := 0; s < W; s++ {
		x := rows[s]
		copy(t.pre, b)
		if x != nil {
			matVecAdd(t.pre, wx, x)
		}
		clear(t.gh)
		hp := t.hs[s]
		matVecAdd(t.gh, wh, hp)
		hn := t.hs[s+1]
		for i := 0; i < H; i++ {
			r := sigmoid(t.pre[i] + t.gh[i])
			u := sigmoid(t.pre[H+i] + t.gh[H+i])
			n := math.Tanh(t.pre[2*H+i] + r*t.gh[2*H+i])
			t.r[s][i], t.u[s][i], t.n[s][i], t.ghn[s][i] = r, u, n, t.gh[2*H+i]
			hn[i] = (1-u)*n + u*hp[i]
		}
	}
	hW := t.hs[W]
	copy(t.z, view(p, l.bz))
	matVecAdd(t.z, view(p, l.wz), hW)
	copy(t.a1, view(p, l.bd1))
	matVecAdd(t.a1, view(p, l.wd1), t.z)
	for i, a := range t.a1 {
		t.d[i] = math.Tanh(a)
	}
	copy(t.y, view(p, l.bd2))
	matVecAdd(t.y, view(p, l.wd2), t.d)
	// masked MSE
	var loss, count float64
	for s := 0; s < W; s++ {
		if rows[s] == nil {
			continue
		}
		for j := 0; j < F; j++ {
			count += rows[s][F+j]
		}
	}
	if count == 0 {
		return 0
	}
	clear(t.dy)
	for s := 0; s < W; s++ {
		x := rows[s]
		if x == nil {
			continue
		}
		for j := 0; j < F; j++ {
			if x[F+j] == 0 {
				continue
			}
			e := t.y[s*F+j] - x[j]
			loss += e * e
			t.dy[s*F+j] = 2 * e / count
		}
	}
	loss /= count
	if g == nil {
		return loss
	}
	// decoder
	outerAdd(view(g, l.wd2), t.dy, t.d)
	addTo(view(g, l.bd2), t.dy)
	clear(t.dd)
	matTVecAdd(t.dd, view(p, l.wd2), t.dy)
	for i := range t.dd {
		t.dd[i] *= 1 - t.d[i]*t.d[i]
	}
	outerAdd(view(g, l.wd1), t.dd, t.z)
	addTo(view(g, l.bd1), t.dd)
	clear(t.dz)
	matTVecAdd(t.dz, view(p, l.wd1), t.dd)
	outerAdd(view(g, l.wz), t.dz, hW)
	addTo(view(g, l.bz), t.dz)
	clear(t.dh)
	matTVecAdd(t.dh, view(p, l.wz), t.dz)
	// GRU, backwards through time
	gwx, gwh, gb := view(g, l.wx), view(g, l.wh), view(g, l.b)
	for s := W - 1; s >= 0; s-- {
		hp := t.hs[s]
		for i := 0; i < H; i++ {
			r, u, n := t.r[s][i], t.u[s][i], t.n[s][i]
			dhn := t.dh[i]
			dn := dhn * (1 - u)
			du := dhn * (hp[i] - n)
			t.dhp[i] = dhn * u
			dan := dn * (1 - n*n)
			dr := dan * t.ghn[s][i]
			t.dghn[i] = dan * r
			t.dar[i] = dr * r * (1 - r)
			t.dau[i] = du * u * (1 - u)
			t.dan[i] = dan
		}
		// dpre = [dar, dau, dan] for Wx and b; recurrent grads [dar, dau, dghn]
		copy(t.dpre[:H], t.dar)
		copy(t.dpre[H:2*H], t.dau)
		copy(t.dpre[2*H:], t.dan)
		if rows[s] != nil {
			outerAdd(gwx, t.dpre, rows[s])
		}
		addTo(gb, t.dpre)
		copy(t.dpre[2*H:], t.dghn)
		outerAdd(gwh, t.dpre, hp)
		matTVecAdd(t.dhp, wh, t.dpre)
		t.dh, t.dhp = t.dhp, t.dh
	}
	return loss
}

func addTo(dst, src []float64) {
	for i, v := range src {
		dst[i] += v
	}
}

// adam is the Adam optimiser (Kingma & Ba) over a flat parameter vector.
type adam struct {
	lr, b1, b2, eps float64
	m, v            []float64
	t               int
}

func newAdam(n int, lr float64) *adam {
	return &adam{lr: lr, b1: 0.9, b2: 0.999, eps: 1e-8, m: make([]float64, n), v: make([]float64, n)}
}

func (a *adam) step(p, g []float64) {
	a.t++
	c1 := 1 - math.Pow(a.b1, float64(a.t))
	c2 := 1 - math.Pow(a.b2, float64(a.t))
	for i, gi := range g {
		a.m[i] = a.b1*a.m[i] + (1-a.b1)*gi
		a.v[i] = a.b2*a.v[i] + (1-a.b2)*gi*gi
		p[i] -= a.lr * (a.m[i] / c1) / (math.Sqrt(a.v[i]/c2) + a.eps)
	}
}
