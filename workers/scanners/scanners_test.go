package scanners

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vulndb"
	"github.com/tollgate/tollgate/workers/sandbox"
)

// engine is loaded once, as a worker loads it: the trivy DB handle is per
// process. engineDB is its DB.
var (
	engine   *Engine
	engineDB string
)

func TestMain(m *testing.M) {
	// Sandbox tests re-execute this binary as their scanner processes.
	if sandbox.IsChild(os.Args) {
		os.Exit(sandbox.ServeChild(context.Background(), LoadForSandbox))
	}
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "tollgate-scanners-*")
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	db := filepath.Join(dir, "db")
	engineDB = db
	if _, err := vulndb.ImportOSV(ctx, slog.New(slog.DiscardHandler), db, filepath.Join("..", "..", "testdata", "osv")); err != nil {
		panic(err)
	}
	if engine, err = New(ctx, Options{DBDir: db, Version: "test", SecretFingerprintKey: testFingerprintKey}, slog.New(slog.DiscardHandler)); err != nil {
		panic(err)
	}
	code := m.Run()
	engine.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testFingerprintKey keys the secret fingerprints of the goldens.
var testFingerprintKey = []byte("tollgate-test-fingerprint-key-32bytes!")

func example(name string) string { return filepath.Join("..", "..", "examples", name) }

func needEngine(t testing.TB) {
	if engine == nil {
		t.Skip("scanners not loaded in -short mode")
	}
}

func TestSecrets(t *testing.T) {
	needEngine(t)
	got, err := engine.secrets.Scan(context.Background(), example("node-todo"), "acme")
	if err != nil {
		t.Fatal(err)
	}
	golden.AssertJSON(t, filepath.Join("testdata", "secrets.node-todo.golden.json"), got)
	if out, _ := json.Marshal(got); bytes.Contains(out, []byte("ghp_")) {
		t.Fatal("secret value in the findings")
	}
	for _, app := range []string{"py-notes", "go-api", "clean-static"} {
		got, err := engine.secrets.Scan(context.Background(), example(app), "acme")
		if err != nil || len(got) != 0 {
			t.Fatalf("%s: %v %v, want no secrets", app, got, err)
		}
	}
}

func TestSBOMIsReproducible(t *testing.T) {
	needEngine(t)
	id := Identity{ScanID: "golden", Name: "node-todo", Created: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
	a, err := engine.sbom.Scan(context.Background(), example("node-todo"), id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.sbom.Scan(context.Background(), example("node-todo"), id)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CycloneDX, b.CycloneDX) || !bytes.Equal(a.SPDX, b.SPDX) {
		t.Fatal("two scans of the same tree gave different SBOM bytes")
	}
	golden.Assert(t, filepath.Join("testdata", "sbom.node-todo.cdx.golden.json"), a.CycloneDX)
	golden.Assert(t, filepath.Join("testdata", "sbom.node-todo.spdx.golden.json"), a.SPDX)
	golden.AssertJSON(t, filepath.Join("testdata", "packages.node-todo.golden.json"), a.Packages)
	var cdx map[string]any
	if err := json.Unmarshal(a.CycloneDX, &cdx); err != nil || cdx["bomFormat"] != "CycloneDX" {
		t.Fatalf("not a CycloneDX document: %v", err)
	}
	var spdx map[string]any
	if err := json.Unmarshal(a.SPDX, &spdx); err != nil || spdx["spdxVersion"] != "SPDX-2.3" {
		t.Fatalf("not an SPDX 2.3 document: %v %v", err, spdx["spdxVersion"])
	}
}

func TestPackagesPerEcosystem(t *testing.T) {
	needEngine(t)
	for app, want := range map[string]string{"py-notes": "PyPI", "go-api": "Go", "clean-static": "npm"} {
		cat, err := engine.sbom.Scan(context.Background(), example(app), Identity{ScanID: app})
		if err != nil {
			t.Fatal(err)
		}
		if len(cat.Packages) == 0 {
			t.Fatalf("%s: no packages", app)
		}
		for _, p := range cat.Packages {
			if p.Ecosystem != want && p.Ecosystem != "" {
				t.Errorf("%s: package %s has ecosystem %q, want %q", app, p.Name, p.Ecosystem, want)
			}
		}
	}
}

func TestVulns(t *testing.T) {
	needEngine(t)
	for _, app := range []string{"node-todo", "py-notes", "go-api", "clean-static"} {
		got, err := engine.vulns.Scan(context.Background(), example(app))
		if err != nil {
			t.Fatal(err)
		}
		golden.AssertJSON(t, filepath.Join("testdata", "vulns."+app+".golden.json"), got)
	}
}

func TestVulnsWithoutDB(t *testing.T) {
	v, err := OpenVulns(filepath.Join(t.TempDir(), "none"))
	if err != nil {
		t.Fatal(err)
	}
	if v.DB().Available || v.DB().Note == "" {
		t.Fatalf("got %+v, want unavailable with a note", v.DB())
	}
	got, err := v.Scan(context.Background(), example("node-todo"))
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v %v", got, err)
	}
}

