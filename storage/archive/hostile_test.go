package archive

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostileCase is one hostile archive, built in the test, and the reason it
// must be rejected for.
type hostileCase struct {
	name    string
	archive func(t *testing.T, b *testBundle) []byte
	lim     Limits
	reason  Reason
	// escape lists paths, relative to base, that must not exist.
	escape []string
	// inside lists paths, relative to dest, that must not exist.
	inside []string
}

// hostileCases are the hostile archives and limit cases that Extract must
// reject, and Check must reject alike.
func hostileCases() []hostileCase {
	deep := strings.Repeat("d/", 64) + "f"
	tgz := func(e ...tEntry) func(t *testing.T, b *testBundle) []byte {
		return func(t *testing.T, b *testBundle) []byte { return buildTar(t, true, e...) }
	}
	zp := func(e ...zEntry) func(t *testing.T, b *testBundle) []byte {
		return func(t *testing.T, b *testBundle) []byte { return buildZip(t, e...) }
	}
	return []hostileCase{
		{name: "tar zip slip", archive: tgz(tfile("../evil", "x")), reason: ReasonPathEscape, escape: []string{"evil"}},
		{name: "tar nested slip", archive: tgz(tfile("a/../../evil", "x")), reason: ReasonPathEscape, escape: []string{"evil"}},
		{name: "zip slip", archive: zp(zEntry{name: "../evil", body: "x"}), reason: ReasonPathEscape, escape: []string{"evil"}},
		{name: "zip slip into canary", archive: zp(zEntry{name: "ok.txt", body: "ok"}, zEntry{name: "../canary/evil", body: "x"}), reason: ReasonPathEscape, escape: []string{"canary/evil"}},
		{name: "tar absolute path", archive: func(t *testing.T, b *testBundle) []byte {
			return buildTar(t, true, tfile(filepath.Join(b.canary, "abs"), "x"))
		}, reason: ReasonAbsolutePath, escape: []string{"canary/abs"}},
		{name: "zip absolute path", archive: func(t *testing.T, b *testBundle) []byte {
			return buildZip(t, zEntry{name: filepath.Join(b.canary, "abs"), body: "x"})
		}, reason: ReasonAbsolutePath, escape: []string{"canary/abs"}},
		{name: "zip backslash traversal", archive: zp(zEntry{name: `..\evil`, body: "x"}), reason: ReasonWindowsPath, escape: []string{"evil"}, inside: []string{`..\evil`}},
		{name: "zip backslash inside name", archive: zp(zEntry{name: `a\..\..\evil`, body: "x"}), reason: ReasonWindowsPath, escape: []string{"evil"}},
		{name: "zip drive letter", archive: zp(zEntry{name: "C:/evil", body: "x"}), reason: ReasonWindowsPath, inside: []string{"C:"}},
		{name: "zip drive backslash", archive: zp(zEntry{name: `C:\evil`, body: "x"}), reason: ReasonWindowsPath},
		{name: "zip UNC path", archive: zp(zEntry{name: `\\host\share\evil`, body: "x"}), reason: ReasonWindowsPath},
		{name: "tar UNC slashes", archive: func(t *testing.T, b *testBundle) []byte {
			return buildTar(t, true, tfile("//"+filepath.Join(b.canary, "unc"), "x"))
		}, reason: ReasonAbsolutePath, escape: []string{"canary/unc"}},
		{name: "symlink to /etc then through it", archive: tgz(tsymlink("link", "/etc"), tfile("link/passwd", "root::0:0::/:/bin/sh")), reason: ReasonSymlinkEscape, inside: []string{"link"}},
		{name: "symlink to canary then through it", archive: func(t *testing.T, b *testBundle) []byte {
			return buildTar(t, true, tsymlink("link", b.canary), tfile("link/evil", "x"))
		}, reason: ReasonSymlinkEscape, escape: []string{"canary/evil"}, inside: []string{"link"}},
		{name: "relative symlink to sibling", archive: tgz(tsymlink("link", "../canary"), tfile("link/evil", "x")), reason: ReasonSymlinkEscape, escape: []string{"canary/evil"}, inside: []string{"link"}},
		{name: "symlink to ../..", archive: tgz(tsymlink("link", "../..")), reason: ReasonSymlinkEscape, inside: []string{"link"}},
		{name: "nested symlink escaping", archive: tgz(tsymlink("a/b/link", "../../../x")), reason: ReasonSymlinkEscape, inside: []string{"a/b/link"}},
		{name: "symlink chain", archive: tgz(tdir("sub/"), tsymlink("sub/x", ".."), tsymlink("b", "sub/x/..")), reason: ReasonSymlinkEscape, inside: []string{"b"}},
		// b looks fine until sub/x turns out to be a symlink: caught by the final check.
		{name: "symlink chain reversed", archive: tgz(tsymlink("b", "sub/x/.."), tdir("sub/"), tsymlink("sub/x", "..")), reason: ReasonSymlinkEscape},
		// Conservative: b is checked when seen, before x is known to be a symlink.
		{name: "symlink safe only via a later symlink", archive: tgz(tsymlink("b", "x/../../.."), tsymlink("x", "p/q/r")), reason: ReasonSymlinkEscape},
		{name: "symlink loop", archive: tgz(tsymlink("a", "b/x"), tsymlink("b", "a/y")), reason: ReasonSymlinkEscape},
		{name: "zip symlink escaping", archive: zp(zEntry{name: "link", body: "../../etc", mode: fs.ModeSymlink | 0o777}, zEntry{name: "link/passwd", body: "x"}), reason: ReasonSymlinkEscape, inside: []string{"link"}},
		{name: "zip absolute symlink", archive: zp(zEntry{name: "link", body: "/etc/passwd", mode: fs.ModeSymlink | 0o777}), reason: ReasonSymlinkEscape},
		{name: "path through in-root symlink", archive: tgz(tdir("sub/"), tsymlink("lnk", "sub"), tfile("lnk/f", "x")), reason: ReasonThroughSymlink, inside: []string{"sub/f"}},
		{name: "file over symlink", archive: tgz(tdir("sub/"), tfile("sub/f", "orig"), tsymlink("x", "sub/f"), tfile("x", "overwrite")), reason: ReasonDuplicate},
		{name: "dir over symlink", archive: tgz(tdir("sub/"), tsymlink("x", "sub"), tdir("x/")), reason: ReasonDuplicate},
		{name: "duplicate file", archive: tgz(tfile("a", "1"), tfile("a", "2")), reason: ReasonDuplicate},
		{name: "file over dir", archive: tgz(tdir("a/"), tfile("a", "2")), reason: ReasonDuplicate},
		{name: "hardlink outside", archive: tgz(thardlink("h", "../canary/x")), reason: ReasonHardlink, inside: []string{"h"}},
		{name: "hardlink absolute", archive: tgz(thardlink("h", "/etc/passwd")), reason: ReasonHardlink, inside: []string{"h"}},
		{name: "hardlink to symlink", archive: tgz(tfile("f", "x"), tsymlink("s", "f"), thardlink("h", "s")), reason: ReasonHardlink, inside: []string{"h"}},
		{name: "hardlink to dir", archive: tgz(tdir("d/"), thardlink("h", "d")), reason: ReasonHardlink, inside: []string{"h"}},
		{name: "hardlink to later file", archive: tgz(thardlink("h", "f"), tfile("f", "x")), reason: ReasonHardlink},
		{name: "char device", archive: tgz(tEntry{name: "null", typ: tar.TypeChar}), reason: ReasonSpecialFile, inside: []string{"null"}},
		{name: "block device", archive: tgz(tEntry{name: "sda", typ: tar.TypeBlock}), reason: ReasonSpecialFile, inside: []string{"sda"}},
		{name: "fifo", archive: tgz(tEntry{name: "pipe", typ: tar.TypeFifo}), reason: ReasonSpecialFile, inside: []string{"pipe"}},
		{name: "zip fifo", archive: zp(zEntry{name: "pipe", mode: fs.ModeNamedPipe | 0o644}), reason: ReasonSpecialFile},
		{name: "zip socket", archive: zp(zEntry{name: "sock", mode: fs.ModeSocket | 0o644}), reason: ReasonSpecialFile},
		{name: "zip device", archive: zp(zEntry{name: "dev", mode: fs.ModeDevice | fs.ModeCharDevice | 0o644}), reason: ReasonSpecialFile},
		{name: "tar unknown type", archive: tgz(tEntry{name: "v", typ: 'V'}), reason: ReasonUnsupported},
		{name: "deep nesting", archive: tgz(tfile(deep, "x")), reason: ReasonTooDeep},
		{name: "deep nesting, custom limit", archive: tgz(tfile("a/b/c/d", "x")), lim: Limits{MaxDepth: 3}, reason: ReasonTooDeep},
		{name: "long component", archive: tgz(tfile(strings.Repeat("n", 256), "x")), reason: ReasonInvalidName},
		{name: "zip NUL in name", archive: zp(zEntry{name: "a\x00.txt", body: "x"}), reason: ReasonInvalidName},
		{name: "zip invalid UTF-8", archive: zp(zEntry{name: "a\xff\xfe.txt", body: "x"}), reason: ReasonInvalidName},
		{name: "newline in name", archive: tgz(tfile("a\nb", "x")), reason: ReasonInvalidName},
		{name: "empty name", archive: zp(zEntry{name: "", body: "x"}), reason: ReasonInvalidName},
		{name: "file naming the root", archive: tgz(tfile(".", "x")), reason: ReasonInvalidName},
		{name: "single oversized file", archive: func(t *testing.T, b *testBundle) []byte {
			return buildTar(t, true, tfile("big", randomString(2<<20)))
		}, lim: Limits{MaxFileBytes: 1 << 20}, reason: ReasonFileTooLarge, inside: []string{"big"}},
		{name: "zip oversized file", archive: func(t *testing.T, b *testBundle) []byte {
			return buildZip(t, zEntry{name: "big", body: randomString(2 << 20)})
		}, lim: Limits{MaxFileBytes: 1 << 20}, reason: ReasonFileTooLarge, inside: []string{"big"}},
		{name: "total too large", archive: func(t *testing.T, b *testBundle) []byte {
			return buildTar(t, true, tfile("a", randomString(600<<10)), tfile("b", randomString(600<<10)))
		}, lim: Limits{MaxTotalBytes: 1 << 20}, reason: ReasonTooLarge, inside: []string{"b"}},
		{name: "zip too many entries", archive: zp(zEntry{name: "a"}, zEntry{name: "b"}, zEntry{name: "c"}), lim: Limits{MaxFiles: 2}, reason: ReasonTooManyFiles, inside: []string{"a"}},
		{name: "zip bomb", archive: func(t *testing.T, b *testBundle) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.Create("zeros")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.CopyN(w, zeros{}, 100<<20); err != nil {
				t.Fatal(err)
			}
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}, reason: ReasonBomb},
		{name: "zip overlapping entries", archive: func(t *testing.T, b *testBundle) []byte {
			data := buildZip(t, zEntry{name: "a", body: "aaaa"}, zEntry{name: "b", body: "bbbb"})
			// Point b's central directory record at a's local header.
			second := bytes.LastIndex(data, []byte("PK\x01\x02"))
			copy(data[second+42:], []byte{0, 0, 0, 0})
			return data
		}, reason: ReasonBomb},
		{name: "zip encrypted", archive: func(t *testing.T, b *testBundle) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.CreateHeader(&zip.FileHeader{Name: "secret", Method: zip.Store, Flags: 0x1})
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "ciphertext")
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}, reason: ReasonUnsupported},
		{name: "zip unknown method", archive: func(t *testing.T, b *testBundle) []byte {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.CreateRaw(&zip.FileHeader{Name: "x", Method: 99, CompressedSize64: 3, UncompressedSize64: 3})
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, "abc")
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			return buf.Bytes()
		}, reason: ReasonUnsupported},
		{name: "corrupt gzip", archive: func(t *testing.T, b *testBundle) []byte {
			return append([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, randomString(4096)...)
		}, reason: ReasonCorrupt},
		{name: "gzip with flipped byte", archive: func(t *testing.T, b *testBundle) []byte {
			data := buildTar(t, true, tfile("a.txt", randomString(64<<10)))
			data[len(data)/2] ^= 0xff
			return data
		}, reason: ReasonCorrupt},
		{name: "truncated tar.gz", archive: func(t *testing.T, b *testBundle) []byte {
			data := buildTar(t, true, tfile("a.txt", randomString(64<<10)))
			return data[:len(data)/2]
		}, reason: ReasonCorrupt},
		{name: "truncated tar", archive: func(t *testing.T, b *testBundle) []byte {
			data := buildTar(t, false, tfile("a.txt", randomString(64<<10)))
			return data[:len(data)/2]
		}, reason: ReasonCorrupt},
		{name: "truncated zip", archive: func(t *testing.T, b *testBundle) []byte {
			data := buildZip(t, zEntry{name: "a.txt", body: randomString(64 << 10)}, zEntry{name: "b.txt", body: "b"})
			return data[:len(data)/2]
		}, reason: ReasonCorrupt},
		{name: "gzip of non-tar", archive: func(t *testing.T, b *testBundle) []byte {
			var buf bytes.Buffer
			zw := gzip.NewWriter(&buf)
			io.WriteString(zw, "just text")
			zw.Close()
			return buf.Bytes()
		}, reason: ReasonUnknownFormat},
		{name: "unknown format", archive: func(t *testing.T, b *testBundle) []byte { return []byte("hello, world") }, reason: ReasonUnknownFormat},
		{name: "empty input", archive: func(t *testing.T, b *testBundle) []byte { return nil }, reason: ReasonUnknownFormat},
	}
}

