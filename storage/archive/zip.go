package archive

import (
	"archive/zip"
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
)

// extractZip extracts a zip archive. ra is already metered.
func (x *extractor) extractZip(ra io.ReaderAt, size int64) error {
	// archive/zip reads the whole central directory into memory before
	// anything can be checked, so count its records first, cheaply.
	n, err := countZipRecords(ra, size, x.lim.MaxFiles+1)
	if err != nil {
		return readFailure(x.meter.ctx, "", err)
	}
	if n > x.lim.MaxFiles {
		return reject("", ReasonTooManyFiles, fmt.Sprintf("more than %d entries in the central directory", x.lim.MaxFiles))
	}
	zr, err := zip.NewReader(ra, size)
	// zip.ErrInsecurePath (only with GODEBUG=zipinsecurepath=0) comes with a
	// usable reader; our own name checks decide.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return readFailure(x.meter.ctx, "", err)
	}
	if len(zr.File) > x.lim.MaxFiles {
		return reject("", ReasonTooManyFiles, fmt.Sprintf("%d entries, limit %d", len(zr.File), x.lim.MaxFiles))
	}
	if err := checkZipOverlap(zr.File, size); err != nil {
		return readFailure(x.meter.ctx, "", err)
	}
	for _, f := range zr.File {
		if err := x.begin(f.Name); err != nil {
			return err
		}
		if err := x.zipEntry(f); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) zipEntry(f *zip.File) error {
	if f.Flags&0x1 != 0 {
		return reject(f.Name, ReasonUnsupported, "encrypted")
	}
	mode := f.Mode()
	switch t := mode.Type(); {
	case t&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return reject(f.Name, ReasonSpecialFile, "device")
	case t&fs.ModeNamedPipe != 0:
		return reject(f.Name, ReasonSpecialFile, "fifo")
	case t&fs.ModeSocket != 0:
		return reject(f.Name, ReasonSpecialFile, "socket")
	case t == fs.ModeDir:
		return x.dir(f.Name)
	case t == fs.ModeSymlink:
		return x.zipSymlink(f)
	case t == 0:
		if f.UncompressedSize64 > uint64(x.lim.MaxFileBytes) {
			return reject(f.Name, ReasonFileTooLarge, fmt.Sprintf("declares %d bytes, limit %d", f.UncompressedSize64, x.lim.MaxFileBytes))
		}
		rc, err := x.zipOpen(f)
		if err != nil {
			return err
		}
		defer rc.Close()
		return x.file(f.Name, mode.Perm(), int64(f.UncompressedSize64), &outReader{r: rc, m: x.meter})
	default:
		return reject(f.Name, ReasonUnsupported, fmt.Sprintf("file mode %v", mode))
	}
}

// zipSymlink extracts a zip symlink, whose target is the entry's content.
func (x *extractor) zipSymlink(f *zip.File) error {
	if f.UncompressedSize64 > maxTargetLen {
		return reject(f.Name, ReasonSymlinkEscape, fmt.Sprintf("target longer than %d bytes", maxTargetLen))
	}
	rc, err := x.zipOpen(f)
	if err != nil {
		return err
	}
	defer rc.Close()
	target, err := io.ReadAll(io.LimitReader(&outReader{r: rc, m: x.meter}, maxTargetLen+1))
	if err != nil {
		return readFailure(x.meter.ctx, f.Name, err)
	}
	if len(target) > maxTargetLen {
		return reject(f.Name, ReasonSymlinkEscape, fmt.Sprintf("target longer than %d bytes", maxTargetLen))
	}
	return x.symlink(f.Name, string(target))
}

func (x *extractor) zipOpen(f *zip.File) (io.ReadCloser, error) {
	rc, err := f.Open()
	if errors.Is(err, zip.ErrAlgorithm) {
		return nil, reject(f.Name, ReasonUnsupported, fmt.Sprintf("compression method %d", f.Method))
	}
	if err != nil {
		return nil, readFailure(x.meter.ctx, f.Name, err)
	}
	return rc, nil
}

// checkZipOverlap rejects entries whose compressed data overlaps another's or
// lies outside the archive: overlapping entries are how the most efficient zip
// bombs reuse one compressed kernel many times.
func checkZipOverlap(files []*zip.File, size int64) error {
	type span struct {
		start, end int64
		name       string
	}
	spans := make([]span, 0, len(files))
	for _, f := range files {
		if f.CompressedSize64 == 0 {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			return &RejectError{Entry: f.Name, Reason: ReasonCorrupt, Err: err}
		}
		if f.CompressedSize64 > uint64(size) || off < 0 || off > size-int64(f.CompressedSize64) {
			return reject(f.Name, ReasonCorrupt, "data lies outside the archive")
		}
		spans = append(spans, span{off, off + int64(f.CompressedSize64), f.Name})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if spans[i].start < spans[i-1].end {
			return reject(spans[i].name, ReasonBomb, "data overlaps entry "+quote(spans[i-1].name))
		}
	}
	return nil
}

