package api

import (
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
)

// TestProjectFindsTheSpread: embeddings spread along one direction of a
// 4-D space, with a smaller spread along another, come out with the
// first axis along the large spread, in order, and the variance shares of
// the construction.
func TestProjectFindsTheSpread(t *testing.T) {
	dir1 := []float64{0.5, 0.5, 0.5, 0.5}   // unit length
	dir2 := []float64{0.5, -0.5, 0.5, -0.5} // unit, orthogonal to dir1
	base := []float64{3, -1, 2, 7}
	a := []float64{-3, -1, 1, 3} // along dir1: variance 20/3
	b := []float64{1, -1, -1, 1} // along dir2: variance 4/3, uncorrelated with a
	var ws []dna.DNA
	for i := range a {
		e := make([]float64, 4)
		for j := range e {
			e[j] = base[j] + a[i]*dir1[j] + b[i]*dir2[j]
		}
		ws = append(ws, dna.DNA{ID: string(rune('a' + i)), Name: "w", Embedding: e, Archetype: "cpu-bound"})
	}
	ws = append(ws, dna.DNA{ID: "fresh", Name: "fresh"}) // no embedding yet
	m := project(ws)
	if len(m.Points) != 4 || len(m.Unplaced) != 1 || m.Unplaced[0] != "fresh" {
		t.Fatalf("points %d, unplaced %v: want 4 placed and fresh unplaced", len(m.Points), m.Unplaced)
	}
	const eps = 1e-6
	if math.Abs(m.Explained[0]-20.0/24) > eps || math.Abs(m.Explained[1]-4.0/24) > eps {
		t.Errorf("explained %v, want [%.4f %.4f]", m.Explained, 20.0/24, 4.0/24)
	}
	for i, p := range m.Points {
		// Up to each axis's sign, x is the coordinate along dir1, y along dir2.
		if math.Abs(math.Abs(p.X)-math.Abs(a[i])) > eps || math.Abs(math.Abs(p.Y)-math.Abs(b[i])) > eps {
			t.Errorf("point %s at (%.4f, %.4f), want ±(%v, %v)", p.ID, p.X, p.Y, a[i], b[i])
		}
	}
	if !(m.Points[0].X < m.Points[1].X && m.Points[1].X < m.Points[2].X) && !(m.Points[0].X > m.Points[1].X && m.Points[1].X > m.Points[2].X) {
		t.Errorf("the first axis does not keep the points' order along the spread: %+v", m.Points)
	}
	// One workload, or identical ones: no axes, all at the origin.
	if one := project(ws[:1]); len(one.Points) != 1 || one.Points[0].X != 0 || one.Explained != [2]float64{} {
		t.Errorf("one workload: %+v", one)
	}
	same := []dna.DNA{{ID: "x", Embedding: []float64{1, 2}}, {ID: "y", Embedding: []float64{1, 2}}}
	if m := project(same); m.Points[0].X != 0 || m.Points[1].Y != 0 || m.Explained != [2]float64{} {
		t.Errorf("identical embeddings: %+v", m)
	}
}

// TestHistoryIsBounded: the ring keeps the latest frames of each
// workload, skips an interval published twice and forgets a workload that
// is gone.
func TestHistoryIsBounded(t *testing.T) {
	h := newHistory(3)
	t0 := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		snap := &Snapshot{Time: t0.Add(time.Duration(i) * time.Second), Tick: i,
			Workloads: []dna.DNA{{ID: "a", Genes: dna.Genes{"cpu_util": float64(i), "rss_bytes": 1}}}}
		if i < 2 {
			snap.Workloads = append(snap.Workloads, dna.DNA{ID: "b", Genes: dna.Genes{"cpu_util": 1}})
		}
		h.observe(snap)
		h.observe(snap) // republished after a write
	}
	fs := h.of("a", time.Time{}, map[string]bool{"cpu_util": true})
	if len(fs) != 3 || fs[0].Tick != 2 || fs[2].Tick != 4 || fs[2].Genes["cpu_util"] != 4 || len(fs[2].Genes) != 1 {
		t.Errorf("a's frames: %+v, want ticks 2..4 with cpu_util only", fs)
	}
	if all := h.of("a", time.Time{}, nil); len(all[0].Genes) != 2 {
		t.Errorf("a's frames without a gene filter: %+v, want both genes", all)
	}
	if fs := h.of("a", t0.Add(3*time.Second), nil); len(fs) != 1 || fs[0].Tick != 4 {
		t.Errorf("a's frames since tick 3: %+v, want tick 4 alone", fs)
	}
	if fs := h.of("b", time.Time{}, nil); len(fs) != 0 {
		t.Errorf("b left at tick 2 but has %d frames", len(fs))
	}
}

// TestDashboardIsServed: / and /ui/ serve the embedded page, its script
// and its style, under a policy that lets nothing come from elsewhere;
// every file the page names is served, and the page's script asks only
// for API paths that answer.
func TestDashboardIsServed(t *testing.T) {
	srv, ts := newTestServer(t, nil, nil)
	srv.Publish(fixture())
	type answer struct {
		StatusCode int
		Header     http.Header
	}
	get := func(path string) (answer, string) {
		t.Helper()
		resp, err := ts.Client().Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return answer{resp.StatusCode, resp.Header}, string(b)
	}
	resp, page := get("/")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(page, `id="workloads"`) {
		t.Fatalf("GET /: %d %s\n%s", resp.StatusCode, resp.Header.Get("Content-Type"), page)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("GET /: Content-Security-Policy %q", csp)
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("the page names another origin; it must work offline")
	}
	refs := regexp.MustCompile(`(?:src|href)="(/ui/[^"]+)"`).FindAllStringSubmatch(page, -1)
	if len(refs) < 2 {
		t.Fatalf("the page names %d files under /ui/, want its script and style", len(refs))
	}
	wantType := map[string]string{".js": "text/javascript", ".css": "text/css"}
	for _, r := range refs {
		resp, body := get(r[1])
		if resp.StatusCode != 200 || body == "" {
			t.Errorf("GET %s: %d", r[1], resp.StatusCode)
			continue
		}
		for ext, ct := range wantType {
			if strings.HasSuffix(r[1], ext) && !strings.HasPrefix(resp.Header.Get("Content-Type"), ct) {
				t.Errorf("GET %s: Content-Type %q, want %s", r[1], resp.Header.Get("Content-Type"), ct)
			}
		}
	}
	_, js := get("/ui/app.js")
	paths := regexp.MustCompile(`"(/v1/[a-z]+)`).FindAllStringSubmatch(js, -1)
	if len(paths) < 7 {
		t.Errorf("the script asks for %d API paths, want the reads it draws", len(paths))
	}
	for _, p := range paths {
		path := p[1]
		if path == "/v1/history" {
			path += "?workload=web"
		}
		if resp, body := get(path); resp.StatusCode != 200 {
			t.Errorf("the dashboard asks for %s, which answers %d: %s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := get("/nope"); resp.StatusCode != 404 {
		t.Errorf("GET /nope: %d, want 404 (only / is the page)", resp.StatusCode)
	}
}
