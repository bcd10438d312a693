package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"
)

// extractAndCheck runs data through Extract (into a fresh dest of b), Check
// (from the same file), CheckReader (from memory) and the extractor under a
// strictSink, and fails unless all four give the same outcome. It returns
// Extract's result.
func extractAndCheck(t *testing.T, b *testBundle, data []byte, lim Limits) (Stats, error) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "input.archive")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	est, eerr := Extract(ctx, src, b.dest, lim)
	cst, cerr := Check(ctx, src, lim)
	assertSameOutcome(t, "Check", est, eerr, cst, cerr)
	rst, rerr := CheckReader(ctx, bytes.NewReader(data), int64(len(data)), lim)
	assertSameOutcome(t, "CheckReader", est, eerr, rst, rerr)
	sst, serr := runStrict(t, data, lim)
	assertSameOutcome(t, "strict sink", est, eerr, sst, serr)
	return est, eerr
}

// assertSameOutcome fails unless Extract's result and another's agree: both
// nil, or both rejecting with the same RejectError (reason, entry, detail and
// cause), and in either case the same Stats. Any other error fails.
func assertSameOutcome(t testing.TB, what string, est Stats, eerr error, got Stats, gerr error) {
	t.Helper()
	if est != got {
		t.Errorf("%s: stats %+v, Extract %+v", what, got, est)
	}
	if eerr == nil && gerr == nil {
		return
	}
	var erej, grej *RejectError
	if !errors.As(eerr, &erej) || !errors.As(gerr, &grej) {
		t.Fatalf("%s: err %v, Extract err %v; want both nil or both rejections", what, gerr, eerr)
	}
	if erej.Error() != grej.Error() || erej.Reason != grej.Reason || erej.Entry != grej.Entry {
		t.Errorf("%s: rejection %q (reason %q, entry %q)\nExtract:  %q (reason %q, entry %q)", what, grej, grej.Reason, grej.Entry, erej, erej.Reason, erej.Entry)
	}
}

// TestCheckRejectsHostileArchivesAsExtractDoes runs every hostile and limit
// case of TestExtractRejectsHostileArchives through Extract and Check alike.
func TestCheckRejectsHostileArchivesAsExtractDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := extractAndCheck(t, b, tc.archive(t, b), tc.lim)
			assertRejected(t, err, tc.reason)
			b.assertContained(t)
		})
	}
}

// TestCheckAcceptsWhatExtractAccepts gives every happy archive to Extract
// and Check and expects both to accept it with the same Stats.
func TestCheckAcceptsWhatExtractAccepts(t *testing.T) {
	t.Parallel()
	tes, zes := smallApp()
	for _, tc := range []struct {
		name string
		data func(t *testing.T) []byte
		want Stats
	}{
		{"tar", func(t *testing.T) []byte { return happyTar(t, false) }, Stats{Files: 4, Bytes: 17}},
		{"tar.gz", func(t *testing.T) []byte { return happyTar(t, true) }, Stats{Files: 4, Bytes: 17}},
		{"zip", func(t *testing.T) []byte { return happyZip(t) }, Stats{Files: 3, Bytes: 623}},
		{"small app tar.gz", func(t *testing.T) []byte { return buildTar(t, true, tes...) }, Stats{}},
		{"small app zip", func(t *testing.T) []byte { return buildZip(t, zes...) }, Stats{}},
		{"empty tar", func(t *testing.T) []byte { return buildTar(t, false) }, Stats{}},
		{"empty zip", func(t *testing.T) []byte { return buildZip(t) }, Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			st, err := extractAndCheck(t, b, tc.data(t), Limits{})
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if tc.want != (Stats{}) && st != tc.want {
				t.Errorf("stats = %+v, want %+v", st, tc.want)
			}
			b.assertContained(t)
		})
	}
}

// TestCheckStopsStreamsAsExtractDoes runs the streaming limit cases (a gzip
// bomb, too many files, a file declared too large, a known size over the
// limits) through ExtractReader and CheckReader.
func TestCheckStopsStreamsAsExtractDoes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		gen    func(tw *tar.Writer) error
		lim    Limits
		reason Reason
	}{
		{"gzip bomb", gzipBomb, Limits{}, ReasonBomb},
		// The entry limit is the same code at any value; 1,000 keeps the
		// extraction side quick.
		{"many files", manyFiles, Limits{MaxFiles: 1000}, ReasonTooManyFiles},
		{"oversized header", hugeHeader, Limits{}, ReasonFileTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			est, eerr := ExtractReader(ctx, streamTarGz(t, tc.gen), -1, b.dest, tc.lim)
			cst, cerr := CheckReader(ctx, streamTarGz(t, tc.gen), -1, tc.lim)
			assertRejected(t, cerr, tc.reason)
			assertSameOutcome(t, "CheckReader", est, eerr, cst, cerr)
			b.assertContained(t)
		})
	}
	t.Run("known size over the limits", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lim := Limits{MaxTotalBytes: 1, MaxFiles: 1}
		size := lim.withDefaults().streamCap() + 1
		est, eerr := ExtractReader(context.Background(), bytes.NewReader(nil), size, b.dest, lim)
		cst, cerr := CheckReader(context.Background(), bytes.NewReader(nil), size, lim)
		assertRejected(t, cerr, ReasonTooLarge)
		assertSameOutcome(t, "CheckReader", est, eerr, cst, cerr)
	})
}

