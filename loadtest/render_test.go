package loadtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/golden"
)

// fixedReport is a synthetic report with every section.
func fixedReport() Report {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var tl []Sample
	for i := range 8 {
		tl = append(tl, Sample{At: at.Add(time.Duration(i) * time.Second), Elapsed: float64(i + 1), Completed: 5 + i%3, P50: 0.4 + 0.05*float64(i), P99: 1.2 + 0.1*float64(i),
			Pools: map[string]PoolStats{"fast": {Pending: uint64(i), AckPending: 2}, "deep": {Pending: uint64(2 * i), AckPending: 2, OldestAgeS: 1.5}}})
	}
	cpu := map[string]float64{"api": 0.002, "orchestrator": 0.012, "temporal": 0.05, "nats": 0.003, "minio": 0.018, "workers": 0.01, "scanners": 0.02, "total": 0.115, Driver: 0.004}
	run := func(name string, clients int, rate float64, workers int, tp, p99 float64) Run {
		return Run{Name: name, Clients: clients, RatePerSecond: rate, WorkersPerPool: workers, Submitted: 100, Completed: 100, DurationS: 100 / tp, Throughput: tp,
			Fast: Latencies{Count: 100, P50: 0.3, P90: 0.5, P99: 0.8, Max: 1, Mean: 0.35}, Full: Latencies{Count: 100, P50: 0.9, P90: 1.4, P99: p99, Max: p99 + 0.2, Mean: 1},
			FastDerived: 88, CPUPerScan: cpu, HistoryEvents: 41.5, HistorySample: 20, S3Requests: 9.25, Timeline: tl}
	}
	chaos := run("chaos", 300, 0, 1, 7.5, 6)
	full := run("closed-300-full", 300, 0, 1, 8.5, 38)
	full.DeepForced, full.FastDerived = true, 100
	chaos.Chaos, chaos.ChaosEvents = true, []string{"10:00:05 SIGKILL a deep worker", "10:00:06 restart NATS", "10:00:07 pause MinIO for 4s"}
	return Report{
		Command: "loadtest -scans 1000", StartedAt: at, TookS: 900,
		Host:   Host{CPUs: 2, CPUModel: "Test CPU", MemoryMiB: 8000, GoVersion: "go1.26.8", Version: "test"},
		Corpus: CorpusInfo{Seed: 1, Apps: 200, Packages: Latencies{Count: 200, P50: 180, P90: 700, P99: 1300, Max: 1500, Mean: 260}, Kinds: map[string]int{"npm": 140, "pypi": 30, "go": 30}},
		Runs:   []Run{run("closed-300", 300, 0, 1, 9.5, 35), full, run("open-1/s", 0, 1, 1, 1, 1.5), run("open-4/s", 0, 4, 1, 4, 2), run("open-8/s", 0, 8, 1, 7, 9), chaos, run("scale-2", 300, 0, 2, 9.8, 33)},
		Baselines: []Baseline{
			{Name: "scanners-alone", Concurrency: 2, Scans: 200, DurationS: 10, Throughput: 20, Latency: Latencies{Count: 200, P50: 0.08, P99: 0.4}, CPUSeconds: 19},
			{Name: "cli-pipeline", Concurrency: 2, Scans: 200, DurationS: 200, Throughput: 1, Latency: Latencies{Count: 200, P50: 1.9, P99: 3}, CPUSeconds: 366, Command: "gitleaks dir APP && syft scan dir:APP && trivy fs APP"},
		},
		Notes: []string{BaselineAppsNote(200, 200)},
	}
}

func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	r := fixedReport()
	r.Notes = append(r.Notes, Bottleneck(r)...)
	r.Notes = append(r.Notes, FastLatencyNote(r)...)
	r.Notes = append(r.Notes, WorkNote(r)...)
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "report.golden.md"), b.Bytes())
}

func TestRenderSVG(t *testing.T) {
	var b bytes.Buffer
	if err := WriteSVG(&b, fixedReport().Runs[0]); err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, filepath.Join("testdata", "closed-300.golden.svg"), b.Bytes())
	dec := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("the SVG is not XML: %v", err)
		}
	}
	// An empty run still draws.
	if err := WriteSVG(io.Discard, Run{Name: "empty"}); err != nil {
		t.Fatal(err)
	}
}

