package main

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// latencyChart writes the distributions of section 1 as cumulative
// distribution functions (log µs across, percentiles up on a nines scale)
// to a PNG at path.
func latencyChart(l *latencyResult, path string) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Put-to-callback latency, %d puts per subscriber (CDF)", l.n)
	p.X.Label.Text = "latency, µs (log scale)"
	p.Y.Label.Text = "percentile (nines scale)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	// Point j of n sits at (j+0.5)/n, so the last one is 1-0.5/n, not 1
	// (infinite on the nines scale); the head room above it holds the legend.
	p.Y.Scale = ninesScale{}
	top := 1 - 0.5/float64(l.n)
	p.Y.Min, p.Y.Max = 0, 1-0.05/float64(l.n)
	var yt []plot.Tick
	for _, t := range []struct {
		v     float64
		label string
	}{{0, "0"}, {.5, "p50"}, {.9, "p90"}, {.99, "p99"}, {.999, "p99.9"}, {.9999, "p99.99"}} {
		if t.v <= top {
			yt = append(yt, plot.Tick{Value: t.v, Label: t.label})
		}
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = 2*vg.Millimeter, -2*vg.Millimeter

	lo, hi := time.Duration(1<<62), time.Duration(0)
	for i, s := range l.subjects {
		if len(s.lat) == 0 {
			return fmt.Errorf("chart: no latencies for %s", s.name)
		}
		pts := make(plotter.XYs, len(s.lat))
		for j, d := range s.lat {
			pts[j].X = max(float64(d)/float64(time.Microsecond), 1) // the log axis needs > 0
			pts[j].Y = (float64(j) + 0.5) / float64(len(s.lat))
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("chart: %s: %w", s.name, err)
		}
		line.Color = plotutil.Color(i)
		line.Dashes = plotutil.Dashes(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s (p50 %s µs, p99 %s µs)", s.name, us(s.lat.q(.5)), us(s.lat.q(.99))), line)
		lo, hi = min(lo, s.lat[0]), max(hi, s.lat.max())
	}
	p.X.Min = max(float64(lo)/float64(time.Microsecond)*0.9, 1)
	p.X.Max = float64(hi) / float64(time.Microsecond) * 1.1
	p.Legend.ThumbnailWidth = 0.4 * vg.Inch
	if err := p.Save(9*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("chart: %w", err)
	}
	return nil
}

// ninesScale spaces the axis by -log10(1-y): 0, p90, p99, p99.9 are
// equally far apart, so the tail of a distribution gets the room.
type ninesScale struct{}

// Normalize implements plot.Normalizer.
func (ninesScale) Normalize(lo, hi, y float64) float64 {
	f := func(v float64) float64 { return -math.Log10(1 - v) }
	return (f(y) - f(lo)) / (f(hi) - f(lo))
}

// ticks125 labels a logarithmic axis at 1, 2 and 5 times each power of
// ten, with minor ticks at the other integers.
type ticks125 struct{}

// Ticks implements plot.Ticker.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(lo)); math.Pow(10, e) <= hi; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			ts = append(ts, t)
		}
	}
	return ts
}
