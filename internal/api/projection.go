package api

import (
	"math"
	"time"

	"sculpt/internal/dna"
)

// MapBody is GET /v1/map: the workloads' embeddings projected on their two
// principal components, for the dashboard's map.
type MapBody struct {
	Time time.Time `json:"time"`
	// Explained is the share of the embeddings' variance each axis holds
	// (0..1); zeros when fewer than two workloads have an embedding.
	Explained [2]float64 `json:"explained"`
	Points    []MapPoint `json:"points"`
	// Unplaced lists the workloads without an embedding yet (the encoder
	// needs a window of frames) or of another length than the others.
	Unplaced []string `json:"unplaced"`
}

// MapPoint is one workload on the map.
type MapPoint struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Archetype   string  `json:"archetype"`
	Novel       bool    `json:"novel"`
	PhaseChange bool    `json:"phase_change"`
	X           float64 `json:"x"`
	Y           float64 `json:"y"`
}

// project places the workloads with embeddings on the plane of the first
// two principal components of those embeddings (PCA by power iteration on
// the covariance matrix, which is small: the embedding's length squared).
// Each axis's sign is fixed so that its largest loading is positive, so a
// map does not flip between intervals when the workloads barely move.
func project(ws []dna.DNA) MapBody {
	b := MapBody{Points: []MapPoint{}, Unplaced: []string{}}
	dim := 0
	for i := range ws {
		if n := len(ws[i].Embedding); n > 0 && dim == 0 {
			dim = n
		}
	}
	var rows [][]float64
	for i := range ws {
		d := &ws[i]
		if dim == 0 || len(d.Embedding) != dim {
			b.Unplaced = append(b.Unplaced, d.ID)
			continue
		}
		rows = append(rows, d.Embedding)
		b.Points = append(b.Points, MapPoint{ID: d.ID, Name: d.Name, Archetype: d.Archetype, Novel: d.Novel, PhaseChange: d.PhaseChange})
	}
	if len(rows) < 2 {
		return b
	}
	mean := make([]float64, dim)
	for _, r := range rows {
		for j, v := range r {
			mean[j] += v / float64(len(rows))
		}
	}
	cov := make([][]float64, dim)
	for j := range cov {
		cov[j] = make([]float64, dim)
	}
	for _, r := range rows {
		for j := range dim {
			dj := r[j] - mean[j]
			for k := j; k < dim; k++ {
				cov[j][k] += dj * (r[k] - mean[k])
			}
		}
	}
	trace := 0.0
	for j := range dim {
		for k := j; k < dim; k++ {
			cov[j][k] /= float64(len(rows) - 1)
			cov[k][j] = cov[j][k]
		}
		trace += cov[j][j]
	}
	if trace <= 0 || math.IsNaN(trace) {
		return b // every embedding the same: all at the origin
	}
	var axes [2][]float64
	for c := range axes {
		v, lambda := principal(cov)
		axes[c] = v
		b.Explained[c] = max(0, lambda/trace)
		for j := range dim { // deflate: the next axis is orthogonal
			for k := range dim {
				cov[j][k] -= lambda * v[j] * v[k]
			}
		}
	}
	for i, r := range rows {
		for j := range dim {
			b.Points[i].X += (r[j] - mean[j]) * axes[0][j]
			b.Points[i].Y += (r[j] - mean[j]) * axes[1][j]
		}
	}
	return b
}

// principal returns the dominant eigenvector (unit length, its largest
// component positive) of the symmetric matrix m and its eigenvalue; a
// zero vector when m is zero.
func principal(m [][]float64) ([]float64, float64) {
	n := len(m)
	v := make([]float64, n)
	for j := range v { // not orthogonal to any axis in practice
		v[j] = 1 + float64(j)/float64(n)
	}
	normalize(v)
	w := make([]float64, n)
	lambda := 0.0
	for range 500 {
		for j := range n {
			w[j] = 0
			for k := range n {
				w[j] += m[j][k] * v[k]
			}
		}
		l := normalize(w)
		if l == 0 {
			return make([]float64, n), 0
		}
		delta := 0.0
		for j := range n {
			delta += math.Abs(w[j] - v[j])
		}
		v, w = w, v
		lambda = l
		if delta < 1e-10 {
			break
		}
	}
	big := 0
	for j := range v {
		if math.Abs(v[j]) > math.Abs(v[big]) {
			big = j
		}
	}
	if v[big] < 0 {
		for j := range v {
			v[j] = -v[j]
		}
	}
	return v, lambda
}

// normalize scales v to unit length and returns the length it had.
func normalize(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x * x
	}
	s = math.Sqrt(s)
	if s == 0 {
		return 0
	}
	for j := range v {
		v[j] /= s
	}
	return s
}
