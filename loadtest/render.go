package loadtest

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// sig formats a number with three significant digits.
func sig(v float64) string {
	switch {
	case v == 0:
		return "0"
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func (r Report) baseline(name string) (Baseline, bool) {
	for _, b := range r.Baselines {
		if b.Name == name {
			return b, true
		}
	}
	return Baseline{}, false
}

// ceiling is the scanners-alone baseline the fleet is measured against:
// the sandboxed one when it ran (the fleet's scanners run sandboxed too),
// else the in-process one.
func (r Report) ceiling() (Baseline, bool) {
	if b, ok := r.baseline("scanners-alone-sandboxed"); ok {
		return b, true
	}
	return r.baseline("scanners-alone")
}

// WriteMarkdown writes the report as Markdown: the comparison with the
// baselines, where the CPU goes, latency against load, and scaling.
func WriteMarkdown(w io.Writer, r Report) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# %s\n\n", cmp.Or(r.Title, "tollgate load test"))
	p("Command: `%s`\n\n", r.Command)
	p("Host: %d CPUs (%s), %d MiB, %s, tollgate %s. Started %s, took %s s.\n\n",
		r.Host.CPUs, cmp.Or(r.Host.CPUModel, "unknown CPU"), r.Host.MemoryMiB, r.Host.GoVersion, cmp.Or(r.Host.Version, "dev"),
		r.StartedAt.Format("2006-01-02 15:04 MST"), sig(r.TookS))
	c := r.Corpus
	kinds := slices.Sorted(func(yield func(string) bool) {
		for k := range c.Kinds {
			if !yield(k) {
				return
			}
		}
	})
	var ks []string
	for _, k := range kinds {
		ks = append(ks, fmt.Sprintf("%s %d", k, c.Kinds[k]))
	}
	p("Corpus: %d apps, seed %d; dependencies per app p50 %s, p90 %s, max %s (mean %s); %s.\n\n",
		c.Apps, c.Seed, sig(c.Packages.P50), sig(c.Packages.P90), sig(c.Packages.Max), sig(c.Packages.Mean), strings.Join(ks, ", "))

	cli, hasCLI := r.baseline("cli-pipeline")
	ceiling, hasCeiling := r.ceiling()
	p("## tollgate against the baselines\n\n")
	p("| run | scans | throughput (scans/s) | × CLI pipeline | of scanners-alone ceiling | full p50 / p99 (s) | fast p50 / p99 (s) | errors | lost | wrong |\n")
	p("|---|---|---|---|---|---|---|---|---|---|\n")
	ratio := func(t float64) (string, string) {
		x, y := "-", "-"
		if hasCLI && cli.Throughput > 0 {
			x = sig(t/cli.Throughput) + "×"
		}
		if hasCeiling && ceiling.Throughput > 0 {
			y = sig(100*t/ceiling.Throughput) + "%"
		}
		return x, y
	}
	for _, run := range r.Runs {
		// An open-loop run's throughput is the load it was offered, not what
		// the fleet can do: no ratio against capacity.
		x, y := ratio(run.Throughput)
		offered := ""
		if run.RatePerSecond > 0 {
			x, y = "-", "-"
			offered = fmt.Sprintf(", offered %s scans/s", sig(run.RatePerSecond))
		}
		if run.DeepForced {
			offered += ", deep stage on every scan"
		}
		if run.Stack != "" {
			offered += ", " + run.Stack + " stack"
		}
		p("| tollgate %s (%d workers/pool%s) | %d | %s | %s | %s | %s / %s | %s / %s | %d | %d | %d |\n",
			run.Name, max(run.WorkersPerPool, 1), offered, run.Completed, sig(run.Throughput), x, y,
			sig(run.Full.P50), sig(run.Full.P99), sig(run.Fast.P50), sig(run.Fast.P99), run.Errors, run.Lost, run.Wrong)
	}
	for _, bl := range r.Baselines {
		x, y := ratio(bl.Throughput)
		p("| %s (%d at once) | %d | %s | %s | %s | %s / %s (per app) | - | %d | - | %d |\n",
			bl.Name, bl.Concurrency, bl.Scans-bl.Errors, sig(bl.Throughput), x, y, sig(bl.Latency.P50), sig(bl.Latency.P99), bl.Errors, bl.Wrong)
	}
	p("\n")
	if hasCLI && cli.Command != "" {
		p("The CLI pipeline runs, per app: `%s`.\n\n", cli.Command)
	}

	p("## Where each scan's CPU goes (CPU seconds per scan), and its Temporal events and MinIO requests\n\n")
	comps := r.components()
	p("| run | %s | total | load generator (not in total) | Temporal history events | MinIO requests |\n|---|%s---|---|---|---|\n",
		strings.Join(comps, " | "), strings.Repeat("---|", len(comps)))
	for _, run := range r.Runs {
		if run.CPUPerScan == nil {
			continue
		}
		var cells []string
		for _, comp := range comps {
			if v, ok := run.CPUPerScan[comp]; ok {
				cells = append(cells, sig(v))
			} else {
				cells = append(cells, "-")
			}
		}
		// "-": not measured (reports from before these were).
		driver, events, requests := "-", "-", "-"
		if v, ok := run.CPUPerScan[Driver]; ok {
			driver = sig(v)
		}
		if run.HistorySample > 0 {
			events = fmt.Sprintf("%s (%d scans)", sig(run.HistoryEvents), run.HistorySample)
		}
		if run.S3Requests > 0 {
			requests = sig(run.S3Requests)
		}
		p("| %s | %s | %s | %s | %s | %s |\n", run.Name, strings.Join(cells, " | "), sig(run.CPUPerScan["total"]), driver, events, requests)
	}
	for _, bl := range r.Baselines {
		if bl.Scans > bl.Errors && bl.CPUSeconds > 0 {
			p("| %s | %s | %s | - | - | - |\n", bl.Name, strings.TrimSuffix(strings.Repeat("- | ", len(comps)), " | "), sig(bl.CPUSeconds/float64(bl.Scans-bl.Errors)))
		}
	}
	p("\n")

	p("## Queues (worst second of each run)\n\n| run | fast: queued / running | fast: oldest task (s) | deep: queued / running | deep: oldest task (s) |\n|---|---|---|---|---|\n")
	for _, run := range r.Runs {
		cells := []string{run.Name}
		for _, pool := range []string{"fast", "deep"} {
			var pending uint64
			var running int
			var oldest float64
			for _, s := range run.Timeline {
				ps := s.Pools[pool]
				pending, running, oldest = max(pending, ps.Pending), max(running, ps.AckPending), max(oldest, ps.OldestAgeS)
			}
			cells = append(cells, fmt.Sprintf("%d / %d", pending, running), sig(oldest))
		}
		p("| %s |\n", strings.Join(cells, " | "))
	}
	p("\n")

	var open []Run
	for _, run := range r.Runs {
		if run.RatePerSecond > 0 {
			open = append(open, run)
		}
	}
	if len(open) > 0 {
		slices.SortFunc(open, func(a, b Run) int { return cmp.Compare(a.RatePerSecond, b.RatePerSecond) })
		p("## Latency against load (open loop)\n\n")
		p("| arrivals (scans/s) | throughput (scans/s) | fast p50 (s) | full p50 (s) | full p99 (s) | lost | wrong |\n|---|---|---|---|---|---|---|\n")
		for _, run := range open {
			p("| %s | %s | %s | %s | %s | %d | %d |\n", sig(run.RatePerSecond), sig(run.Throughput), sig(run.Fast.P50), sig(run.Full.P50), sig(run.Full.P99), run.Lost, run.Wrong)
		}
		p("\n%s\n\n", knee(open))
	}
	var scale []Run
	for _, run := range r.Runs {
		if strings.HasPrefix(run.Name, "scale-") || (run.Clients > 0 && run.WorkersPerPool == 1 && !run.Chaos && !run.DeepForced && run.Stack == "" && strings.HasPrefix(run.Name, "closed-")) {
			scale = append(scale, run)
		}
	}
	if len(scale) > 1 {
		p("## Scaling: workers per pool\n\n| workers per pool | throughput (scans/s) | full p50 (s) | full p99 (s) | workers' and scanners' CPU per scan (s) |\n|---|---|---|---|---|\n")
		for _, run := range scale {
			p("| %d | %s | %s | %s | %s |\n", max(run.WorkersPerPool, 1), sig(run.Throughput), sig(run.Full.P50), sig(run.Full.P99), sig(run.CPUPerScan["workers"]+run.CPUPerScan["scanners"]))
		}
		p("\n")
	}
	for _, run := range r.Runs {
		if len(run.ChaosEvents) > 0 {
			p("## Chaos (%s)\n\n", run.Name)
			for _, ev := range run.ChaosEvents {
				p("- %s\n", ev)
			}
			p("\nCompleted %d of %d, lost %d, wrong %d, errors %d.\n\n", run.Completed, run.Submitted, run.Lost, run.Wrong, run.Errors)
		}
	}
	for _, run := range r.Runs {
		if len(run.Drills) > 0 || run.Evidence != nil {
			writeDrills(p, run)
		}
	}
	if len(r.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// components are the CPU table's columns: every component some run
// measured (postgres only on the production-shaped stack).
func (r Report) components() []string {
	var out []string
	for _, c := range Components {
		for _, run := range r.Runs {
			if _, ok := run.CPUPerScan[c]; ok {
				out = append(out, c)
				break
			}
		}
	}
	if len(out) == 0 {
		return Components
	}
	return out
}

// writeDrills writes a run's drills: what each did, the longest stall and
// the recovery, and the evidence check.
func writeDrills(p func(string, ...any), run Run) {
	p("## Failure drills (%s)\n\n", run.Name)
	p("| drill | from (s) | to (s) | longest stall (s) | recovered after (s) | what was done |\n|---|---|---|---|---|---|\n")
	for _, d := range run.Drills {
		rec := sig(d.RecoveredS)
		switch {
		case d.RecoveredS < 0:
			rec = "not before the next drill"
		case d.RecoveredS == 0:
			rec = "0 (never below half the steady rate)"
		}
		what := strings.Join(d.Actions, "; ")
		if d.Err != "" {
			what = "**failed**: " + what
		}
		p("| %s | %s | %s | %s | %s | %s |\n", d.Name, sig(d.StartS), sig(d.EndS), sig(d.LongestStallS), rec, strings.ReplaceAll(what, "|", "\\|"))
	}
	p("\n")
	for _, l := range DrillSummary(run) {
		p("%s\n", l)
	}
	p("\n")
}

// knee names the first arrival rate past which the system stops keeping up:
// throughput falls more than 10% behind the rate, or full p99 more than
// doubles from the lowest rate's.
func knee(open []Run) string {
	base := open[0].Full.P99
	for _, run := range open {
		if run.Throughput < 0.9*run.RatePerSecond || (base > 0 && run.Full.P99 > 2*base) {
			return fmt.Sprintf("The knee: at %s arrivals/s (throughput %s/s, full p99 %s s against %s s at %s/s).",
				sig(run.RatePerSecond), sig(run.Throughput), sig(run.Full.P99), sig(base), sig(open[0].RatePerSecond))
		}
	}
	return fmt.Sprintf("No knee up to %s arrivals/s: throughput kept up with every rate.", sig(open[len(open)-1].RatePerSecond))
}

// WriteSVG draws a run's timeline: scans completed per second (bars, left
// axis) and the full-verdict p50 and p99 of those scans (lines, right axis),
// and under it the queue depth of each pool. It is hand-written SVG: one
// two-panel chart does not justify a plotting dependency.
func WriteSVG(w io.Writer, run Run) error {
	const width, height, left, right, top = 900.0, 520.0, 60.0, 60.0, 40.0
	const plotH, gap, queueH = 260.0, 60.0, 120.0
	plotW := width - left - right
	tl := run.Timeline
	n := max(len(tl), 1)
	var maxTP, maxLat, maxQ float64
	for _, s := range tl {
		maxTP = max(maxTP, float64(s.Completed))
		maxLat = max(maxLat, s.P99)
		for _, ps := range s.Pools {
			maxQ = max(maxQ, float64(ps.Pending)+float64(ps.AckPending))
		}
	}
	maxTP, maxLat, maxQ = niceCeil(maxTP), niceCeil(maxLat), niceCeil(maxQ)
	x := func(i int) float64 { return left + plotW*float64(i)/float64(n) }
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`+"\n", width, height, width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%.0f" y="22" font-size="14" font-weight="bold">%s: %s scans/s, full p99 %s s</text>`+"\n", left, xmlEscape(run.Name), sig(run.Throughput), sig(run.Full.P99))
	// Throughput bars and latency lines.
	y0 := top + plotH
	barW := max(plotW/float64(n)-1, 1)
	for i, s := range tl {
		h := plotH * float64(s.Completed) / maxTP
		p(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#9ecae1"/>`+"\n", x(i), y0-h, barW, h)
	}
	line := func(val func(Sample) float64, color string) {
		var pts []string
		for i, s := range tl {
			if s.Completed == 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i)+barW/2, y0-plotH*val(s)/maxLat))
		}
		if len(pts) > 0 {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", strings.Join(pts, " "), color)
		}
	}
	// Each drill: a shaded band from its start to its end, and its name.
	for i, d := range run.Drills {
		x0, x1 := x(int(d.StartS)), x(int(d.EndS)+1)
		p(`<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="#fdae6b" fill-opacity="0.35"/>`+"\n", x0, top, max(x1-x0, 2), plotH)
		p(`<text x="%.1f" y="%.0f" font-size="9">%s</text>`+"\n", x0+2, top+12+float64(i%4)*11, xmlEscape(d.Name))
	}
	line(func(s Sample) float64 { return s.P50 }, "#31a354")
	line(func(s Sample) float64 { return s.P99 }, "#de2d26")
	axes(&b, left, top, plotW, plotH, maxTP, "scans completed per second", maxLat, "full-verdict latency (s)")
	p(`<text x="%.0f" y="%.0f" text-anchor="middle">seconds into the run (%d)</text>`+"\n", left+plotW/2, y0+28, len(tl))
	legendY := top - 8
	for i, l := range []struct{ name, color string }{{"completed/s", "#9ecae1"}, {"p50", "#31a354"}, {"p99", "#de2d26"}} {
		lx := left + plotW - 240 + float64(i)*80
		p(`<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s</text>`+"\n", lx, legendY-9, l.color, lx+14, legendY, l.name)
	}
	// Queue depth per pool.
	qTop := y0 + gap
	qy0 := qTop + queueH
	colors := map[string]string{"fast": "#756bb1", "deep": "#e6550d"}
	for _, pool := range []string{"fast", "deep"} {
		var pts []string
		for i, s := range tl {
			ps, ok := s.Pools[pool]
			if !ok {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i)+barW/2, qy0-queueH*(float64(ps.Pending)+float64(ps.AckPending))/maxQ))
		}
		if len(pts) > 0 {
			p(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`+"\n", strings.Join(pts, " "), colors[pool])
		}
	}
	axes(&b, left, qTop, plotW, queueH, maxQ, "tasks queued or running", 0, "")
	for i, pool := range []string{"fast", "deep"} {
		lx := left + plotW - 160 + float64(i)*80
		p(`<rect x="%.0f" y="%.0f" width="10" height="10" fill="%s"/><text x="%.0f" y="%.0f">%s pool</text>`+"\n", lx, qTop-17, colors[pool], lx+14, qTop-8, pool)
	}
	p("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// axes draws a panel's frame, the left axis (0..leftMax) and, when
// rightMax > 0, the right one.
func axes(b *strings.Builder, left, top, w, h, leftMax float64, leftLabel string, rightMax float64, rightLabel string) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p(`<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#444"/>`+"\n", left, top, w, h)
	for i := 0; i <= 4; i++ {
		y := top + h - h*float64(i)/4
		p(`<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, y, left+w, y)
		p(`<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-4, y+4, sig(leftMax*float64(i)/4))
		if rightMax > 0 {
			p(`<text x="%.0f" y="%.1f">%s</text>`+"\n", left+w+4, y+4, sig(rightMax*float64(i)/4))
		}
	}
	p(`<text transform="translate(14,%.0f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", top+h/2, xmlEscape(leftLabel))
	if rightMax > 0 {
		p(`<text transform="translate(%.0f,%.0f) rotate(90)" text-anchor="middle">%s</text>`+"\n", left+w+46, top+h/2, xmlEscape(rightLabel))
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(v float64) float64 {
	if v <= 1 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