// TestOpenLoopRowsShowOfferedLoadNotRatios: an open-loop run's throughput
// is the load it was offered, so its row says so and shows no ratio against
// the CLI or the ceiling; closed-loop rows keep theirs.
func TestOpenLoopRowsShowOfferedLoadNotRatios(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, fixedReport()); err != nil {
		t.Fatal(err)
	}
	rows := 0
	for line := range strings.Lines(b.String()) {
		if !strings.HasPrefix(line, "| tollgate ") {
			continue
		}
		rows++
		cells := strings.Split(line, " | ")
		ratios := cells[3] + " " + cells[4]
		if strings.Contains(cells[0], "open-") {
			if ratios != "- -" || !strings.Contains(cells[0], "offered ") {
				t.Errorf("open-loop row shows ratios %q or no offered load: %s", ratios, line)
			}
		} else if !strings.HasSuffix(cells[3], "×") || !strings.HasSuffix(cells[4], "%") {
			t.Errorf("closed-loop row lost its ratios %q: %s", ratios, line)
		}
	}
	if rows != len(fixedReport().Runs) {
		t.Fatalf("%d tollgate rows, want %d", rows, len(fixedReport().Runs))
	}
}

// TestDriverCPUIsMeasuredApartFromTheTotal: the load generator's own CPU is
// reported per run and per scan, and stays out of the fleet's total.
func TestDriverCPUIsMeasuredApartFromTheTotal(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	outs := []outcome{
		{expected: "pass", verdict: "pass", stage: "deep", submitted: at, done: at.Add(time.Second), fast: time.Second / 2, fastDerived: true},
		{expected: "block", verdict: "block", stage: "fast", submitted: at, done: at.Add(time.Second), fast: time.Second},
	}
	cpu := map[string]float64{"api": 1, "workers": 3, Driver: 0.5}
	r := summarize(DriverOptions{Name: "closed-2", Clients: 2}, outs, at, at.Add(2*time.Second), nil, nil, cpu)
	if r.CPUSeconds["total"] != 4 || r.CPUSeconds[Driver] != 0.5 || r.CPUPerScan[Driver] != 0.25 {
		t.Errorf("CPU seconds %v, per scan %v: want total 4 without the driver's 0.5 (0.25 per scan)", r.CPUSeconds, r.CPUPerScan)
	}
	if r.FastDerived != 1 {
		t.Errorf("%d fast latencies derived, want 1 (the scan that went on to the deep stage)", r.FastDerived)
	}
}

// TestFastLatencyNoteSaysWhenFastIsDerived: the notes say which runs'
// fast latencies come from workflow timings, and say nothing when none do.
func TestFastLatencyNoteSaysWhenFastIsDerived(t *testing.T) {
	r := fixedReport()
	notes := FastLatencyNote(r)
	if len(notes) != 1 || !strings.Contains(notes[0], "derived from workflow timings") || !strings.Contains(notes[0], "88 of 100 in closed-300") {
		t.Errorf("notes %q", notes)
	}
	for i := range r.Runs {
		r.Runs[i].FastDerived = 0
	}
	if notes := FastLatencyNote(r); notes != nil {
		t.Errorf("no derived latencies, yet notes %q", notes)
	}
}

// TestBaselineAppsNoteSaysWhenAppSetsDiffer: a quick run's CLI baseline on
// the first apps only is named as such; the default covers every app.
func TestBaselineAppsNoteSaysWhenAppSetsDiffer(t *testing.T) {
	if n := BaselineAppsNote(200, 200); !strings.Contains(n, "same 200 apps") {
		t.Errorf("all apps: %q", n)
	}
	if n := BaselineAppsNote(60, 200); !strings.Contains(n, "only the first 60 of the corpus's 200 apps") || !strings.Contains(n, "different app sets") {
		t.Errorf("first 60: %q", n)
	}
}

// TestCeilingIsTheSandboxedBaseline: the ceiling column and notes use the
// sandboxed scanners-alone baseline when it ran (the fleet's scanners run
// sandboxed), the in-process one otherwise.
func TestCeilingIsTheSandboxedBaseline(t *testing.T) {
	r := fixedReport()
	r.Baselines[0].Name = "scanners-alone-sandboxed"
	r.Baselines = append(r.Baselines, Baseline{Name: "scanners-alone", Concurrency: 2, Scans: 200, Throughput: 40})
	if c, ok := r.ceiling(); !ok || c.Name != "scanners-alone-sandboxed" {
		t.Fatalf("ceiling %q, %v", c.Name, ok)
	}
	var b bytes.Buffer
	if err := WriteMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "| tollgate closed-300 (1 workers/pool) | 100 | 9.50 | 9.50× | 47.5% |") {
		t.Errorf("closed-300 is not measured against the sandboxed ceiling (20 scans/s):\n%s", b.String())
	}
	if notes := WorkNote(r); len(notes) != 1 || !strings.Contains(notes[0], "closed-300-full forces it on every scan, as the baselines run: 8.50 scans/s, 8.50× the CLI pipeline, 42.5% of the scanners-alone ceiling") {
		t.Errorf("work note %q", notes)
	}
}
