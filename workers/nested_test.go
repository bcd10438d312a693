package workers

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/tasks"
)

// gzipBombChart is a packaged Helm chart whose values.yaml inflates from a
// few KiB to 64 MiB of zeros: trivy's Helm scanner reads it without a bound.
func gzipBombChart(t *testing.T) []byte {
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "chart/Chart.yaml", Mode: 0o644, Size: 30})
	tw.Write([]byte("apiVersion: v2\nname: chart\n\n\n\n"))
	const big = 64 << 20
	tw.WriteHeader(&tar.Header{Name: "chart/values.yaml", Mode: 0o644, Size: big})
	zero := make([]byte, 1<<20)
	for range big / len(zero) {
		tw.Write(zero)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	gz.Close()
	return buf.Bytes()
}

// zipBombJar is a .jar with one deflated class file of 64 MiB of zeros.
func zipBombJar(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("com/acme/Bomb.class")
	zero := make([]byte, 1<<20)
	for range 64 {
		w.Write(zero)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// smallJar is an ordinary jar, which stays in the tree.
func smallJar(t *testing.T) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("META-INF/MANIFEST.MF")
	w.Write([]byte("Manifest-Version: 1.0\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fileSource serves one local archive as the inputs store.
type fileSource string

func (f fileSource) FetchTo(_ context.Context, _, path string) error {
	data, err := os.ReadFile(string(f))
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// TestNestedBombsAreSkippedAndListed: an input archive holding a gzip-bomb
// Helm chart and a zip-bomb jar is extracted with both removed from the
// scan view and listed, while the rest of the tree (an ordinary jar too)
// is there to scan.
func TestNestedBombsAreSkippedAndListed(t *testing.T) {
	src := t.TempDir()
	files := map[string][]byte{
		"app/index.js":                []byte("console.log('hi')\n"),
		"deploy/charts/web-1.0.0.tgz": gzipBombChart(t),
		"lib/bomb.jar":                zipBombJar(t),
		"lib/ok.jar":                  smallJar(t),
		"deploy/charts/README.md":     []byte("charts\n"),
	}
	for name, data := range files {
		os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(src, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	packed := filepath.Join(t.TempDir(), "in.tar.gz")
	f, err := os.Create(packed)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if err := archive.Pack(context.Background(), src, io.MultiWriter(f, h)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	in := tasks.Input{Archive: &storage.Object{Key: "in", SHA256: hex.EncodeToString(h.Sum(nil))}}
	dir, cleanup, err := prepare(context.Background(), in, fileSource(packed), nil, t.TempDir(), archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	skipped, err := skipNestedArchives(context.Background(), dir, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"deploy/charts/web-1.0.0.tgz", "lib/bomb.jar"} {
		if _, err := os.Stat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still in the scan view (%v)", gone, err)
		}
	}
	for _, kept := range []string{"app/index.js", "lib/ok.jar", "deploy/charts/README.md"} {
		if _, err := os.Stat(filepath.Join(dir, kept)); err != nil {
			t.Errorf("%s is not in the scan view: %v", kept, err)
		}
	}
	got := report.MergeSkipped(nil, skipped)
	if len(got) != 2 || got[0].File != "deploy/charts/web-1.0.0.tgz" || got[1].File != "lib/bomb.jar" {
		t.Fatalf("skipped %+v, want the chart and the bomb jar", got)
	}
	for _, s := range got {
		if !strings.Contains(s.Reason, string(archive.ReasonBomb)) && !strings.Contains(s.Reason, "too large") {
			t.Errorf("%s: reason %q does not name the limit", s.File, s.Reason)
		}
	}
}

// TestNestedArchivesTooDeepAreSkipped: a zip in a zip in a zip in a zip is
// past the nesting depth, however small.
func TestNestedArchivesTooDeepAreSkipped(t *testing.T) {
	data := smallJar(t)
	for range maxNestedDepth {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("inner.zip")
		w.Write(data)
		zw.Close()
		data = buf.Bytes()
	}
	root := t.TempDir()
	dir := filepath.Join(root, "src")
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "deep.zip"), data, 0o644)
	os.WriteFile(filepath.Join(dir, "ok.zip"), smallJar(t), 0o644)
	got, err := skipNestedArchives(context.Background(), dir, archive.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].File != "deep.zip" || !strings.Contains(got[0].Reason, "nested more than") {
		t.Fatalf("skipped %+v, want deep.zip for its depth", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "ok.zip")); err != nil {
		t.Fatal(err)
	}
}
