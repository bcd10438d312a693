package archive

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// writeTree creates files (content, or a "->target" symlink) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := bytes.CutPrefix([]byte(content), []byte("->")); ok {
			if err := os.Symlink(string(target), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree lists dir as "path mode [target|content]" lines, sorted.
func listTree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		line := rel + " " + fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			line += " " + readFile(t, p)
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestPackRoundTrip(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"README.md":                   "# app",
		"cmd/app/main.go":             "package main",
		"scripts/build.sh":            "#!/bin/sh",
		"lib/v1/util.go":              "package v1",
		"lib/current":                 "->v1",
		"docs/util":                   "->../lib/current/util.go",
		"escape":                      "->../../etc/passwd",
		"absolute":                    "->/etc/passwd",
		".git/config":                 "[core]",
		"web/node_modules/x/index.js": "evil()",
		"web/app.js":                  "app()",
	})
	if err := os.Chmod(filepath.Join(src, "scripts/build.sh"), 0o4750); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "empty"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := Pack(context.Background(), src, &buf); err != nil {
		t.Fatalf("Pack: %v", err)
	}
	b := setup(t)
	st, err := b.extract(t, buf.Bytes(), Limits{})
	if err != nil {
		t.Fatalf("Extract: %v", err)
	}
	got := listTree(t, b.dest)
	want := []string{
		"README.md -rw-r--r-- # app",
		"cmd drwxr-xr-x",
		"cmd/app drwxr-xr-x",
		"cmd/app/main.go -rw-r--r-- package main",
		"docs drwxr-xr-x",
		"docs/util Lrwxrwxrwx -> ../lib/current/util.go",
		"empty drwxr-xr-x",
		"lib drwxr-xr-x",
		"lib/current Lrwxrwxrwx -> v1",
		"lib/v1 drwxr-xr-x",
		"lib/v1/util.go -rw-r--r-- package v1",
		"scripts drwxr-xr-x",
		"scripts/build.sh -rwxr-xr-x #!/bin/sh",
		"web drwxr-xr-x",
		"web/app.js -rw-r--r-- app()",
	}
	if !slices.Equal(got, want) {
		t.Errorf("extracted tree:\n%q\nwant\n%q", got, want)
	}
	if st.Files != 5 {
		t.Errorf("stats.Files = %d, want 5", st.Files)
	}
	b.assertContained(t)
}

func TestPackIsDeterministic(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a/b.txt": "b", "c.txt": "c", "a/link": "->b.txt"})
	pack := func() []byte {
		var buf bytes.Buffer
		if err := Pack(context.Background(), src, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	first := pack()
	later := time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(src, "c.txt"), later, later); err != nil {
		t.Fatal(err)
	}
	if second := pack(); !bytes.Equal(first, second) {
		t.Error("Pack output changed after an mtime change")
	}
}

// TestPackLeavesOutSymlinksExtractWouldReject packs a tree whose symlink b is
// safe only once x, which sorts after it, is known to be a symlink: Extract
// checks b when it sees it, so Pack must leave it out for the round trip to
// succeed.
func TestPackLeavesOutSymlinksExtractWouldReject(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"b":         "->x/../../..",
		"x":         "->p/q/r",
		"p/q/r/f":   "f",
		"p/q/link":  "->r/f",
		"p/q/r/up2": "->../..",
	})
	var buf bytes.Buffer
	if err := Pack(context.Background(), src, &buf); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	if _, err := b.extract(t, buf.Bytes(), Limits{}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(b.dest, "b")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("b: Lstat err %v, want not exist", err)
	}
	for _, keep := range []string{"x", "p/q/link", "p/q/r/up2"} {
		if _, err := os.Lstat(filepath.Join(b.dest, keep)); err != nil {
			t.Errorf("%s: %v, want kept", keep, err)
		}
	}
	b.assertContained(t)
}

func TestPackRejectsNamesExtractWouldReject(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{`a\b.txt`: "x"})
	err := Pack(context.Background(), src, &bytes.Buffer{})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
}

func TestPackCancelled(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"a": "a"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Pack(ctx, src, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestPackEmptyDirRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := Pack(context.Background(), t.TempDir(), &buf); err != nil {
		t.Fatal(err)
	}
	b := setup(t)
	if st, err := b.extract(t, buf.Bytes(), Limits{}); err != nil || st != (Stats{}) {
		t.Fatalf("Extract = %+v, %v; want empty stats, nil", st, err)
	}
}
