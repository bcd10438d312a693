package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// fuzzLimits keeps each fuzz run small.
var fuzzLimits = Limits{MaxTotalBytes: 1 << 20, MaxFiles: 64, MaxFileBytes: 256 << 10, MaxDepth: 16}

// fuzzSeeds are entry lists covering the happy path and each hostile shape.
func fuzzTarSeeds() [][]tEntry {
	return [][]tEntry{
		{tdir("app/"), tfile("app/main.go", "package main"), tsymlink("app/link", "main.go"), thardlink("app/hard", "app/main.go")},
		{tfile("../evil", "x")},
		{tfile("/abs", "x")},
		{tsymlink("link", "/etc"), tfile("link/passwd", "x")},
		{tsymlink("link", "../.."), tdir("sub/"), tsymlink("sub/x", ".."), tsymlink("b", "sub/x/..")},
		{tdir("sub/"), tsymlink("l", "sub"), tfile("l/f", "x"), tfile("l", "y")},
		{thardlink("h", "../x"), tEntry{name: "c", typ: tar.TypeChar}, tEntry{name: "p", typ: tar.TypeFifo}},
		{tfile(strings.Repeat("a/", 20)+"f", "x"), tfile("a\nb", "x")},
		{tEntry{name: "g", typ: tar.TypeXGlobalHeader}, tfile("x", strings.Repeat("0", 4096))},
	}
}

func FuzzExtractTar(f *testing.F) {
	for _, entries := range fuzzTarSeeds() {
		f.Add(buildTar(f, false, entries...))
		f.Add(buildTar(f, true, entries...))
	}
	f.Fuzz(fuzzExtract)
}

func FuzzExtractZip(f *testing.F) {
	for _, entries := range fuzzZipSeeds() {
		f.Add(buildZip(f, entries...))
	}
	f.Fuzz(fuzzExtract)
}

// fuzzZipSeeds are zip entry lists covering the happy path and each hostile
// shape.
func fuzzZipSeeds() [][]zEntry {
	return [][]zEntry{
		{{name: "app/", mode: fs.ModeDir | 0o755}, {name: "app/main.go", body: "package main"}, {name: "app/link", body: "main.go", mode: fs.ModeSymlink | 0o777}, {name: "app/run", body: "#!/bin/sh", mode: 0o4755, store: true}},
		{{name: "../evil", body: "x"}},
		{{name: `..\evil`, body: "x"}, {name: "C:/x", body: "x"}},
		{{name: "link", body: "../../etc", mode: fs.ModeSymlink | 0o777}, {name: "link/passwd", body: "x"}},
		{{name: "l", body: "sub", mode: fs.ModeSymlink | 0o777}, {name: "sub/", mode: fs.ModeDir | 0o755}, {name: "l/x", body: "x"}},
		{{name: "p", mode: fs.ModeNamedPipe | 0o644}, {name: "a\x00b", body: "x"}},
		{{name: "zeros", body: strings.Repeat("\x00", 64<<10)}},
	}
}

// fuzzExtract extracts data and checks it never panics, fails only by
// rejecting the archive, and never writes outside dest.
func fuzzExtract(t *testing.T, data []byte) {
	b := setup(t)
	st, err := ExtractReader(context.Background(), bytes.NewReader(data), int64(len(data)), b.dest, fuzzLimits)
	if err != nil {
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v, want nil or ErrRejected", err)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("error is not one line: %q", err)
		}
	}
	if st.Files > fuzzLimits.MaxFiles || st.Bytes > fuzzLimits.MaxTotalBytes {
		t.Fatalf("stats %+v exceed limits %+v", st, fuzzLimits)
	}
	b.assertContained(t)
}

// FuzzCheckMatchesExtract checks that Check decides every input as Extract
// does: both accept it, or both reject it with the same reason, and give the
// same Stats; and that the extractor under a strictSink is never refused by
// it. Any error that is not a rejection fails (ctx is never cancelled here).
func FuzzCheckMatchesExtract(f *testing.F) {
	for _, entries := range fuzzTarSeeds() {
		f.Add(buildTar(f, false, entries...))
		f.Add(buildTar(f, true, entries...))
	}
	for _, entries := range fuzzZipSeeds() {
		f.Add(buildZip(f, entries...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := setup(t)
		ctx := context.Background()
		est, eerr := ExtractReader(ctx, bytes.NewReader(data), int64(len(data)), b.dest, fuzzLimits)
		cst, cerr := CheckReader(ctx, bytes.NewReader(data), int64(len(data)), fuzzLimits)
		assertSameOutcome(t, "CheckReader", est, eerr, cst, cerr)
		sst, serr := runStrict(t, data, fuzzLimits)
		assertSameOutcome(t, "strict sink", est, eerr, sst, serr)
		b.assertContained(t)
	})
}
