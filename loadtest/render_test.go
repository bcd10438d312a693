package loadtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"path/filepath"
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
	cpu := map[string]float64{"api": 0.002, "orchestrator": 0.012, "temporal": 0.05, "nats": 0.003, "minio": 0.018, "workers": 0.03, "total": 0.115}
	run := func(name string, clients int, rate float64, workers int, tp, p99 float64) Run {
		return Run{Name: name, Clients: clients, RatePerSecond: rate, WorkersPerPool: workers, Submitted: 100, Completed: 100, DurationS: 100 / tp, Throughput: tp,
			Fast: Latencies{Count: 100, P50: 0.3, P90: 0.5, P99: 0.8, Max: 1, Mean: 0.35}, Full: Latencies{Count: 100, P50: 0.9, P90: 1.4, P99: p99, Max: p99 + 0.2, Mean: 1},
			CPUPerScan: cpu, Timeline: tl}
	}
	chaos := run("chaos", 300, 0, 1, 7.5, 6)
	chaos.Chaos, chaos.ChaosEvents = true, []string{"10:00:05 SIGKILL a deep worker", "10:00:06 restart NATS", "10:00:07 pause MinIO for 4s"}
	return Report{
		Command: "loadtest -scans 1000", StartedAt: at, TookS: 900,
		Host:   Host{CPUs: 2, CPUModel: "Test CPU", MemoryMiB: 8000, GoVersion: "go1.26.8", Version: "test"},
		Corpus: CorpusInfo{Seed: 1, Apps: 200, Packages: Latencies{Count: 200, P50: 180, P90: 700, P99: 1300, Max: 1500, Mean: 260}, Kinds: map[string]int{"npm": 140, "pypi": 30, "go": 30}},
		Runs:   []Run{run("closed-300", 300, 0, 1, 9.5, 35), run("open-1/s", 0, 1, 1, 1, 1.5), run("open-4/s", 0, 4, 1, 4, 2), run("open-8/s", 0, 8, 1, 7, 9), chaos, run("scale-2", 300, 0, 2, 9.8, 33)},
		Baselines: []Baseline{
			{Name: "scanners-alone", Concurrency: 2, Scans: 200, DurationS: 10, Throughput: 20, Latency: Latencies{Count: 200, P50: 0.08, P99: 0.4}, CPUSeconds: 19},
			{Name: "cli-pipeline", Concurrency: 2, Scans: 60, DurationS: 60, Throughput: 1, Latency: Latencies{Count: 60, P50: 1.9, P99: 3}, CPUSeconds: 110, Command: "gitleaks dir APP && syft scan dir:APP && trivy fs APP"},
		},
		Notes: []string{"A note."},
	}
}

func TestRenderMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, fixedReport()); err != nil {
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
