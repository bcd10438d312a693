package cli

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage/archive"
)

// run runs the command line as a user would and returns its exit code,
// stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

type entry struct {
	name, body, link string
	typ              byte
}

func writeTarGz(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	writeTarGzTo(t, &buf, entries)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeTarGzTo(t *testing.T, buf *bytes.Buffer, entries []entry) {
	t.Helper()
	gz := gzip.NewWriter(buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, Format: tar.FormatPAX}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			io.WriteString(tw, e.body)
		}
	}
	tw.Close()
	gz.Close()
}

// TestScanRejectsHostileArchives: each hostile archive ends `tollgate scan`
// with exit 2 and a one-line reason, before any server starts, and nothing is
// written outside the private temporary directory, which is removed.
func TestScanRejectsHostileArchives(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	canary := filepath.Join(dir, "canary")
	for _, d := range []string{tmp, canary} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TMPDIR", tmp)

	bomb := filepath.Join(dir, "bomb.tgz")
	{
		var buf bytes.Buffer
		gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		tw := tar.NewWriter(gz)
		size := int64(1 << 30)
		tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
		zeros := make([]byte, 1<<20)
		for written := int64(0); written < size; written += int64(len(zeros)) {
			tw.Write(zeros)
		}
		tw.Close()
		gz.Close()
		os.WriteFile(bomb, buf.Bytes(), 0o644)
	}
	many := filepath.Join(dir, "many.tgz")
	{
		entries := make([]entry, 100_000)
		for i := range entries {
			entries[i] = entry{name: "f/" + strings.Repeat("x", 4) + itoa(i), body: "x"}
		}
		writeTarGz(t, many, entries)
	}
	slip := filepath.Join(dir, "slip.zip")
	{
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, _ := zw.Create("../canary/evil.txt")
		io.WriteString(w, "pwned")
		zw.Close()
		os.WriteFile(slip, buf.Bytes(), 0o644)
	}
	link := filepath.Join(dir, "link.tgz")
	writeTarGz(t, link, []entry{
		{name: "app/escape", typ: tar.TypeSymlink, link: "../../canary"},
		{name: "app/escape/evil.txt", body: "pwned"},
	})
	abs := filepath.Join(dir, "abs.tgz")
	writeTarGz(t, abs, []entry{{name: filepath.Join(canary, "evil.txt"), body: "pwned"}})
	dev := filepath.Join(dir, "dev.tgz")
	writeTarGz(t, dev, []entry{{name: "null", typ: tar.TypeChar}})
	corrupt := filepath.Join(dir, "corrupt.tgz")
	os.WriteFile(corrupt, []byte("\x1f\x8b\x08\x00garbage"), 0o644)

	for name, path := range map[string]string{
		"zip slip": slip, "escaping symlink": link, "gzip bomb": bomb, "100k files": many,
		"absolute path": abs, "device file": dev, "corrupt gzip": corrupt,
	} {
		t.Run(name, func(t *testing.T) {
			code, stdout, stderr := run(t, "scan", "--evidence", filepath.Join(dir, "evidence"), path)
			if code != ExitBadInput {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitBadInput, stderr)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "tollgate: ") || !strings.Contains(last, "archive rejected") {
				t.Errorf("want a one-line reason ending the output, got %q", stderr)
			}
			assertEmpty(t, canary)
			assertEmpty(t, tmp)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		names := []string{}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("%s is not empty: %v", dir, names)
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]string{
		"missing path":   {"scan", filepath.Join(dir, "nope")},
		"no path":        {"scan"},
		"bad format":     {"scan", "--format", "xml", dir},
		"unknown flag":   {"scan", "--frobnicate", dir},
		"unknown cmd":    {"frobnicate"},
		"bad log level":  {"--log-level", "loud", "scan", dir},
		"db import none": {"db", "import", "--db", dir},
		"db info no db":  {"db", "info", "--db", dir},
		"not a file":     {"scan", "/dev/null"},
		"rules missing":  {"scan", "--rules", filepath.Join(dir, "nope"), dir},
		"rules a file":   {"scan", "--rules", "/dev/null", dir},
		"report no file": {"scan", "--report", "sarif", dir},
		"report format":  {"submit", "--report", "xml=out.xml", "--server", "http://127.0.0.1:1", dir},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := run(t, args...)
			if code != ExitBadInput {
				t.Fatalf("exit %d, want %d; stderr: %s", code, ExitBadInput, stderr)
			}
			if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 0 {
				t.Errorf("want one line on stderr, got %q", stderr)
			}
		})
	}
}

