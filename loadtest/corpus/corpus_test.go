package corpus

import (
	"bytes"
	"context"
	"encoding/json"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/tollgate/tollgate/sast"
)

func TestGenerateIsDeterministic(t *testing.T) {
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	if _, err := Generate(ctx, a, Options{Seed: 7, Apps: 40}); err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(ctx, b, Options{Seed: 7, Apps: 40}); err != nil {
		t.Fatal(err)
	}
	files := 0
	err := filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(a, p)
		x, _ := os.ReadFile(p)
		y, err := os.ReadFile(filepath.Join(b, rel))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two runs with one seed", rel)
		}
		files++
		return nil
	})
	if err != nil || files < 80 {
		t.Fatalf("walk: %v, %d files", err, files)
	}
	c := t.TempDir()
	if _, err := Generate(ctx, c, Options{Seed: 8, Apps: 40}); err != nil {
		t.Fatal(err)
	}
	x, _ := os.ReadFile(filepath.Join(a, "manifest.json"))
	y, _ := os.ReadFile(filepath.Join(c, "manifest.json"))
	if bytes.Equal(x, y) {
		t.Fatal("another seed made the same corpus")
	}
}

func TestCorpusShape(t *testing.T) {
	root := t.TempDir()
	m, err := Generate(context.Background(), root, Options{Seed: 1, Apps: 1000})
	if err != nil {
		t.Fatal(err)
	}
	nameRe := regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	count := map[string]int{}
	var deps []int
	names := map[string]bool{}
	for _, a := range m.Apps {
		if !nameRe.MatchString(a.Name) || names[a.Name] {
			t.Fatalf("app name %q invalid or repeated", a.Name)
		}
		names[a.Name] = true
		count[a.Ecosystem]++
		count["expected "+a.Expected]++
		if a.Secret {
			count["secret"]++
		}
		if a.Vuln != "" {
			count["vuln"]++
		}
		deps = append(deps, a.Packages)
		want := "pass"
		switch {
		case a.Secret || a.Vuln == "critical":
			want = "block"
		case a.Vuln == "high":
			want = "warn"
		}
		if a.Expected != want {
			t.Fatalf("%s: expected %s, want %s", a.Name, a.Expected, want)
		}
	}
	slices.Sort(deps)
	t.Logf("1000 apps: %v; dependencies min %d, p50 %d, p90 %d, max %d", count, deps[0], deps[500], deps[900], deps[999])
	near := func(name string, got int, want float64) {
		if f := float64(got) / 1000; f < want-0.05 || f > want+0.05 {
			t.Errorf("%s share %.3f, want about %.2f", name, f, want)
		}
	}
	near("npm", count["npm"], 0.7)
	near("pypi", count["pypi"], 0.15)
	near("go", count["go"], 0.15)
	near("secret", count["secret"], 0.1)
	near("vuln", count["vuln"], 0.25)
	if deps[0] < 20 || deps[999] > 1600 || deps[500] < 50 || deps[500] > 400 || deps[990] < 600 {
		t.Errorf("dependency counts min %d p50 %d p99 %d max %d: not spread like real apps", deps[0], deps[500], deps[990], deps[999])
	}
	// The manifest reads back.
	raw, _ := os.ReadFile(filepath.Join(root, "manifest.json"))
	var back Manifest
	if err := json.Unmarshal(raw, &back); err != nil || len(back.Apps) != 1000 || back.Apps[3] != m.Apps[3] {
		t.Fatalf("manifest round trip: %v", err)
	}
}

// TestCodeIsCleanAndReal pins what the apps' handler code is for: enough
// real handlers for the code scanner to parse, none of them a finding (the
// expected verdicts assume clean code), and Go that parses.
func TestCodeIsCleanAndReal(t *testing.T) {
	if testing.Short() {
		t.Skip("loads the SAST engine")
	}
	ctx := context.Background()
	root := t.TempDir()
	m, err := Generate(ctx, root, Options{Seed: 3, Apps: 60})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := sast.New(sast.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	lines := map[string][]int{}
	for _, a := range m.Apps {
		dir := filepath.Join(root, a.Dir)
		ws, scan, err := engine.Scan(ctx, dir)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		for _, w := range ws {
			t.Errorf("%s: %s:%d %s (%s)", a.Name, w.File, w.Line, w.Rule, w.Message)
		}
		files := 0
		for _, n := range scan.Files {
			files += n
		}
		if files < 3 {
			t.Errorf("%s: the code scanner read %d files (%v), want the app's handler code", a.Name, files, scan.Files)
		}
		n := 0
		_ = filepath.WalkDir(filepath.Join(dir, "src"), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || filepath.Ext(p) == ".txt" {
				return err
			}
			raw, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			n += bytes.Count(raw, []byte("\n"))
			if filepath.Ext(p) == ".go" {
				if _, err := parser.ParseFile(token.NewFileSet(), p, raw, parser.AllErrors); err != nil {
					t.Errorf("%s: %v", a.Name, err)
				}
			}
			return nil
		})
		lines[a.Ecosystem] = append(lines[a.Ecosystem], n)
	}
	for eco, ns := range lines {
		slices.Sort(ns)
		t.Logf("%s: %d apps, lines of code min %d, p50 %d, max %d", eco, len(ns), ns[0], ns[len(ns)/2], ns[len(ns)-1])
	}
}
