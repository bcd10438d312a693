package scanners

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workers"
	"github.com/tollgate/tollgate/workers/sandbox"
)

// TestGzipBombHelmChartIsStoppedBySandbox is a real hostile input: a Helm
// chart archive whose template inflates to 2 GiB reaches trivy's Helm
// scanner, which reads it whole. In the sandbox the child is stopped at the
// task's memory limit, the limit is named, and the slot's next task (a
// real app) is served by a fresh warm child. In process (9ae75cb) it took
// the worker down.
func TestGzipBombHelmChartIsStoppedBySandbox(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the scanners in a child")
	}
	ctx := context.Background()
	slot := startSlot(ctx, t, sandbox.Config{Kinds: tasks.PoolKinds(tasks.PoolDeep), TaskMemory: 512 << 20})
	tree, err := os.MkdirTemp(slot.Dir(), "scan-")
	if err != nil {
		t.Fatal(err)
	}
	writeChartBomb(t, filepath.Join(tree, "chart.tgz"), 2<<30)

	_, err = slot.Scan(ctx, tasks.Task{ScanID: "bomb", App: "bomb", Kind: tasks.KindDeep}, tree)
	le, ok := errors.AsType[*workers.LimitError](err)
	if !ok || le.Limit != "memory" || !strings.Contains(le.Reason, "memory limit (512 MiB") {
		t.Fatalf("scan of a gzip-bomb chart: %v, want the memory limit", err)
	}
	out, err := slot.Scan(ctx, tasks.Task{ScanID: "next", App: "node-todo", Kind: tasks.KindDeep}, mustAbs(t, example("node-todo")))
	if err != nil || len(out.Result.Packages) == 0 {
		t.Fatalf("next task after the bomb: %d packages, %v", len(out.Result.Packages), err)
	}
}

// TestChildLoadsItsPoolsKindsOnly: a fast pool's child loads gitleaks and
// the SAST rules only. It serves a secrets task, and refuses a deep one
// as bad input, since it has no syft, trivy or DB to run it with.
func TestChildLoadsItsPoolsKindsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the scanners in a child")
	}
	ctx := context.Background()
	slot := startSlot(ctx, t, sandbox.Config{Kinds: tasks.PoolKinds(tasks.PoolFast)})
	app := mustAbs(t, example("node-todo"))
	out, err := slot.Scan(ctx, tasks.Task{ScanID: "fast", App: "node-todo", Kind: tasks.KindSecrets}, app)
	if err != nil || len(out.Result.Secrets) == 0 || out.Result.CodeScan == nil {
		t.Fatalf("secrets task in a fast child: %d secrets, code scan %v, %v", len(out.Result.Secrets), out.Result.CodeScan, err)
	}
	if _, err := slot.Scan(ctx, tasks.Task{ScanID: "deep", App: "node-todo", Kind: tasks.KindDeep}, app); err == nil || !strings.Contains(err.Error(), `no scanner for task kind "deep"`) {
		t.Fatalf("deep task in a fast child: %v, want no scanner for it", err)
	}
}

// TestEngineLoadsTheKindsAsked: an engine for rematch tasks opens the DB
// and loads nothing else; an unknown kind is refused.
func TestEngineLoadsTheKindsAsked(t *testing.T) {
	ctx := context.Background()
	e, err := New(ctx, Options{DBDir: engineDB, Kinds: []string{tasks.KindRematch}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := slices.Sorted(maps.Keys(e.Scanners())); !slices.Equal(got, []string{tasks.KindRematch}) || e.vulns == nil || e.secrets != nil || e.code != nil || e.sbom != nil || e.iac != nil {
		t.Errorf("rematch engine: scanners %q, vulns %v secrets %v code %v sbom %v iac %v", got, e.vulns != nil, e.secrets != nil, e.code != nil, e.sbom != nil, e.iac != nil)
	}
	if _, err := New(ctx, Options{Kinds: []string{"build"}}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), `"build"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

// startSlot starts a one-child pool of this test binary's children, as
// cfg says, on the test DB and with the examples readable, and acquires
// its slot until the test ends.
func startSlot(ctx context.Context, t *testing.T, cfg sandbox.Config) workers.Slot {
	t.Helper()
	cfg.Command, cfg.WorkDir, cfg.DBDir = []string{os.Args[0], sandbox.ChildCommand}, t.TempDir(), engineDB
	cfg.ReadRoots = []string{mustAbs(t, filepath.Join("..", "..", "examples"))}
	pool, err := sandbox.Start(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pool.Close() })
	slot, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(slot.Release)
	return slot
}

// writeChartBomb writes a chart archive whose one template is size bytes
// of YAML comment: a few MiB compressed.
func writeChartBomb(t *testing.T, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	chart := []byte("apiVersion: v2\nname: bomb\nversion: 0.1.0\n")
	for _, h := range []*tar.Header{{Name: "bomb/Chart.yaml", Mode: 0o644, Size: int64(len(chart))}} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(chart); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bomb/templates/big.yaml", Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	line := []byte("#" + strings.Repeat("a", 1022) + "\n")
	for written := int64(0); written < size; written += int64(len(line)) {
		if _, err := tw.Write(line[:min(int64(len(line)), size-written)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