// TestExtractRejectsHostileArchives builds each hostile archive in the test
// and checks it is rejected for the right reason, with a one-line error,
// without anything written outside dest.
func TestExtractRejectsHostileArchives(t *testing.T) {
	t.Parallel()
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.extract(t, tc.archive(t, b), tc.lim)
			assertRejected(t, err, tc.reason)
			t.Log(err)
			var targets []string
			for _, p := range tc.escape {
				targets = append(targets, filepath.Join(b.base, p))
			}
			for _, p := range tc.inside {
				targets = append(targets, filepath.Join(b.dest, p))
			}
			b.assertContained(t, targets...)
		})
	}
}

func TestExtractErrorNamesArchiveAndEntry(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src := filepath.Join(t.TempDir(), "app.tgz")
	if err := os.WriteFile(src, buildTar(t, true, tfile("../../etc/passwd", "x")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Extract(context.Background(), src, b.dest, Limits{})
	want := fmt.Sprintf(`extract %q: entry "../../etc/passwd": path escapes the archive root: archive rejected`, src)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant  %s", err, want)
	}
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Entry != "../../etc/passwd" || rej.Reason != ReasonPathEscape {
		t.Errorf("RejectError = %+v", rej)
	}
}

// TestExtractStopsGzipBomb streams 1 GiB of zeros through gzip, generated
// only as fast as it is read, and expects the ratio check to stop it after a
// few MiB.
func TestExtractStopsGzipBomb(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := streamTarGz(t, gzipBomb)
	_, err := ExtractReader(context.Background(), r, -1, b.dest, Limits{})
	assertRejected(t, err, ReasonBomb)
	t.Log(err)
	if written := diskBytes(t, b.dest); written > 4<<20 {
		t.Errorf("wrote %d bytes before stopping the bomb, want at most 4 MiB", written)
	}
	b.assertContained(t)
}

// TestExtractStopsManyFiles streams 100,000 tiny files and expects the
// default entry limit to stop it with no more than the limit extracted.
// With -short it uses a limit of 1,000, as creating 20,000 files takes
// seconds on slow disks.
func TestExtractStopsManyFiles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lim := Limits{}
	if testing.Short() {
		lim.MaxFiles = 1000
	}
	max := lim.withDefaults().MaxFiles
	r := streamTarGz(t, manyFiles)
	st, err := ExtractReader(context.Background(), r, -1, b.dest, lim)
	assertRejected(t, err, ReasonTooManyFiles)
	files := 0
	filepath.WalkDir(b.dest, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files++
		}
		return err
	})
	if files > max || st.Files != files {
		t.Errorf("extracted %d files (stats %d), limit %d", files, st.Files, max)
	}
	b.assertContained(t)
}

