// Package archive extracts untrusted source archives safely and packs
// directories into archives for upload.
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

// Stats describes an extraction.
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
	f, err := os.Open(src)
	if err != nil {
		return Stats{}, fmt.Errorf("extract %q: %w", src, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Stats{}, fmt.Errorf("extract %q: %w", src, err)
	}
	if !fi.Mode().IsRegular() {
		return Stats{}, fmt.Errorf("extract %q: not a regular file", src)
	}
	st, err := extract(ctx, f, f, fi.Size(), dest, limits)
	if err != nil {
		return st, fmt.Errorf("extract %q: %w", src, err)
	}
	return st, nil
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

// extract is the shared body of Extract and ExtractReader. ra, if not nil,
// reads the same bytes as r by offset.
func extract(ctx context.Context, r io.Reader, ra io.ReaderAt, size int64, dest string, limits Limits) (Stats, error) {
	if err := limits.Validate(); err != nil {
		return Stats{}, err
	}
	lim := limits.withDefaults()
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	if size > lim.streamCap() {
		return Stats{}, reject("", ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", size, lim.streamCap()))
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return Stats{}, fmt.Errorf("open destination: %w", err)
	}
	defer root.Close()
	if err := emptyDir(root, dest); err != nil {
		return Stats{}, err
	}
	m := &meter{ctx: ctx, outCap: lim.streamCap(), maxRatio: lim.MaxRatio}
	x := &extractor{root: root, lim: lim, meter: m, tree: newTree()}
	// A small buffer keeps read-ahead, and so the ratio's slack, small.
	src := bufio.NewReaderSize(&inReader{r: r, m: m}, 4096)
	err = x.detect(src, ra, size, dest)
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
func (x *extractor) detect(src *bufio.Reader, ra io.ReaderAt, size int64, dest string) error {
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
			spool, n, err := x.spool(src, dest)
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
// file in dest's parent, so archive/zip can read it by offset.
func (x *extractor) spool(src io.Reader, dest string) (*os.File, int64, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), ".tollgate-zip-*")
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