func TestAppName(t *testing.T) {
	for in, want := range map[string]string{
		"examples/node-todo": "node-todo", "/tmp/My App.tar.gz": "my-app", "x.tgz": "x", "__": "app", "a.zip": "a",
	} {
		if got := appName(in); got != want {
			t.Errorf("appName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestScanArchiveEndToEnd runs `tollgate scan` on a packed example through the
// real embedded stack and checks the exit code and the report contract.
func TestScanArchiveEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "node-todo.tgz")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := archive.Pack(context.Background(), filepath.Join("..", "..", "examples", "node-todo"), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	db := filepath.Join(dir, "db")
	if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db); code != 0 {
		t.Fatalf("db import: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "report.json")
	// The other formats from the same run, each to its file by --report.
	markers := map[string]string{"cyclonedx": `"bomFormat": "CycloneDX"`, "spdx": `"spdxVersion": "SPDX-2.3"`, "sarif": `"version": "2.1.0"`,
		"junit": `<testsuites>`, "github": `::error file=`, "gitlab-dependency-scanning": `"type": "dependency_scanning"`}
	args := []string{"scan", "-q", "--full", "--db", db, "--evidence", filepath.Join(dir, "evidence"), "--format", "json", "--output", out, "--label", "ci"}
	for format := range markers {
		args = append(args, "--report", format+"="+filepath.Join(dir, "report."+format))
	}
	code, _, stderr := run(t, append(args, src)...)
	if code != ExitBlocked {
		t.Fatalf("exit %d, want %d (blocked); stderr: %s", code, ExitBlocked, stderr)
	}
	var r report.Report
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Schema != report.Schema || r.App != "node-todo" || r.Verdict != report.VerdictBlock || len(r.Secrets) != 1 ||
		len(r.Vulnerabilities) != 12 || len(r.Packages) == 0 || !r.VulnDB.Available || len(r.Evidence) != 4 {
		t.Fatalf("unexpected report: app %s verdict %s secrets %d vulns %d packages %d evidence %d",
			r.App, r.Verdict, len(r.Secrets), len(r.Vulnerabilities), len(r.Packages), len(r.Evidence))
	}
	// The secret's value never reaches the report.
	if bytes.Contains(raw, []byte("ghp_")) {
		t.Fatal("report contains the secret")
	}
	for format, marker := range markers {
		if b, _ := os.ReadFile(filepath.Join(dir, "report."+format)); !bytes.Contains(b, []byte(marker)) {
			t.Errorf("--report %s: the output has no %s", format, marker)
		}
	}
	// The keys the DESIGN.md contract names are all there.
	var doc map[string]any
	json.Unmarshal(raw, &doc)
	for _, k := range []string{"schema", "scan_id", "app", "verdict", "stage", "reasons", "secrets", "vulnerabilities", "packages", "evidence", "timings"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("report has no %q", k)
		}
	}
}

// TestScanWithoutDBSaysSo: with no vulnerability DB the scan still runs, and
// says on stderr and in the report that vulnerabilities were not checked.
func TestScanWithoutDBSaysSo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "report.json")
	code, _, stderr := run(t, "scan", "--db", filepath.Join(dir, "no-db"), "--evidence", filepath.Join(dir, "evidence"),
		"--format", "json", "--output", out, filepath.Join("..", "..", "examples", "clean-static"))
	if code != ExitPass {
		t.Fatalf("exit %d, want 0 (warn); stderr: %s", code, stderr)
	}
	if !strings.Contains(stderr, "vulnerabilities were not checked") {
		t.Errorf("stderr does not say vulnerabilities were not checked: %s", stderr)
	}
	raw, _ := os.ReadFile(out)
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Verdict != report.VerdictWarn || r.VulnDB.Available || !strings.Contains(r.VulnDB.Note, "no vulnerability DB") ||
		len(r.Reasons) != 1 || r.Reasons[0].Policy != "vulnerabilities.no_db" || len(r.Packages) == 0 {
		t.Fatalf("report: verdict %s vulndb %+v reasons %+v packages %d", r.Verdict, r.VulnDB, r.Reasons, len(r.Packages))
	}
}
