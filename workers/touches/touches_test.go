package touches

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
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
		Skipped: {"node_modules/"},
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

func write(t testing.TB, dir, rel, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A directory named build, dist or vendor (or node_modules below the root)
// is no hiding place: the files under it are read.
func TestScanReadsEveryDirectoryBelowTheRoot(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "src/build/x.js", "const jwt = require('jsonwebtoken')\n")
	write(t, dir, "dist/y.py", "import requests\nrequests.get('https://x')\n")
	write(t, dir, "vendor/z.go", `k := os.Getenv("API_KEY")`+"\n")
	write(t, dir, "src/node_modules/w.js", "fetch('https://evil.example')\n")
	got, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		Auth: {"src/build/x.js"}, Egress: {"dist/y.py", "src/node_modules/w.js"}, Secrets: {"vendor/z.go"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// A pattern after a line longer than any line buffer is still found.
func TestScanFindsAPatternAfterALongLine(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "min.js", strings.Repeat("a", 200<<10)+"\nfetch('https://evil.example')\n")
	got, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got[Egress], []string{"min.js"}) || got[Truncated] != nil {
		t.Fatalf("got %v, want min.js in egress and nothing truncated", got)
	}
}

// A file over the byte cap, and a tree over the file cap, are reported as
// truncated: never a silent "touches nothing".
func TestScanReportsTruncation(t *testing.T) {
	t.Run("byte cap", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, "big.js", strings.Repeat("x", maxFileBytes)+"\nfetch('https://evil.example')\n")
		got, err := Scan(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got[Truncated]) != 1 || !strings.HasPrefix(got[Truncated][0], "big.js: ") {
			t.Fatalf("got %v, want big.js truncated", got)
		}
	})
	t.Run("file cap", func(t *testing.T) {
		dir := t.TempDir()
		for i := range maxFiles + 1 {
			write(t, dir, fmt.Sprintf("d%d/f%d.txt", i/1000, i), "")
		}
		got, err := Scan(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(got[Truncated], func(s string) bool { return strings.Contains(s, "files") }) {
			t.Fatalf("got %v, want the file cap reported", got)
		}
	})
	t.Run("unreadable", func(t *testing.T) {
		if os.Getuid() == 0 {
			t.Skip("root reads every file")
		}
		dir := t.TempDir()
		write(t, dir, "secret.js", "fetch('https://evil.example')\n")
		if err := os.Chmod(filepath.Join(dir, "secret.js"), 0); err != nil {
			t.Fatal(err)
		}
		got, err := Scan(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(got[Truncated]) != 1 || !strings.HasPrefix(got[Truncated][0], "secret.js: unreadable") {
			t.Fatalf("got %v, want secret.js reported unreadable", got)
		}
	})
}

// FuzzClassify: arbitrary bytes, then a very long line, then a pattern.
// classify never panics, and the pattern is found unless the file was
// reported as not read in full.
func FuzzClassify(f *testing.F) {
	f.Add([]byte("const x = 1\n"), 100_000)
	f.Add([]byte{0xff, 0, '\n', '\r'}, 1<<16)
	f.Add([]byte(""), 70_000)
	f.Fuzz(func(t *testing.T, prefix []byte, long int) {
		// Longer than any line buffer, short enough to fuzz quickly; the
		// byte cap has its own test.
		long = max(0, min(long, 300_000))
		var b bytes.Buffer
		b.Write(prefix)
		b.WriteByte('\n')
		b.Write(bytes.Repeat([]byte{'a'}, long))
		b.WriteString("\nfetch('https://evil.example')\n")
		areas, whole, err := classify(&b)
		if err != nil {
			t.Fatal(err)
		}
		if whole && !slices.Contains(areas, Egress) {
			t.Fatalf("read in full but egress not found after a %d-byte line: %v", long, areas)
		}
	})
}

// Every content pattern has needles, so no line is handed to the regexp
// unless it holds one of them.
func TestEveryContentRuleHasNeedles(t *testing.T) {
	for _, r := range rules {
		if r.content != nil && len(r.needles) == 0 {
			t.Errorf("%s: no needles found in %s", r.area, r.content)
		}
	}
}

// The needles fold case as (?i) does: the Kelvin sign is a K and the long
// s an S to the regexp, and a line that spells a pattern with them is still
// read.
func TestScanFoldsCaseAsTheRegexpDoes(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "a.py", "import \u017fmtplib\n")          // ſmtplib
	write(t, dir, "b.js", "const v = \u212Aeyring.get()\n") // Keyring, Kelvin sign
	write(t, dir, "c.go", "// caf\xe9\ntoken, _ := JWT.Parse(s)\n")
	got, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{Egress: {"a.py"}, Secrets: {"b.js"}, Auth: {"c.go"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// FuzzNeedlesNeverHideAMatch: a line that a content pattern matches always
// holds one of its needles once folded, so skipping the lines without one
// changes nothing.
func FuzzNeedlesNeverHideAMatch(f *testing.F) {
	for _, s := range []string{
		"fetch('https://x')", "FeTcH(  `http://", "import \u017fmtplib", "\u212Aeyring.get()",
		"process.env.API_KEY", `os.environ["DB_PASSWORD"]`, `os.Getenv("TOKEN")`, "jwt.verify(t)",
		"session[", "set-cookie", "new WebSocket(", "caf\xe9 axios", "\xff\xfeopenai",
		"x\nos.environ[\n'KEY'\naxios\n\naxio", "http.Get(u)\nHTTP.get(",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		folded := fold(nil, line)
		if bytes.Count(folded, []byte{'\n'}) != bytes.Count(line, []byte{'\n'}) {
			t.Fatalf("fold changed the lines of %q", line)
		}
		for _, r := range rules {
			if r.content != nil && r.content.Match(line) && !containsAny(folded, r.needles) {
				t.Fatalf("%s matches %q but no needle is in %q", r.area, line, folded)
			}
			anyLine := false
			for l := range bytes.Lines(line) {
				anyLine = anyLine || r.content != nil && r.content.Match(l)
			}
			if r.content != nil && anyLine != r.matches(line, folded) {
				t.Fatalf("%s: matches(%q) = %v, the regexp line by line %v", r.area, line, !anyLine, anyLine)
			}
		}
	})
}