// TestExtractOversizedHeaderStopsBeforeReading declares a 129 MiB file and
// expects rejection from the header, before any of it is generated.
func TestExtractOversizedHeaderStopsBeforeReading(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := streamTarGz(t, hugeHeader)
	_, err := ExtractReader(context.Background(), r, -1, b.dest, Limits{})
	assertRejected(t, err, ReasonFileTooLarge)
	if _, err := os.Lstat(filepath.Join(b.dest, "huge")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("huge: Lstat err %v, want not exist", err)
	}
	b.assertContained(t)
}

// gzipBomb writes 1 GiB of zeros in 100 MiB files, generated only as fast
// as it is read.
func gzipBomb(tw *tar.Writer) error {
	const total, per = 1 << 30, 100 << 20
	for i := 0; i*per < total; i++ {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("zeros-%d", i), Typeflag: tar.TypeReg, Size: per, Mode: 0o644}); err != nil {
			return err
		}
		if _, err := io.CopyN(tw, zeros{}, per); err != nil {
			return err
		}
	}
	return nil
}

// manyFiles writes 100,000 one-byte files in 100 directories.
func manyFiles(tw *tar.Writer) error {
	for i := range 100_000 {
		name := fmt.Sprintf("d%03d/f%06d", i/1000, i)
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte{'x'}); err != nil {
			return err
		}
	}
	return nil
}

