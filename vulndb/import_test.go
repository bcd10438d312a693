package vulndb

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	trivydb "github.com/aquasecurity/trivy/pkg/db"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
)

func TestImportOSV_Stats(t *testing.T) {
	t.Parallel()
	_, stats := importFixtures(t)
	want := ImportStats{
		Files:           17,
		Vulnerabilities: 15,
		Advisories: map[string]int{
			EcosystemNpm:   14, // lodash etc. from GHSA-p6mc count once per package
			EcosystemMaven: 7,  // 4 from GHSA-jfh8 (log4j-core merged from 3 entries), 3 from npm's GHSA-f2jv
			EcosystemPyPI:  3,
			EcosystemGo:    5,
		},
		Withdrawn:         2, // GHSA-27h2-hvpr-p74q, GO-2024-2730
		SkippedEcosystems: map[string]int{"NuGet": 1},
	}
	if !reflect.DeepEqual(stats, want) {
		t.Errorf("stats:\n got %+v\nwant %+v", stats, want)
	}
}

// TestImportOSV_InvalidRecords checks that files that are not OSV records are
// skipped and counted without blocking the import.
func TestImportOSV_InvalidRecords(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	copyFile(t, filepath.Join(fixtureDir, "npm", "NSWG-ECO-1.json"), filepath.Join(src, "NSWG-ECO-1.json"))
	bad := map[string]string{
		"not-json.json":   "this is not json",
		"array.json":      `[{"id": "X-1"}]`,
		"no-id.json":      `{"affected": [{"package": {"ecosystem": "npm", "name": "x"}}]}`,
		"no-package.json": `{"id": "X-2", "affected": [{"package": {"ecosystem": "npm", "name": ""}}]}`,
		"bad-type.json":   `{"id": "X-3", "aliases": "CVE-1"}`,
		"truncated.json":  `{"id": "X-4", "affected": [`,
	}
	for name, content := range bad {
		writeFile(t, filepath.Join(src, "sub", name), content)
	}
	writeFile(t, filepath.Join(src, "README.md"), "not read: only *.json files are records")

	stats, err := ImportOSV(context.Background(), testLogger(t), filepath.Join(t.TempDir(), "db"), src)
	if err != nil {
		t.Fatalf("ImportOSV: %v", err)
	}
	if stats.Files != 1+len(bad) || stats.Invalid != len(bad) || stats.Vulnerabilities != 1 {
		t.Errorf("stats = %+v, want %d files, %d invalid, 1 vulnerability", stats, 1+len(bad), len(bad))
	}
}

func TestImportOSV_Errors(t *testing.T) {
	t.Parallel()
	empty := t.TempDir()
	writeFile(t, filepath.Join(empty, "notes.txt"), "no records here")
	onlyBad := t.TempDir()
	writeFile(t, filepath.Join(onlyBad, "x.json"), "{")
	file := filepath.Join(t.TempDir(), "file.json")
	writeFile(t, file, "{}")
	good := filepath.Join(fixtureDir, "npm")

	tests := []struct {
		name    string
		dbDir   string
		srcDirs []string
		errText string
	}{
		{"no source dir", "db", nil, "no source directory given"},
		{"missing source dir", "db", []string{good, filepath.Join(empty, "missing")}, "open osv source dir"},
		{"source is a file", "db", []string{file}, "not a directory"},
		{"source without records", "db", []string{good, empty}, "holds no *.json file"},
		{"only invalid records", "db", []string{onlyBad}, "none of the 1 files read is a valid osv record"},
		{"no db dir", "", []string{good}, "no db dir given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			parent := t.TempDir()
			dbDir := tt.dbDir
			if dbDir != "" {
				dbDir = filepath.Join(parent, dbDir)
			}
			_, err := ImportOSV(context.Background(), testLogger(t), dbDir, tt.srcDirs...)
			if err == nil || !strings.Contains(err.Error(), tt.errText) {
				t.Fatalf("err = %v, want one containing %q", err, tt.errText)
			}
			if !strings.HasPrefix(err.Error(), "import osv records into") {
				t.Errorf("err = %q, want it to name the operation", err)
			}
			assertDirEntries(t, parent, nil)
		})
	}
}

