package scanners

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
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
	pool, err := sandbox.Start(ctx, sandbox.Config{Command: []string{os.Args[0], sandbox.ChildCommand}, WorkDir: t.TempDir(),
		DBDir: engineDB, TaskMemory: 512 << 20, ReadRoots: []string{mustAbs(t, filepath.Join("..", "..", "examples"))}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	slot, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer slot.Release()
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
