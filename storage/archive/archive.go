// Package archive extracts untrusted source archives safely, checks them
// without writing anything, and packs directories into archives for upload.
//
// Extract accepts tar, tar.gz and zip, detected by their magic bytes, and
// rejects, with an error wrapping ErrRejected, anything that could write
// outside the destination, surprise a scanner reading the result, or exhaust
// disk or memory:
//
//   - names that are absolute, contain a ".." component, a backslash, a
//     Windows drive letter, NUL, other control characters or invalid UTF-8,
//     or have more than Limits.MaxDepth components;
//   - symlinks whose target is absolute or resolves outside the root, taking
//     earlier symlinks into account and re-checked once the whole archive is
//     known; symlinks that stay inside the root are kept;
//   - hard links, unless they point to a regular file extracted earlier from
//     the same archive (then they are created as hard links to it);
//   - devices, FIFOs, sockets and other special entries;
//   - entries that repeat or conflict with an earlier one (a directory may be
//     repeated), and entries whose path goes through a symlink;
//   - more than Limits.MaxFiles entries, files over Limits.MaxFileBytes, more
//     than Limits.MaxTotalBytes in all, and a decompression ratio over
//     Limits.MaxRatio, all checked while streaming so nothing past a limit is
//     written;
//   - corrupt, truncated, encrypted or unknown input.
//
// Every write goes through an os.Root opened on the destination, so nothing
// can be written outside it even if the directory is changed concurrently.
// Extracted files get mode 0644, or 0755 if any execute bit was set;
// directories get 0755; ownership and times are not restored.
//
// Check makes the same decisions as Extract, with the same errors and Stats,
// without writing: no destination, no temporary file. It runs the one
// extractor, whose tree (an in-memory record of every path put so far) makes
// every decision, including those a disk would otherwise make for it (a name
// already taken, a hard link's target, an empty start); only the sink differs:
// Extract writes under an os.Root, Check reads file bodies through the same
// limit checks into nothing. The API uses Check to refuse hostile archives at
// the edge; the workers Extract.
//
// Cancelling ctx stops the extraction between entries and between reads; the
// error then wraps ctx.Err() and not ErrRejected, since nothing was decided
// about the archive. On any error the destination may hold a partial
// extraction (never a symlink leaving it): the caller, which created it,
// removes it.
package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Stats describes an extraction, or for Check the extraction it stands for.
type Stats struct {
	// Files is the number of regular files (including hard links) created.
	Files int
	// Bytes is the number of file bytes written.
	Bytes int64
}

// Extract extracts the archive at src into dest, an existing empty directory
// the caller created privately (for example with os.MkdirTemp). Errors that
// reject the archive wrap ErrRejected; see the package documentation. The
// returned Stats describe what was written, also on error.
func Extract(ctx context.Context, src, dest string, limits Limits) (Stats, error) {
	st, err := withFile(src, func(f *os.File, size int64) (Stats, error) {
		return extract(ctx, f, f, size, dest, limits)
	})
	if err != nil {
		return st, fmt.Errorf("extract %q: %w", src, err)
	}
	return st, nil
}

