package touches

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	got, err := Scan(context.Background(), filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		Auth:    {"src/auth/login.js"},
		Secrets: {".env.example", "src/auth/login.js"},
		Egress:  {"src/notify.py"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v (node_modules skipped, util.go touches nothing)", got, want)
	}
}

func TestScanCleanTree(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Scan(context.Background(), dir)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v", got, err)
	}
}

// A symlink out of the tree is not followed, and a huge minified line does
// not fail the scan.
func TestScanHostileTree(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(dir, "auth")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 200<<10) + "\nfetch('https://evil.example')\n"
	if err := os.WriteFile(filepath.Join(dir, "min.js"), []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[Auth]) != 0 {
		t.Fatalf("followed a symlink: %v", got)
	}
}
