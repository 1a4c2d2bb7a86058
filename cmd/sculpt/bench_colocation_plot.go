package main

import (
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"sculpt/internal/bench"
)

// plotPath is where the plot of service goes: file itself for one service,
// else file with "-<service>" before its extension.
func plotPath(file, service string, services int) string {
	if services == 1 {
		return file
	}
	ext := filepath.Ext(file)
	return strings.TrimSuffix(file, ext) + "-" + service + ext
}

// sloSeries is one group of points of the frontier plot.
type sloSeries struct {
	label string
	color color.Color
	shape draw.GlyphDrawer
	match func(m bench.SLOMeasurement) bool
}

// writeSLOPlot draws, per service, every measurement as a point: the
// antagonists' CPU (x) against the service's server-side p99 (y, the median
// of the measured intervals, log scale), with the objectives as dashed lines.
func writeSLOPlot(file string, res *bench.SLOResult) ([]string, error) {
	var written []string
	for _, s := range res.Services {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s beside %s: p99 against antagonist throughput", s.Service, antagonistKinds(res))
		p.X.Label.Text = "antagonists' CPU (cores, cpuacct), one point per case and run"
		p.Y.Label.Text = "server-side p99 (µs, eBPF, median of 1 s intervals)"
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		var factors []float64
		for _, f := range s.Factors {
			factors = append(factors, f.Factor)
		}
		series := []sloSeries{
			{"alone", color.RGBA{0, 150, 0, 255}, draw.PyramidGlyph{}, func(m bench.SLOMeasurement) bool { return m.Case == bench.SLOCaseAlone }},
			{"Linux default", color.Black, draw.BoxGlyph{}, func(m bench.SLOMeasurement) bool { return m.Case == bench.CaseDefault }},
			{"static grid (class, quota, CPUs)", color.RGBA{120, 120, 120, 255}, draw.CircleGlyph{}, func(m bench.SLOMeasurement) bool {
				return strings.HasPrefix(m.Case, "class=")
			}},
			{"rules alone", color.RGBA{0, 0, 220, 255}, draw.TriangleGlyph{}, func(m bench.SLOMeasurement) bool { return m.Case == bench.SLOCaseRules }},
		}
		agentColors := []color.Color{color.RGBA{220, 0, 0, 255}, color.RGBA{230, 130, 0, 255}, color.RGBA{160, 0, 160, 255}}
		for i, f := range factors {
			for _, c := range []string{bench.SLOCaseAgentCold, bench.SLOCaseAgentWarm} {
				shape := draw.GlyphDrawer(draw.CrossGlyph{})
				if c == bench.SLOCaseAgentWarm {
					shape = draw.PlusGlyph{}
				}
				series = append(series, sloSeries{fmt.Sprintf("%s, p99 <= %gx alone", c, f), agentColors[i%len(agentColors)], shape,
					func(m bench.SLOMeasurement) bool { return m.Case == c && m.Factor == f }})
			}
		}
		maxX, minY, maxY := 0.0, math.Inf(1), 0.0
		for _, se := range series {
			var xys plotter.XYs
			for _, m := range s.Measurements {
				if m.Err != "" || !se.match(m) {
					continue
				}
				y := bench.MedianKnown(m.ServerP99Micros)
				if y <= 0 {
					continue
				}
				xys = append(xys, plotter.XY{X: m.AntagonistCPU, Y: y})
				maxX = math.Max(maxX, m.AntagonistCPU)
				minY, maxY = math.Min(minY, y), math.Max(maxY, y)
			}
			if len(xys) == 0 {
				continue
			}
			sc, err := plotter.NewScatter(xys)
			if err != nil {
				return written, fmt.Errorf("plot %s: %w", s.Service, err)
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: se.color, Radius: vg.Points(3.5), Shape: se.shape}
			p.Add(sc)
			p.Legend.Add(se.label, sc)
		}
		for i, f := range s.Factors {
			if f.TargetServerMicros.N == 0 {
				continue
			}
			l, err := plotter.NewLine(plotter.XYs{{X: 0, Y: f.TargetServerMicros.Median}, {X: math.Max(maxX, 0.1), Y: f.TargetServerMicros.Median}})
			if err != nil {
				return written, fmt.Errorf("plot %s: %w", s.Service, err)
			}
			l.Color = agentColors[i%len(agentColors)]
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(l)
			p.Legend.Add(fmt.Sprintf("objective p99 <= %gx alone (median over runs)", f.Factor), l)
		}
		if maxY > 0 {
			// Room above the points for the legend (log scale: a factor).
			p.Y.Min, p.Y.Max = minY/1.5, maxY*8
		}
		p.Add(plotter.NewGrid())
		out := plotPath(file, s.Service, len(res.Services))
		if err := p.Save(9*vg.Inch, 6*vg.Inch, out); err != nil {
			return written, fmt.Errorf("plot %s: %w", out, err)
		}
		written = append(written, out)
	}
	return written, nil
}

func antagonistKinds(res *bench.SLOResult) string {
	var ks []string
	for k := range res.Antagonists {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return "stress-ng " + strings.Join(ks, ", ")
}
