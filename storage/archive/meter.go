package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// meter counts compressed bytes read from the source (in) and decompressed
// bytes produced (out), and stops the extraction as soon as out exceeds the
// stream cap or the ratio limit, or ctx is cancelled. Everything runs on one
// goroutine.
type meter struct {
	ctx      context.Context
	in, out  int64
	outCap   int64
	maxRatio float64
}

// addOut records n decompressed bytes and enforces the stream cap and ratio.
func (m *meter) addOut(n int) error {
	m.out += int64(n)
	if m.out > m.outCap {
		return reject("", ReasonTooLarge, fmt.Sprintf("more than %d bytes of archive data", m.outCap))
	}
	if m.out > ratioGrace && float64(m.out) > m.maxRatio*float64(m.in) {
		return reject("", ReasonBomb, fmt.Sprintf("%d bytes from %d compressed, limit %g", m.out, m.in, m.maxRatio))
	}
	return nil
}

// sourceError marks a failure to read the archive itself (an I/O error, not
// bad content), so it is not reported as a rejection.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return "read archive: " + e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// inReader counts compressed bytes read from the source.
type inReader struct {
	r io.Reader
	m *meter
}

func (r *inReader) Read(p []byte) (int, error) {
	if err := r.m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	r.m.in += int64(n)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// inReaderAt counts compressed bytes read from a zip archive.
type inReaderAt struct {
	r io.ReaderAt
	m *meter
}

func (r *inReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := r.m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.ReadAt(p, off)
	r.m.in += int64(n)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// outReader counts decompressed bytes and enforces the meter's limits. When a
// limit trips it returns no data, so the offending bytes are never written.
type outReader struct {
	r io.Reader
	m *meter
}

func (r *outReader) Read(p []byte) (int, error) {
	if err := r.m.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := r.r.Read(p)
	if lerr := r.m.addOut(n); lerr != nil {
		return 0, lerr
	}
	return n, err
}

// readFailure turns an error met while reading the archive into the error
// Extract returns: rejections pass through (taking entry if they have none),
// cancellation and source I/O errors stay operational, and anything else is
// the decoder complaining about corrupt input.
func readFailure(ctx context.Context, entry string, err error) error {
	var rej *RejectError
	if errors.As(err, &rej) {
		if rej.Entry == "" {
			rej.Entry = entry
		}
		return rej
	}
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		if entry != "" {
			return fmt.Errorf("entry %s: %w", quote(entry), cerr)
		}
		return cerr
	}
	var serr *sourceError
	if errors.As(err, &serr) {
		if entry != "" {
			return fmt.Errorf("entry %s: %w", quote(entry), serr)
		}
		return serr
	}
	return &RejectError{Entry: entry, Reason: ReasonCorrupt, Err: err}
}