// withFile opens src, a regular file, and runs fn on it and its size.
func withFile(src string, fn func(f *os.File, size int64) (Stats, error)) (Stats, error) {
	f, err := os.Open(src)
	if err != nil {
		return Stats{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, err
	}
	if !fi.Mode().IsRegular() {
		return Stats{}, errors.New("not a regular file")
	}
	return fn(f, fi.Size())
}

// ExtractReader is Extract for an archive read from r, such as an HTTP
// request body. size is the archive's length in bytes, or -1 if unknown; a
// known size over the limits is rejected before anything is read.
//
// Zip archives need random access. If r also implements io.ReaderAt (as
// *os.File, *bytes.Reader and multipart.File do) and size is known, the
// archive is read through ReadAt from offset 0 to size, whatever r's current
// position. Otherwise a zip is first copied, up to the size limits, to an
// unnamed temporary file in dest's parent directory, which is removed before
// ExtractReader returns. Tar and tar.gz are always streamed.
func ExtractReader(ctx context.Context, r io.Reader, size int64, dest string, limits Limits) (Stats, error) {
	var ra io.ReaderAt
	if a, ok := r.(io.ReaderAt); ok && size >= 0 {
		ra = a
		r = io.NewSectionReader(a, 0, size)
	}
	st, err := extract(ctx, r, ra, size, dest, limits)
	if err != nil {
		return st, fmt.Errorf("extract archive stream: %w", err)
	}
	return st, nil
}

// Check makes every decision Extract would make on the archive at src, with
// the same errors and the same Stats, and writes nothing: no destination, no
// temporary file. File bodies are still read and decompressed, through the
// same limit checks, and thrown away; directories, symlinks and hard links
// are recorded only in memory. An archive Check accepts, Extract accepts.
func Check(ctx context.Context, src string, limits Limits) (Stats, error) {
	st, err := withFile(src, func(f *os.File, size int64) (Stats, error) {
		return check(ctx, f, f, size, limits)
	})
	if err != nil {
		return st, fmt.Errorf("check %q: %w", src, err)
	}
	return st, nil
}

// CheckReader is Check for an archive read from r, as ExtractReader is
// Extract. Tar and tar.gz are streamed. A zip needs random access, and
// CheckReader never spools one to disk: unless r implements io.ReaderAt and
// size is known, a zip fails with ErrNeedReaderAt (not a rejection).
func CheckReader(ctx context.Context, r io.Reader, size int64, limits Limits) (Stats, error) {
	var ra io.ReaderAt
	if a, ok := r.(io.ReaderAt); ok && size >= 0 {
		ra = a
		r = io.NewSectionReader(a, 0, size)
	}
	st, err := check(ctx, r, ra, size, limits)
	if err != nil {
		return st, fmt.Errorf("check archive stream: %w", err)
	}
	return st, nil
}

// ErrNeedReaderAt is returned by CheckReader for a zip read from a plain
// stream: checking it would mean writing it to disk first.
var ErrNeedReaderAt = errors.New("a zip archive needs an io.ReaderAt of known size to be checked without writing it")

// extract is the shared body of Extract and ExtractReader. ra, if not nil,
// reads the same bytes as r by offset.
func extract(ctx context.Context, r io.Reader, ra io.ReaderAt, size int64, dest string, limits Limits) (Stats, error) {
	lim, err := admit(ctx, size, limits)
	if err != nil {
		return Stats{}, err
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return Stats{}, fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	if err := emptyDir(root, dest); err != nil {
		return Stats{}, err
	}
	return run(ctx, r, ra, size, lim, dirSink{root}, filepath.Dir(dest))
}

// check is the shared body of Check and CheckReader.
func check(ctx context.Context, r io.Reader, ra io.ReaderAt, size int64, limits Limits) (Stats, error) {
	lim, err := admit(ctx, size, limits)
	if err != nil {
		return Stats{}, err
	}
	return run(ctx, r, ra, size, lim, discardSink{}, "")
}

// admit validates limits and rejects a known size over them, before anything
// is opened or read; it returns the limits with their defaults.
func admit(ctx context.Context, size int64, limits Limits) (Limits, error) {
	if err := limits.Validate(); err != nil {
		return Limits{}, err
	}
	lim := limits.withDefaults()
	if err := ctx.Err(); err != nil {
		return Limits{}, err
	}
	if size > lim.streamCap() {
		return Limits{}, reject("", ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", size, lim.streamCap()))
	}
	return lim, nil
}

// run reads the archive and puts what it accepts into s: the one set of rules
// behind both Extract and Check. spoolDir is where a zip read from a plain
// stream is spooled, or "" if it must not be.
func run(ctx context.Context, r io.Reader, ra io.ReaderAt, size int64, lim Limits, s sink, spoolDir string) (Stats, error) {
	m := &meter{ctx: ctx, outCap: lim.streamCap(), maxRatio: lim.MaxRatio}
	x := &extractor{sink: s, lim: lim, meter: m, tree: newTree()}
	// A small buffer keeps read-ahead, and so the ratio's slack, small.
	src := bufio.NewReaderSize(&inReader{r: r, m: m}, 4096)
	err := x.detect(src, ra, size, spoolDir)
	if ferr := x.finish(); ferr != nil && (err == nil || !errors.Is(ferr, ErrRejected)) {
		err = ferr // a failed clean-up outranks the first error
	}
	return x.stats, err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zipMagic  = []byte("PK\x03\x04")
	zipEmpty  = []byte("PK\x05\x06")
)

// detect picks the format from the magic bytes and extracts.
func (x *extractor) detect(src *bufio.Reader, ra io.ReaderAt, size int64, spoolDir string) error {
	ctx := x.meter.ctx
	magic, err := src.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		return readFailure(ctx, "", err)
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(src)
		if err != nil {
			return readFailure(ctx, "", err)
		}
		defer gz.Close()
		tarSrc := bufio.NewReaderSize(&outReader{r: gz, m: x.meter}, 4096)
		if err := x.tarStream(tarSrc, "gzip data is not a tar archive"); err != nil {
			return err
		}
		// Read to the end so the gzip checksum is verified; the meter still
		// bounds how much trailing data is accepted.
		if _, err := io.Copy(io.Discard, tarSrc); err != nil {
			return readFailure(ctx, "", err)
		}
		return nil
	case bytes.HasPrefix(magic, zipMagic) || bytes.HasPrefix(magic, zipEmpty):
		if ra == nil {
			spool, n, err := x.spool(src, spoolDir)
			if err != nil {
				return err
			}
			defer spool.Close()
			ra, size = spool, n
			x.meter.in = 0 // count the zip's reads afresh
		}
		return x.extractZip(&inReaderAt{r: ra, m: x.meter}, size)
	default:
		return x.tarStream(bufio.NewReaderSize(&outReader{r: src, m: x.meter}, 4096), "")
	}
}

// tarStream checks the tar magic and extracts.
func (x *extractor) tarStream(r *bufio.Reader, notTar string) error {
	block, err := r.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return readFailure(x.meter.ctx, "", err)
	}
	if !isTar(block) {
		return reject("", ReasonUnknownFormat, notTar)
	}
	return x.extractTar(r)
}

// spool copies a zip that arrived as a plain stream to an unnamed temporary
// file in dir (the destination's parent), so archive/zip can read it by
// offset. With no dir (Check) it refuses: nothing may be written.
func (x *extractor) spool(src io.Reader, dir string) (*os.File, int64, error) {
	if dir == "" {
		return nil, 0, ErrNeedReaderAt
	}
	f, err := os.CreateTemp(dir, ".tollgate-zip-*")
	if err != nil {
		return nil, 0, fmt.Errorf("create spool file: %w", err)
	}
	// Unlink at once: the open file stays usable and nothing is left behind.
	if err := os.Remove(f.Name()); err != nil {
		_ = f.Close()
		return nil, 0, fmt.Errorf("remove spool file %q: %w", f.Name(), err)
	}
	limit := x.lim.streamCap()
	n, err := io.Copy(f, io.LimitReader(src, limit+1))
	if err != nil {
		_ = f.Close()
		var serr *sourceError
		if errors.As(err, &serr) || x.meter.ctx.Err() != nil {
			return nil, 0, readFailure(x.meter.ctx, "", err)
		}
		return nil, 0, fmt.Errorf("write spool file: %w", err)
	}
	if n > limit {
		_ = f.Close()
		return nil, 0, reject("", ReasonTooLarge, fmt.Sprintf("more than %d bytes", limit))
	}
	return f, n, nil
}