// TestCheckFailsWithoutRejectingAsExtractDoes covers the errors that are not
// rejections: invalid limits, a missing source, cancellation, a failing
// source, and a zip CheckReader cannot read by offset.
func TestCheckFailsWithoutRejectingAsExtractDoes(t *testing.T) {
	t.Parallel()
	data := buildTar(t, true, tfile("a", randomString(256<<10)), tfile("b", randomString(256<<10)))
	notRejected := func(t *testing.T, err error, want error) {
		t.Helper()
		if err == nil || errors.Is(err, ErrRejected) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("err = %v, want %v and not ErrRejected", err, want)
		}
	}
	t.Run("invalid limits", func(t *testing.T) {
		t.Parallel()
		src := filepath.Join(t.TempDir(), "a.tgz")
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Check(context.Background(), src, Limits{MaxFiles: -1})
		notRejected(t, err, nil)
	})
	t.Run("missing source", func(t *testing.T) {
		t.Parallel()
		_, err := Check(context.Background(), filepath.Join(t.TempDir(), "nope.tgz"), Limits{})
		notRejected(t, err, fs.ErrNotExist)
	})
	t.Run("source is a directory", func(t *testing.T) {
		t.Parallel()
		_, err := Check(context.Background(), t.TempDir(), Limits{})
		notRejected(t, err, nil)
	})
	t.Run("cancelled before start", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := CheckReader(ctx, bytes.NewReader(data), int64(len(data)), Limits{})
		assertCancelled(t, err)
	})
	t.Run("cancelled while reading", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_, err := CheckReader(ctx, &cancelAfter{r: bytes.NewReader(data), n: len(data) / 2, cancel: cancel}, -1, Limits{})
		assertCancelled(t, err)
	})
	t.Run("source read error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("connection reset")
		_, err := CheckReader(context.Background(), &failingReader{r: bytes.NewReader(data), n: len(data) / 2, err: boom}, -1, Limits{})
		notRejected(t, err, boom)
	})
	t.Run("zip from a plain stream", func(t *testing.T) {
		t.Parallel()
		zipData := happyZip(t)
		_, err := CheckReader(context.Background(), io.MultiReader(bytes.NewReader(zipData)), -1, Limits{})
		notRejected(t, err, ErrNeedReaderAt)
	})
}

// TestCheckWritesNothing checks every happy and hostile archive, from a file
// and from a stream, with TMPDIR pointing at an empty directory, and expects
// that directory and the source's to hold afterwards exactly what they held
// before. (Check takes no destination; those are the only places it could
// write.)
func TestCheckWritesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srcDir := t.TempDir()
	b := setup(t)
	archives := [][]byte{happyTar(t, false), happyTar(t, true), happyZip(t)}
	for _, tc := range hostileCases() {
		archives = append(archives, tc.archive(t, b))
	}
	for i, data := range archives {
		src := filepath.Join(srcDir, fmt.Sprintf("a%03d", i))
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := listAll(t, srcDir)
	for i, data := range archives {
		Check(context.Background(), filepath.Join(srcDir, fmt.Sprintf("a%03d", i)), Limits{})
		CheckReader(context.Background(), io.MultiReader(bytes.NewReader(data)), -1, Limits{})
	}
	if got := listAll(t, srcDir); !slices.Equal(got, before) {
		t.Errorf("source dir holds %q after Check, %q before", got, before)
	}
	if got := listAll(t, tmp); len(got) > 0 {
		t.Errorf("TMPDIR holds %q after Check, want nothing", got)
	}
	if got := listAll(t, b.base); !slices.Equal(got, []string{"canary", "dest"}) {
		t.Errorf("bundle holds %q, want canary and dest only", got)
	}
}

// listAll lists every path under dir, relative to it, sorted.
func listAll(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// strictSink is an in-memory file system that refuses what the kernel would
// refuse: a name that exists (O_EXCL create, mkdir, symlink, link), a parent
// that is not a directory, a hard link to anything but a regular file,
// removing what is not there. Run under it, the extractor is never refused:
// the tree decided first, which is why a discardSink can stand in for the
// disk. A refusal comes back as an operational error, which
// assertSameOutcome reports.
type strictSink struct{ kinds map[string]kind }

var _ sink = (*strictSink)(nil)

func (s *strictSink) free(name string) error {
	if s.kinds[name] != kindNone {
		return fmt.Errorf("strict sink: %q exists", name)
	}
	if dir := path.Dir(name); dir != "." && s.kinds[dir] != kindDir {
		return fmt.Errorf("strict sink: parent of %q is not a directory", name)
	}
	return nil
}

func (s *strictSink) put(name string, k kind) error {
	if err := s.free(name); err != nil {
		return err
	}
	s.kinds[name] = k
	return nil
}

func (s *strictSink) mkdir(name string) error      { return s.put(name, kindDir) }
func (s *strictSink) symlink(_, name string) error { return s.put(name, kindSymlink) }
func (s *strictSink) create(name string, _ fs.FileMode) (io.WriteCloser, error) {
	return discardFile{}, s.put(name, kindFile)
}

func (s *strictSink) link(old, name string) error {
	if s.kinds[old] != kindFile {
		return fmt.Errorf("strict sink: hard link to %q, not a regular file", old)
	}
	return s.put(name, kindFile)
}

func (s *strictSink) remove(name string) error {
	if s.kinds[name] == kindNone {
		return fmt.Errorf("strict sink: remove %q, which is not there", name)
	}
	delete(s.kinds, name)
	return nil
}

// runStrict runs the extractor on data under a fresh strictSink.
func runStrict(t testing.TB, data []byte, limits Limits) (Stats, error) {
	t.Helper()
	lim, err := admit(context.Background(), int64(len(data)), limits)
	if err != nil {
		return Stats{}, err
	}
	r := bytes.NewReader(data)
	return run(context.Background(), r, r, int64(len(data)), lim, &strictSink{kinds: map[string]kind{}}, "")
}
