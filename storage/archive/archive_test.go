package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testBundle is one extraction's directories: base holds only dest, the
// extraction root, and canary, a sibling that must stay empty.
type testBundle struct {
	base, dest, canary string
}

func setup(t testing.TB) *testBundle {
	t.Helper()
	base := t.TempDir()
	b := &testBundle{base: base, dest: filepath.Join(base, "dest"), canary: filepath.Join(base, "canary")}
	for _, d := range []string{b.dest, b.canary} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// extract writes data to a file outside base and extracts it into dest.
func (b *testBundle) extract(t testing.TB, data []byte, lim Limits) (Stats, error) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "input.archive")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return Extract(context.Background(), src, b.dest, lim)
}

// assertContained checks that nothing was written outside dest: base holds
// only dest and an empty canary, no escape target exists, and the tree under
// dest keeps the package's invariants.
func (b *testBundle) assertContained(t testing.TB, escapeTargets ...string) {
	t.Helper()
	ents, err := os.ReadDir(b.base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"canary", "dest"}) {
		t.Errorf("base dir holds %q, want only canary and dest", names)
	}
	if ents, err := os.ReadDir(b.canary); err != nil || len(ents) > 0 {
		t.Errorf("canary dir: %d entries, err %v; want empty", len(ents), err)
	}
	for _, p := range escapeTargets {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("escape target %s: Lstat err %v, want not exist", p, err)
		}
	}
	checkTree(t, b.dest)
}

// checkTree asserts what holds for any extraction, complete or partial: only
// directories (0755), regular files (0644 or 0755) and symlinks that resolve
// inside dest.
func checkTree(t testing.TB, dest string) {
	t.Helper()
	root, err := filepath.EvalSymlinks(dest)
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		switch {
		case mode.IsDir():
			if p != root && mode.Perm() != 0o755 || mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: directory mode %v, want 0755", p, mode)
			}
		case mode.IsRegular():
			if perm := mode.Perm(); perm != 0o644 && perm != 0o755 || mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Errorf("%s: file mode %v, want 0644 or 0755", p, mode)
			}
		case mode&fs.ModeSymlink != 0:
			if escapes(t, root, p) {
				t.Errorf("%s: symlink resolves outside %s", p, root)
			}
		default:
			t.Errorf("%s: special file of mode %v", p, mode)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// escapes resolves the symlink at link as the kernel would and reports
// whether it ever leaves root.
func escapes(t testing.TB, root, link string) bool {
	t.Helper()
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.IsAbs(target) {
		return true
	}
	cur := filepath.Dir(link)
	pending := strings.Split(target, "/")
	for hops := 0; len(pending) > 0; {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur == root {
				return true
			}
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		fi, err := os.Lstat(next)
		if err != nil {
			return false // dangling: the kernel stops here
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return false // ELOOP
		}
		t2, err := os.Readlink(next)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.IsAbs(t2) {
			return true
		}
		pending = append(strings.Split(t2, "/"), pending...)
	}
	return false
}

// assertRejected checks err wraps ErrRejected with the given reason (any if
// empty) and reads as one line.
func assertRejected(t testing.TB, err error, reason Reason) {
	t.Helper()
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want ErrRejected", err)
	}
	var rej *RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("err = %v, want a *RejectError", err)
	}
	if reason != "" && rej.Reason != reason {
		t.Errorf("reason = %q, want %q (err: %v)", rej.Reason, reason, err)
	}
	if msg := err.Error(); strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
}

// tEntry is a tar entry to build.
type tEntry struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func tfile(name, body string) tEntry { return tEntry{name: name, typ: tar.TypeReg, body: body} }
func tdir(name string) tEntry        { return tEntry{name: name, typ: tar.TypeDir} }
func tsymlink(name, target string) tEntry {
	return tEntry{name: name, typ: tar.TypeSymlink, link: target}
}
func thardlink(name, target string) tEntry {
	return tEntry{name: name, typ: tar.TypeLink, link: target}
}