// Zip record layout constants (APPNOTE.TXT).
const (
	zipEndSig      = 0x06054b50
	zipEnd64LocSig = 0x07064b50
	zipEnd64Sig    = 0x06064b50
	zipDirSig      = 0x02014b50
	zipEndLen      = 22
	zipEnd64LocLen = 20
	zipEnd64Len    = 56
	zipDirLen      = 46
)

// countZipRecords counts central directory records the way archive/zip will
// read them, stopping at limit, so that a directory of millions of records is
// rejected before archive/zip allocates them. It mirrors the start-of-directory
// logic of archive/zip's readDirectoryEnd and counts from both places that
// logic can pick, returning the larger count. If the end record cannot be
// parsed it returns 0 and leaves the error to archive/zip.
func countZipRecords(ra io.ReaderAt, size int64, limit int) (int, error) {
	var buf []byte
	var endOff int64 = -1
	for _, bLen := range []int64{1024, 65 * 1024} {
		bLen = min(bLen, size)
		buf = make([]byte, bLen)
		if _, err := ra.ReadAt(buf, size-bLen); err != nil && err != io.EOF {
			return 0, err
		}
		if p := findZipEnd(buf); p >= 0 {
			buf = buf[p:]
			endOff = size - bLen + int64(p)
			break
		}
		if bLen == size {
			break
		}
	}
	if endOff < 0 {
		return 0, nil
	}
	le := binary.LittleEndian
	records := uint64(le.Uint16(buf[10:]))
	dirSize := uint64(le.Uint32(buf[12:]))
	dirOff := uint64(le.Uint32(buf[16:]))
	if records == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		if loc := endOff - zipEnd64LocLen; loc >= 0 {
			b := make([]byte, zipEnd64LocLen)
			if _, err := ra.ReadAt(b, loc); err != nil && err != io.EOF {
				return 0, err
			}
			if le.Uint32(b) == zipEnd64LocSig && le.Uint32(b[4:]) == 0 && le.Uint32(b[16:]) == 1 {
				p := le.Uint64(b[8:])
				if p > math.MaxInt64-zipEnd64Len {
					return 0, nil
				}
				e := make([]byte, zipEnd64Len)
				if _, err := ra.ReadAt(e, int64(p)); err != nil && err != io.EOF {
					return 0, nil
				}
				if le.Uint32(e) != zipEnd64Sig {
					return 0, nil
				}
				endOff = int64(p)
				dirSize = le.Uint64(e[40:])
				dirOff = le.Uint64(e[48:])
			}
		}
	}
	if dirSize > math.MaxInt64 || dirOff > math.MaxInt64 {
		return 0, nil
	}
	base := endOff - int64(dirSize) - int64(dirOff)
	best := 0
	for _, start := range []int64{int64(dirOff), base + int64(dirOff)} {
		if start < 0 || start >= size {
			continue
		}
		n, err := countDirRecords(io.NewSectionReader(ra, start, size-start), limit)
		if err != nil {
			return 0, err
		}
		best = max(best, n)
	}
	return best, nil
}

// countDirRecords counts consecutive central directory records, up to limit.
func countDirRecords(r io.Reader, limit int) (int, error) {
	br := bufio.NewReader(r)
	var hdr [zipDirLen]byte
	n := 0
	for n < limit {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return n, nil
			}
			return 0, err
		}
		if binary.LittleEndian.Uint32(hdr[:]) != zipDirSig {
			return n, nil
		}
		skip := int64(binary.LittleEndian.Uint16(hdr[28:])) +
			int64(binary.LittleEndian.Uint16(hdr[30:])) +
			int64(binary.LittleEndian.Uint16(hdr[32:]))
		if got, err := br.Discard(int(skip)); int64(got) < skip {
			if err == io.EOF {
				return n, nil
			}
			return 0, err
		}
		n++
	}
	return n, nil
}

// findZipEnd finds the end of central directory record in b the way
// archive/zip does.
func findZipEnd(b []byte) int {
	for i := len(b) - zipEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == zipEndSig {
			n := int(binary.LittleEndian.Uint16(b[i+zipEndLen-2:]))
			if n+zipEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}
