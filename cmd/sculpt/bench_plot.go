package main

import (
	"fmt"
	"image/color"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"sculpt/internal/bench"
	"sculpt/internal/sim"
)

// checkPlotFlag refuses a --plot that is not a .png file.
func checkPlotFlag(file string) error {
	if file != "" && !strings.HasSuffix(file, ".png") {
		return usagef("--plot %s: want a .png file", flagValue(file))
	}
	return nil
}

var policyColors = []color.Color{
	color.RGBA{0, 150, 0, 255},     // oracle
	color.RGBA{220, 0, 0, 255},     // sculpt
	color.RGBA{0, 0, 220, 255},     // rules
	color.RGBA{120, 120, 120, 255}, // static
	color.Black,                    // none
}

// writeEnginePlot draws bench engine's mean reward per scenario as grouped bars,
// one bar per policy (oracle, sculpt, rules, static, none). Simulated results.
func writeEnginePlot(file string, rs []*sim.EngineResult) error {
	if len(rs) == 0 {
		return fmt.Errorf("plot %s: no scenario to draw", file)
	}
	p := plot.New()
	p.Title.Text = "bench engine (SIMULATED): mean reward per scenario and policy"
	p.Y.Label.Text = "mean reward (1 = every objective met, batch as fast as alone)"
	p.Legend.Top = true
	policies := []struct {
		name string
		get  func(*sim.EngineResult) float64
	}{
		{"oracle", func(r *sim.EngineResult) float64 { return r.Oracle }},
		{"sculpt", func(r *sim.EngineResult) float64 { return r.Sculpt }},
		{"rules alone", func(r *sim.EngineResult) float64 { return r.Rules }},
		{"static", func(r *sim.EngineResult) float64 { return r.Static }},
		{"none", func(r *sim.EngineResult) float64 { return r.None }},
	}
	width := vg.Length(max(8, float64(len(rs))*0.6)) * vg.Inch
	// Each scenario's group of bars takes 3/4 of its share of the width.
	w := width * 0.75 / vg.Length(len(rs)*len(policies))
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Scenario
	}
	for i, pol := range policies {
		vals := make(plotter.Values, len(rs))
		for j, r := range rs {
			vals[j] = pol.get(r)
		}
		b, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("plot %s: %s: %w", file, pol.name, err)
		}
		b.Color = policyColors[i]
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(float64(i)-float64(len(policies)-1)/2)
		p.Add(b)
		p.Legend.Add(pol.name, b)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.5, float64(len(rs))-0.5
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	// Room above 1 (the best reward) for the legend.
	p.Y.Max = max(p.Y.Max, 1) * 1.35
	p.Add(plotter.NewGrid())
	if err := p.Save(width, 6*vg.Inch, file); err != nil {
		return fmt.Errorf("plot %s: %w", file, err)
	}
	return nil
}

// writeColocationPlot draws, per service, every run's p99 (log scale) under
// each case of bench colocation, the median as a bar across the runs.
func writeColocationPlot(file string, res *bench.ColocationResult) ([]string, error) {
	var written []string
	for _, s := range res.Services {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s beside stress-ng antagonists: p99 per case (%s)", s.Service, s.Load)
		p.Y.Label.Text = "client p99 (µs), one point per run, line: median"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		var names []string
		var pts, meds plotter.XYs
		for i, c := range s.Cases {
			names = append(names, c.Name)
			for _, r := range c.Runs {
				if r.Err == "" && r.P99Micros > 0 {
					pts = append(pts, plotter.XY{X: float64(i), Y: r.P99Micros})
				}
			}
			if c.P99Micros.Median > 0 {
				meds = append(meds, plotter.XY{X: float64(i), Y: c.P99Micros.Median})
			}
		}
		if len(pts) == 0 {
			return written, fmt.Errorf("plot %s: %s: no run measured a p99", file, s.Service)
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return written, fmt.Errorf("plot %s: %s: %w", file, s.Service, err)
		}
		sc.Shape = draw.CircleGlyph{}
		sc.Radius = vg.Points(3)
		p.Add(sc)
		if len(meds) > 0 {
			m, err := plotter.NewScatter(meds)
			if err != nil {
				return written, fmt.Errorf("plot %s: %s: %w", file, s.Service, err)
			}
			m.Shape = draw.BoxGlyph{}
			m.Color = color.RGBA{220, 0, 0, 255}
			m.Radius = vg.Points(4)
			p.Add(m)
			p.Legend.Add("median", m)
		}
		p.Legend.Add("run", sc)
		p.Legend.Top = true
		p.NominalX(names...)
		p.X.Tick.Label.Rotation = 0.5
		p.X.Tick.Label.XAlign = draw.XRight
		p.Add(plotter.NewGrid())
		out := plotPath(file, s.Service, len(res.Services))
		if err := p.Save(9*vg.Inch, 6*vg.Inch, out); err != nil {
			return written, fmt.Errorf("plot %s: %w", out, err)
		}
		written = append(written, out)
	}
	return written, nil
}
