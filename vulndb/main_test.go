package vulndb

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	trivydb "github.com/aquasecurity/trivy/pkg/db"
	xos "github.com/aquasecurity/trivy/pkg/x/os"
)

// fixtureDir holds the real OSV records the tests import; see its README.md.
const fixtureDir = "../testdata/osv-import"

func TestMain(m *testing.M) {
	// Importing trivy swaps slog's default for a handler that buffers every record
	// until trivy's CLI sets a logger; trivy's own warnings (e.g. a constraint it
	// cannot parse) should show instead.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	code := m.Run()
	// trivy's download client stages files in a per-process /tmp/trivy-<pid>.
	if err := xos.Cleanup(); err != nil {
		slog.Error("remove trivy's temp dir", "error", err)
	}
	os.Exit(code)
}

// testLogger logs into the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// importFixtures builds a DB from all fixtures into a new directory.
func importFixtures(t *testing.T) (string, ImportStats) {
	t.Helper()
	dbDir := filepath.Join(t.TempDir(), "db")
	stats, err := ImportOSV(context.Background(), testLogger(t), dbDir, fixtureSources()...)
	if err != nil {
		t.Fatalf("ImportOSV: %v", err)
	}
	return dbDir, stats
}

func fixtureSources() []string {
	return []string{
		filepath.Join(fixtureDir, "npm"),
		filepath.Join(fixtureDir, "pypi"),
		filepath.Join(fixtureDir, "go"),
		filepath.Join(fixtureDir, "maven"),
	}
}

// openDB opens dbDir with trivy's process-wide handle, read-only as trivy's scanner
// does, for the rest of the test. Tests that call it must not run in parallel.
func openDB(t *testing.T, dbDir string) {
	t.Helper()
	if err := trivydb.Init(dbDir); err != nil {
		t.Fatalf("open trivy db %q: %v", dbDir, err)
	}
	t.Cleanup(func() {
		if err := trivydb.Close(); err != nil {
			t.Errorf("close trivy db: %v", err)
		}
	})
}