// TestImportOSV_Atomic checks that a failed import leaves the DB that was there, and
// no staging directory.
func TestImportOSV_Atomic(t *testing.T) {
	dbDir, _ := importFixtures(t)
	before, err := ReadInfo(dbDir)
	if err != nil {
		t.Fatalf("ReadInfo: %v", err)
	}
	oldDB := readFile(t, filepath.Join(dbDir, "trivy.db"))

	t.Run("late failure", func(t *testing.T) {
		// The first source is imported before the empty second one fails the run.
		empty := t.TempDir()
		_, err := ImportOSV(context.Background(), testLogger(t), dbDir, filepath.Join(fixtureDir, "go"), empty)
		if err == nil {
			t.Fatal("ImportOSV succeeded with an empty source dir")
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ImportOSV(ctx, testLogger(t), dbDir, filepath.Join(fixtureDir, "go"))
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})

	after, err := ReadInfo(dbDir)
	if err != nil {
		t.Fatalf("ReadInfo after failed imports: %v", err)
	}
	if !after.UpdatedAt.Equal(before.UpdatedAt) || !reflect.DeepEqual(after.DataSources, before.DataSources) {
		t.Errorf("db changed by failed imports:\nbefore %+v\n after %+v", before, after)
	}
	if string(readFile(t, filepath.Join(dbDir, "trivy.db"))) != string(oldDB) {
		t.Error("trivy.db changed by failed imports")
	}
	assertDirEntries(t, filepath.Dir(dbDir), []string{"db"})

	t.Run("replace", func(t *testing.T) {
		// A successful import replaces the DB, here with one of Go records only.
		if _, err := ImportOSV(context.Background(), testLogger(t), dbDir, filepath.Join(fixtureDir, "go")); err != nil {
			t.Fatalf("ImportOSV: %v", err)
		}
		info, err := ReadInfo(dbDir)
		if err != nil {
			t.Fatalf("ReadInfo: %v", err)
		}
		if len(info.DataSources) != 1 || info.DataSources[0].Ecosystem != "go" {
			t.Errorf("DataSources = %+v, want the Go source only", info.DataSources)
		}
		assertDirEntries(t, filepath.Dir(dbDir), []string{"db"})
	})
}

// TestImportOSV_Reimport checks that an import works while the process has the DB
// open with trivy-db's handle, and that reopening reads the new DB.
func TestImportOSV_Reimport(t *testing.T) {
	dbDir, _ := importFixtures(t)
	if err := trivydb.Init(dbDir); err != nil {
		t.Fatalf("open trivy db: %v", err)
	}
	if _, err := ImportOSV(context.Background(), testLogger(t), dbDir, filepath.Join(fixtureDir, "go")); err != nil {
		t.Fatalf("ImportOSV over an open DB: %v", err)
	}
	// The open handle still reads the old file, which has npm advisories.
	if got := detect(t, ftypes.Npm, "lodash", "4.17.10"); len(got) != 2 {
		t.Errorf("old handle: got %d vulnerabilities for lodash 4.17.10, want 2", len(got))
	}
	if err := trivydb.Close(); err != nil {
		t.Fatalf("close trivy db: %v", err)
	}
	openDB(t, dbDir)
	if got := detect(t, ftypes.Npm, "lodash", "4.17.10"); len(got) != 0 {
		t.Errorf("new handle: got %d vulnerabilities for lodash 4.17.10 from a Go-only DB, want 0", len(got))
	}
	if got := detect(t, ftypes.GoModule, "stdlib", "v1.16.3"); len(got) != 1 {
		t.Errorf("new handle: got %d vulnerabilities for stdlib v1.16.3, want 1", len(got))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	writeFile(t, to, string(readFile(t, from)))
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// assertDirEntries checks the names in dir, so that no staging directory is left.
func assertDirEntries(t *testing.T, dir string, want []string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s holds %v, want %v", dir, got, want)
	}
}
