package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sculpt/internal/bench"
)

// decodePNG fails the test unless file is a PNG image at least w x h pixels.
func decodePNG(t *testing.T, file string, w, h int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("plot: %v", err)
	}
	defer func() { _ = f.Close() }()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("plot %s: %v", file, err)
	}
	if b := img.Bounds(); b.Dx() < w || b.Dy() < h {
		t.Errorf("plot %s: %dx%d pixels, want at least %dx%d", file, b.Dx(), b.Dy(), w, h)
	}
}

func TestBenchEnginePlot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "engine.png")
	code, out, errOut := runCLI(t, "bench", "engine", "--seeds", "1-2", "--steps", "20", "--json", "--plot", file)
	if code != 0 {
		t.Fatalf("bench engine --plot: exit %d, stderr %s", code, errOut)
	}
	if !strings.Contains(errOut, "plot: "+file) {
		t.Errorf("stderr %q does not name the plot", errOut)
	}
	if strings.Contains(out, "plot") || strings.Count(out, "\n") != 3 {
		t.Errorf("--json output is not 2 scenarios and a summary:\n%s", out)
	}
	decodePNG(t, file, 500, 300)

	code, _, errOut = runCLI(t, "bench", "engine", "--seeds", "1-1", "--plot", "x.svg")
	if code != 2 || !strings.Contains(errOut, "--plot x.svg: want a .png") {
		t.Errorf("--plot x.svg: exit %d, stderr %q; want exit 2 naming the flag", code, errOut)
	}
}

func TestWriteColocationPlot(t *testing.T) {
	svc := func(name string) bench.ColocationService {
		s := bench.ColocationService{Service: name, Load: "open loop"}
		for i, c := range []string{"alone", "default", "static:idle", "sculpt"} {
			cs := bench.ColocationCase{Name: c, P99Micros: bench.Spread{Median: float64(100 * (i + 1)), N: 3}}
			for r := range 3 {
				cs.Runs = append(cs.Runs, bench.ColocationRun{Run: r, P99Micros: float64(100*(i+1) + 10*r)})
			}
			s.Cases = append(s.Cases, cs)
		}
		return s
	}
	dir := t.TempDir()
	res := &bench.ColocationResult{Runs: 3, Services: []bench.ColocationService{svc("memcached"), svc("nginx")}}
	files, err := writeColocationPlot(filepath.Join(dir, "c.png"), res)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "c-memcached.png"), filepath.Join(dir, "c-nginx.png")}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Fatalf("wrote %v, want %v", files, want)
	}
	for _, f := range files {
		decodePNG(t, f, 500, 300)
	}

	// A service whose every run failed has nothing to draw: an error, not an empty plot.
	bad := svc("memcached")
	for i := range bad.Cases {
		for j := range bad.Cases[i].Runs {
			bad.Cases[i].Runs[j].Err = "client failed"
		}
	}
	if _, err := writeColocationPlot(filepath.Join(dir, "bad.png"), &bench.ColocationResult{Services: []bench.ColocationService{bad}}); err == nil || !strings.Contains(err.Error(), "no run measured") {
		t.Errorf("every run failed: err %v, want one saying no run measured a p99", err)
	}
}
