package loadtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/testbin"
	"github.com/tollgate/tollgate/loadtest/corpus"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/vulndb"
)

// TestMain lets the fleet run this test binary as its NATS server, as the
// loadtest command does with itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == NATSClusterNodeCommand {
		if err := stack.NATSServerMain(os.Args[2:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if len(os.Args) > 1 && os.Args[1] == "nats-server" {
		if err := natsServerMain(os.Args[2:]); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if builtBin != "" {
		os.RemoveAll(filepath.Dir(builtBin))
	}
	os.Exit(code)
}

// TestSmoke is the load test in small: 30 scans from 20 clients through the
// real fleet (separate processes of the binary, Temporal, NATS, MinIO). No
// scan may be lost and every verdict must be the expected one. It checks no
// timing.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a fleet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	fleet, bin := startTestFleet(ctx, t)
	_ = bin
	jobs := smokeJobs(t)
	pools, err := newPoolSampler(fleet.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pools.Close()
	seq := new(int64)
	run, err := Drive(ctx, DriverOptions{Name: "smoke", URL: fleet.URL, Token: fleet.Token, Jobs: jobs, Seq: seq, Clients: 20, Scans: 30, Warmup: 4,
		Pools: pools.sample, CPU: fleet.CPU, S3Requests: fleet.S3Requests, HistoryEvents: fleet.HistoryEvents})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("smoke: %d scans in %.1fs (%.2f/s), full p50 %.2fs p99 %.2fs, fast p50 %.2fs; CPU per scan %v; per scan %.1f history events, %.1f MinIO requests",
		run.Completed, run.DurationS, run.Throughput, run.Full.P50, run.Full.P99, run.Fast.P50, run.CPUPerScan, run.HistoryEvents, run.S3Requests)
	if run.Completed != 30 || run.Lost != 0 || run.Errors != 0 || run.Wrong != 0 {
		t.Fatalf("completed %d of 30, lost %d, errors %d %v, wrong %d %v\n%s",
			run.Completed, run.Lost, run.Errors, run.ErrorExamples, run.Wrong, run.WrongApps, fleet.Output())
	}
	if run.CPUSeconds["workers"] <= 0 || run.CPUSeconds["temporal"] <= 0 || run.CPUSeconds[Driver] <= 0 || len(run.Timeline) == 0 {
		t.Errorf("CPU %v, %d timeline samples: the run was not measured", run.CPUSeconds, len(run.Timeline))
	}
	if run.S3Requests <= 0 || run.HistoryEvents <= 0 || run.HistorySample != min(historySample, run.Completed) {
		t.Errorf("%g MinIO requests, %g history events (%d scans) per scan: not measured; %v", run.S3Requests, run.HistoryEvents, run.HistorySample, run.ErrorExamples)
	}

	// The forced-deep run: a second API whose scans all reach the deep
	// stage, the fast-blocked ones included, with the same verdicts.
	url, err := fleet.StartFullAPI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	full, err := Drive(ctx, DriverOptions{Name: "smoke-full", URL: url, Token: fleet.Token, Jobs: jobs, Seq: seq, Clients: 4, Scans: len(jobs), CPU: fleet.CPU})
	if err != nil {
		t.Fatal(err)
	}
	if full.Completed != len(jobs) || full.Lost != 0 || full.Errors != 0 || full.Wrong != 0 || full.FastDerived != full.Completed {
		t.Fatalf("forced-deep run: completed %d of %d, lost %d, errors %d %v, wrong %d %v, %d reached the deep stage\n%s",
			full.Completed, len(jobs), full.Lost, full.Errors, full.ErrorExamples, full.Wrong, full.WrongApps, full.FastDerived, fleet.Output())
	}
}

// smokeJobs are generated apps, one of each kind (ecosystem and expected
// verdict): the smoke test checks the corpus's expectations against the real
// scanners too.
func smokeJobs(t *testing.T) []Job {
	root := t.TempDir()
	m, err := corpus.Generate(context.Background(), root, corpus.Options{Seed: 11, Apps: 80})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var jobs []Job
	for _, a := range m.Apps {
		kind := a.Ecosystem + " " + a.Expected + " " + a.Vuln
		if seen[kind] {
			continue
		}
		seen[kind] = true
		var buf bytes.Buffer
		if err := archive.Pack(context.Background(), filepath.Join(root, a.Dir), &buf); err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, Job{App: a.Name, Archive: buf.Bytes(), Expected: a.Expected})
	}
	if len(jobs) < 6 {
		t.Fatalf("only %d kinds of app in the smoke corpus: %v", len(jobs), seen)
	}
	return jobs
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// startTestFleet builds the tollgate binary (once per test run) and starts a
// fleet with one worker per pool and a DB from testdata/osv.
func startTestFleet(ctx context.Context, t *testing.T) (*Fleet, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary and starts a fleet")
	}
	bin := testBinary(ctx, t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "db")
	if _, err := vulndb.ImportOSV(ctx, nil, db, filepath.Join("..", "testdata", "osv")); err != nil {
		t.Fatal(err)
	}
	fleet, err := StartFleet(ctx, FleetOptions{Bin: bin, Self: self, Dir: filepath.Join(dir, "fleet"), DBDir: db, WorkersPerPool: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.Stop)
	return fleet, bin
}

// testBinary builds the tollgate binary, once per test run.
func testBinary(ctx context.Context, t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tollgate-loadtest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "tollgate")
		buildErr = testbin.Build(ctx, builtBin)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}