func TestDeepTaskWritesSBOMFiles(t *testing.T) {
	needEngine(t)
	out, err := engine.Scanners()[tasks.KindDeep].Scan(context.Background(), tasks.Task{ScanID: "s", App: "node-todo", Kind: tasks.KindDeep}, example("node-todo"))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Files) != 2 || out.Result.VulnDB == nil || !out.Result.VulnDB.Available || len(out.Result.Vulnerabilities) != 12 {
		t.Fatalf("files %d vulndb %+v vulns %d", len(out.Files), out.Result.VulnDB, len(out.Result.Vulnerabilities))
	}
}

// TestFastTaskCarriesWeaknesses: the fast task runs the code scanner and
// carries what it found and what it read, through the JSON the sandbox and
// Temporal carry it in, with its time.
func TestFastTaskCarriesWeaknesses(t *testing.T) {
	needEngine(t)
	out, err := engine.Scanners()[tasks.KindSecrets].Scan(context.Background(), tasks.Task{ScanID: "s", App: "code-weak", Kind: tasks.KindSecrets, Tenant: "acme"}, example("code-weak"))
	if err != nil {
		t.Fatal(err)
	}
	res := out.Result
	if res.Weaknesses == nil || res.CodeScan == nil {
		t.Fatalf("weaknesses %v, code scan %v: want both set when the code scanner ran", res.Weaknesses, res.CodeScan)
	}
	if _, ok := res.Timings["code"]; !ok {
		t.Fatalf("timings %v: no code", res.Timings)
	}
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back tasks.Result
	if err := json.Unmarshal(raw, &back); err != nil || back.CodeScan == nil {
		t.Fatalf("code scan lost on the way: %v %s", err, raw)
	}
	if back.CodeScan.Files["javascript"] == 0 {
		t.Fatalf("code scan %+v: no JavaScript file read", back.CodeScan)
	}
	var sql *report.Weakness
	for i, w := range back.Weaknesses {
		if w.Rule == "js-sql-injection" {
			sql = &back.Weaknesses[i]
		}
	}
	if sql == nil || sql.File != "src/server.js" || len(sql.Trace) < 2 || !strings.HasPrefix(sql.Fingerprint, "tgw1:") {
		t.Fatalf("no js-sql-injection with a trace in src/server.js: %+v", back.Weaknesses)
	}
}

func TestEcosystemFromPURL(t *testing.T) {
	for purl, want := range map[string]string{
		"pkg:npm/%40scope/x@1": "npm", "pkg:pypi/flask@2": "PyPI", "pkg:golang/golang.org/x/text@v0.3.7": "Go",
		"pkg:maven/g/a@1": "Maven", "nonsense": "",
	} {
		if got := ecosystemFromPURL(purl); got != want {
			t.Errorf("%s: got %q want %q", purl, got, want)
		}
	}
}

// Benchmarks of the warm scanners on node-todo (81 npm packages), per stage.
// go test -run '^$' -bench . -benchtime 50x ./workers/scanners/
func BenchmarkFastStage(b *testing.B) {
	needEngine(b)
	sc := engine.Scanners()[tasks.KindSecrets]
	task := tasks.Task{ScanID: "bench", App: "node-todo", Kind: tasks.KindSecrets}
	for b.Loop() {
		if _, err := sc.Scan(context.Background(), task, example("node-todo")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeepStage(b *testing.B) {
	needEngine(b)
	sc := engine.Scanners()[tasks.KindDeep]
	task := tasks.Task{ScanID: "bench", App: "node-todo", Kind: tasks.KindDeep}
	for b.Loop() {
		if _, err := sc.Scan(context.Background(), task, example("node-todo")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSecrets(b *testing.B) {
	needEngine(b)
	for b.Loop() {
		if _, err := engine.secrets.Scan(context.Background(), example("node-todo"), "acme"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSBOM(b *testing.B) {
	needEngine(b)
	for b.Loop() {
		if _, err := engine.sbom.Scan(context.Background(), example("node-todo"), Identity{ScanID: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVulns(b *testing.B) {
	needEngine(b)
	for b.Loop() {
		if _, err := engine.vulns.Scan(context.Background(), example("node-todo")); err != nil {
			b.Fatal(err)
		}
	}
}
