package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// isTar reports whether block, the first bytes of a stream, starts a tar
// archive: a POSIX or GNU "ustar" magic, or an all-zero block (an empty
// archive).
func isTar(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	if bytes.Equal(block[257:262], []byte("ustar")) {
		return true
	}
	return !bytes.ContainsFunc(block[:512], func(r rune) bool { return r != 0 })
}

// extractTar extracts a tar stream. r is already metered.
func (x *extractor) extractTar(r io.Reader) error {
	tr := tar.NewReader(r)
	last := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		// tar.ErrInsecurePath (only with GODEBUG=tarinsecurepath=0) comes with
		// a usable header; our own name checks decide.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			if last != "" {
				err = fmt.Errorf("after entry %s: %w", quote(last), err)
			}
			return readFailure(x.meter.ctx, "", err)
		}
		last = hdr.Name
		if err := x.begin(hdr.Name); err != nil {
			return err
		}
		if err := x.tarEntry(tr, hdr); err != nil {
			return err
		}
	}
}

func (x *extractor) tarEntry(tr *tar.Reader, hdr *tar.Header) error {
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00': // '\x00' is the deprecated TypeRegA
		return x.file(hdr.Name, fs.FileMode(hdr.Mode)&fs.ModePerm, hdr.Size, tr)
	case tar.TypeDir:
		return x.dir(hdr.Name)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(hdr.Name, hdr.Linkname)
	case tar.TypeChar:
		return reject(hdr.Name, ReasonSpecialFile, "character device")
	case tar.TypeBlock:
		return reject(hdr.Name, ReasonSpecialFile, "block device")
	case tar.TypeFifo:
		return reject(hdr.Name, ReasonSpecialFile, "fifo")
	case tar.TypeXGlobalHeader:
		return nil // global PAX metadata; nothing to extract
	default:
		return reject(hdr.Name, ReasonUnsupported, fmt.Sprintf("tar type flag %q", hdr.Typeflag))
	}
}