// buildTar builds a tar, gzipped if gz, from entries.
func buildTar(t testing.TB, gz bool, entries ...tEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode}
		if hdr.Mode == 0 && e.typ != tar.TypeXGlobalHeader {
			hdr.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if e.typ == tar.TypeXGlobalHeader {
			hdr.PAXRecords = map[string]string{"comment": "global"}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("write tar header %q: %v", e.name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// zEntry is a zip entry to build.
type zEntry struct {
	name  string
	mode  fs.FileMode // 0: a plain 0644 file
	body  string
	store bool
}

func buildZip(t testing.TB, entries ...zEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		fh := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.store {
			fh.Method = zip.Store
		}
		fh.SetMode(cmpOr(e.mode, 0o644))
		w, err := zw.CreateHeader(fh)
		if err != nil {
			t.Fatalf("create zip entry %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func cmpOr(m, def fs.FileMode) fs.FileMode {
	if m == 0 {
		return def
	}
	return m
}

// streamTarGz runs gen in a goroutine that writes a tar.gz into a pipe and
// returns the read side, so huge archives are generated only as far as they
// are read. Cleanup closes the pipe and waits for the goroutine to return.
func streamTarGz(t testing.TB, gen func(tw *tar.Writer) error) io.Reader {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		gz := gzip.NewWriter(pw)
		tw := tar.NewWriter(gz)
		err := gen(tw)
		if err == nil {
			err = tw.Close()
		}
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() {
		pr.CloseWithError(errors.New("test finished"))
		<-done
	})
	return pr
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t testing.TB, path string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode()
}

func TestExtractTarGzHappyPath(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{true, false} {
		t.Run(map[bool]string{true: "tar.gz", false: "tar"}[gz], func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st, err := b.extract(t, happyTar(t, gz), Limits{})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if want := (Stats{Files: 4, Bytes: int64(len("#!/bin/sh\n") + 1 + len("readme"))}); st != want {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
			d := b.dest
			if got := readFile(t, filepath.Join(d, "app/bin/readme")); got != "readme" {
				t.Errorf("through symlinks: %q", got)
			}
			if got := readFile(t, filepath.Join(d, "app/README.copy")); got != "readme" {
				t.Errorf("hard link: %q", got)
			}
			for path, want := range map[string]fs.FileMode{
				"app/run.sh":        0o755,
				"app/secret.txt":    0o644,
				"app/lib/v1/README": 0o644,
				"app":               fs.ModeDir | 0o755,
				"app/lib":           fs.ModeDir | 0o755,
				"app/lib/current":   fs.ModeSymlink,
				"app/README.copy":   0o644,
				"app/bin":           fs.ModeDir | 0o755,
				"app/bin/readme":    fs.ModeSymlink,
			} {
				got := perm(t, filepath.Join(d, path))
				if got&fs.ModeSymlink != 0 {
					got = fs.ModeSymlink
				}
				if got != want {
					t.Errorf("%s: mode %v, want %v", path, got, want)
				}
			}
			if target, err := os.Readlink(filepath.Join(d, "app/lib/current")); err != nil || target != "v1" {
				t.Errorf("symlink target %q, %v; want v1", target, err)
			}
			b.assertContained(t)
		})
	}
}

// happyTar is a tar (gz: tar.gz) that Extract accepts, exercising every kind
// of entry it keeps: 4 files of 17 bytes in all.
func happyTar(t testing.TB, gz bool) []byte {
	return buildTar(t, gz,
		tEntry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		tdir("./"),
		tdir("app/"),
		tEntry{name: "app/run.sh", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o4777},
		tEntry{name: "app/secret.txt", typ: tar.TypeReg, body: "s", mode: 0o600},
		tEntry{name: "./app/lib/v1/README", typ: tar.TypeReg, body: "readme", mode: 0o2644},
		tdir("app/"), // repeated directories are fine
		tsymlink("app/lib/current", "v1"),
		tsymlink("app/bin/readme", "../lib/current/README"), // through an earlier in-root symlink
		thardlink("app/README.copy", "app/lib/v1/README"),
	)
}

// happyZip is a zip that Extract accepts: 3 files of 623 bytes in all.
func happyZip(t testing.TB) []byte {
	return buildZip(t,
		zEntry{name: "app/", mode: fs.ModeDir | 0o700},
		zEntry{name: "app/main.go", body: "package main\n"},
		zEntry{name: "app/tool", body: "#!/bin/sh\n", mode: 0o6755, store: true},
		zEntry{name: "app/docs/guide.md", body: strings.Repeat("guide ", 100)},
		zEntry{name: "app/link", body: "docs/guide.md", mode: fs.ModeSymlink | 0o777},
	)
}

func TestExtractZipHappyPath(t *testing.T) {
	t.Parallel()
	data := happyZip(t)
	for _, tc := range []struct {
		name string
		run  func(b *testBundle) (Stats, error)
	}{
		{"file", func(b *testBundle) (Stats, error) { return b.extract(t, data, Limits{}) }},
		{"reader at", func(b *testBundle) (Stats, error) {
			return ExtractReader(context.Background(), bytes.NewReader(data), int64(len(data)), b.dest, Limits{})
		}},
		{"spooled stream", func(b *testBundle) (Stats, error) {
			return ExtractReader(context.Background(), io.MultiReader(bytes.NewReader(data)), -1, b.dest, Limits{})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st, err := tc.run(b)
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			if want := (Stats{Files: 3, Bytes: int64(13 + 10 + 600)}); st != want {
				t.Errorf("stats = %+v, want %+v", st, want)
			}
			if got := readFile(t, filepath.Join(b.dest, "app/link")); got != strings.Repeat("guide ", 100) {
				t.Errorf("symlink content %q", got)
			}
			if got := perm(t, filepath.Join(b.dest, "app/tool")); got != 0o755 {
				t.Errorf("tool mode %v, want 0755", got)
			}
			if got := perm(t, filepath.Join(b.dest, "app")); got != fs.ModeDir|0o755 {
				t.Errorf("app mode %v, want drwxr-xr-x", got)
			}
			b.assertContained(t)
		})
	}
}

func TestExtractDestinationMustBeEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if err := os.WriteFile(filepath.Join(b.dest, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := b.extract(t, buildTar(t, true, tfile("a", "a")), Limits{})
	if err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want a non-rejection error", err)
	}
}

func TestExtractMissingSourceIsNotRejection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	_, err := Extract(context.Background(), filepath.Join(b.base, "nope.tgz"), b.dest, Limits{})
	if err == nil || errors.Is(err, ErrRejected) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want not-exist, not ErrRejected", err)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	got := Limits{}.withDefaults()
	want := Limits{MaxTotalBytes: 512 << 20, MaxFiles: 20000, MaxFileBytes: 128 << 20, MaxRatio: 200, MaxDepth: 64}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	if got := (Limits{MaxFiles: 3}).withDefaults().MaxFiles; got != 3 {
		t.Errorf("explicit MaxFiles = %d, want 3", got)
	}
	for _, tc := range []struct {
		lim Limits
		ok  bool
	}{
		{Limits{}, true},
		{want, true},
		{Limits{MaxRatio: 1}, true},
		{Limits{MaxTotalBytes: -1}, false},
		{Limits{MaxFiles: -1}, false},
		{Limits{MaxFileBytes: -1}, false},
		{Limits{MaxDepth: -1}, false},
		{Limits{MaxRatio: -1}, false},
		{Limits{MaxRatio: 0.5}, false},
		{Limits{MaxRatio: nan()}, false},
	} {
		if err := tc.lim.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v, want ok %v", tc.lim, err, tc.ok)
		}
	}
	b := setup(t)
	if _, err := b.extract(t, buildTar(t, false, tfile("a", "a")), Limits{MaxFiles: -1}); err == nil || errors.Is(err, ErrRejected) {
		t.Errorf("invalid limits: err = %v, want a non-rejection error", err)
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}