// hugeHeader declares, then writes, one file a byte over the default limit.
func hugeHeader(tw *tar.Writer) error {
	if err := tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: DefaultMaxFileBytes + 1, Mode: 0o644}); err != nil {
		return err
	}
	_, err := io.CopyN(tw, zeros{}, DefaultMaxFileBytes+1)
	return err
}

func TestExtractCancelled(t *testing.T) {
	t.Parallel()
	data := buildTar(t, true, tfile("a", randomString(256<<10)), tfile("b", randomString(256<<10)))

	t.Run("before start", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ExtractReader(ctx, bytes.NewReader(data), int64(len(data)), b.dest, Limits{})
		assertCancelled(t, err)
		b.assertContained(t)
	})
	t.Run("while reading", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		// Cancel as soon as the second half of the archive is being read.
		r := &cancelAfter{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel}
		_, err := ExtractReader(ctx, r, -1, b.dest, Limits{})
		assertCancelled(t, err)
		b.assertContained(t)
	})
}

func assertCancelled(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want context.Canceled and not ErrRejected", err)
	}
	if strings.ContainsAny(err.Error(), "\r\n") {
		t.Errorf("error is not one line: %q", err)
	}
}

// cancelAfter calls cancel once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

// failingReader returns err after the first n bytes of r.
type failingReader struct {
	r   io.Reader
	n   int
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	p = p[:min(len(p), f.n)]
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func TestExtractSourceReadErrorIsNotRejection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := buildTar(t, true, tfile("a", randomString(256<<10)))
	boom := errors.New("connection reset")
	_, err := ExtractReader(context.Background(), &failingReader{r: bytes.NewReader(data), n: len(data) / 2, err: boom}, -1, b.dest, Limits{})
	if !errors.Is(err, boom) || errors.Is(err, ErrRejected) {
		t.Fatalf("err = %v, want the read error and not ErrRejected", err)
	}
	b.assertContained(t)
}

// diskBytes sums the sizes of the regular files under dir.
func diskBytes(t testing.TB, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		n += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// randomString returns n incompressible bytes, the same on every run.
func randomString(n int) string {
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return string(b)
}
