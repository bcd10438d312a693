package loadtest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/loadtest/corpus"
	"github.com/tollgate/tollgate/stack"
)

// TestDrills is `loadtest -drills` in small: the production-shaped stack
// (PostgreSQL, the Temporal server, a 3-node NATS cluster at replicas 3,
// MinIO on four drives) gates a few dozen scans from 10 clients through one
// drill of each kind, held for seconds. No scan may be lost or decided
// wrongly, every scan's evidence must verify with `tollgate verify`, and
// no evidence object may have a second version. It checks no timing.
func TestDrills(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts the production-shaped stack")
	}
	for _, find := range []func(string) (string, error){stack.FindTemporalServer, stack.FindPostgres} {
		if _, err := find(""); err != nil {
			// CI installs both (make test): there a missing one is a failure.
			if os.Getenv("CI") != "" {
				t.Fatal(err)
			}
			t.Skip(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	bin := testBinary(ctx, t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	root := filepath.Join(work, "corpus")
	if _, err := corpus.Generate(ctx, root, corpus.Options{Seed: 11, Apps: 24}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "report")
	rep, err := RunDrillsReport(ctx, DrillOptions{Command: t.Name(), Bin: bin, Self: self, Corpus: root, OSV: filepath.Join("..", "testdata", "osv"),
		Work: work, Out: out, Clients: 10, Warmup: 4, DrillScans: 30, Plan: CIDrills, Partition: true,
		Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	run := rep.Runs[len(rep.Runs)-1]
	for _, d := range run.Drills {
		t.Logf("drill %-40s %5.1f-%5.1f s, longest stall %.1f s, recovered after %.1f s: %s", d.Name, d.StartS, d.EndS, d.LongestStallS, d.RecoveredS, strings.Join(d.Actions, "; "))
		if d.Err != "" {
			t.Errorf("drill %q failed: %s", d.Name, d.Err)
		}
	}
	want := 6 // the kinds of drill but the partition
	if !strings.Contains(strings.Join(rep.Notes, " "), "partition drill was left out") {
		want++
	}
	if len(run.Drills) != want {
		t.Errorf("%d drills ran, want %d; notes %q", len(run.Drills), want, rep.Notes)
	}
	if run.Completed < 30 || run.Lost != 0 || run.Wrong != 0 {
		t.Errorf("completed %d, lost %d, wrong %d %v; errors %d %v", run.Completed, run.Lost, run.Wrong, run.WrongApps, run.Errors, run.ErrorExamples)
	}
	e := run.Evidence
	if e == nil || e.Verified != e.Scans || e.Scans != run.Completed || len(e.Duplicated) != 0 || e.Objects < 4*e.Scans {
		t.Errorf("evidence: %+v for %d completed scans", e, run.Completed)
	}
	for _, f := range []string{"report.json", "report.md", "drills.svg"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
}

// testLogger logs the drills' progress to stderr under -v.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("test", t.Name())
}
