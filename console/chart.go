package console

import (
	"fmt"
	"strings"
	"time"
)

// chart is one signal's measured values over time against its threshold,
// drawn as an SVG by the app template (no script, no chart library).
type chart struct {
	Signal, Title  string
	Width, Height  int
	Points         string  // the polyline of the values
	Dots           []dot   // each value, breaches marked
	ThresholdY     float64 // y of the threshold line
	Threshold, Max string  // axis labels
	From, To       string
	Empty          bool
	Summary        string // the chart in words, for screen readers
}

type dot struct {
	X, Y   float64
	Breach bool
	Label  string
}

const chartW, chartH, chartPad = 600, 180, 24

// healthCharts draws a chart per signal the guard evaluates: the error rate
// of each sample, and its p95 latency when the latency rule applies.
func healthCharts(g *guardStatus) []chart {
	var out []chart
	for _, ev := range g.Guard.Current {
		switch ev.Signal {
		case "error_rate":
			out = append(out, drawChart("error_rate", "Error rate", ev.Threshold, g.Guard.Samples,
				func(s sample) (float64, bool) {
					if s.Requests == 0 {
						return 0, false
					}
					return float64(s.Errors) / float64(s.Requests), true
				}, func(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }))
		case "p95_latency":
			out = append(out, drawChart("p95_latency", "p95 latency", ev.Threshold, g.Guard.Samples,
				func(s sample) (float64, bool) { return s.P95.Seconds(), s.P95 > 0 },
				func(f float64) string { return fmt.Sprintf("%.3gs", f) }))
		}
	}
	if len(out) == 0 { // not evaluated yet: the error rate against the rules
		out = append(out, drawChart("error_rate", "Error rate", g.Guard.Rules.ErrorRate, g.Guard.Samples,
			func(s sample) (float64, bool) {
				if s.Requests == 0 {
					return 0, false
				}
				return float64(s.Errors) / float64(s.Requests), true
			}, func(f float64) string { return fmt.Sprintf("%.2f%%", f*100) }))
	}
	return out
}

func drawChart(signal, title string, threshold float64, samples []sample, value func(sample) (float64, bool), label func(float64) string) chart {
	c := chart{Signal: signal, Title: title, Width: chartW, Height: chartH, Threshold: label(threshold)}
	type pt struct {
		at time.Time
		v  float64
	}
	var pts []pt
	top := threshold * 1.25
	for _, s := range samples {
		if v, ok := value(s); ok {
			pts = append(pts, pt{s.At, v})
			top = max(top, v*1.1)
		}
	}
	if top <= 0 {
		top = 1
	}
	c.Max = label(top)
	y := func(v float64) float64 { return chartPad + (1-v/top)*(chartH-2*chartPad) }
	c.ThresholdY = y(threshold)
	if len(pts) == 0 {
		c.Empty, c.Summary = true, title+": no samples yet; threshold "+c.Threshold
		return c
	}
	first, last := pts[0].at, pts[len(pts)-1].at
	span := last.Sub(first)
	var b strings.Builder
	breaches := 0
	for i, p := range pts {
		x := float64(chartPad)
		if span > 0 {
			x += float64(p.at.Sub(first)) / float64(span) * (chartW - 2*chartPad)
		} else if len(pts) > 1 {
			x += float64(i) / float64(len(pts)-1) * (chartW - 2*chartPad)
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y(p.v))
		breach := threshold > 0 && p.v > threshold
		if breach {
			breaches++
		}
		c.Dots = append(c.Dots, dot{X: x, Y: y(p.v), Breach: breach, Label: when(p.at) + ": " + label(p.v)})
	}
	c.Points = strings.TrimSpace(b.String())
	c.From, c.To = when(first), when(last)
	c.Summary = fmt.Sprintf("%s: %d samples from %s to %s, %d over the threshold %s, the last %s",
		title, len(pts), c.From, c.To, breaches, c.Threshold, label(pts[len(pts)-1].v))
	return c
}
