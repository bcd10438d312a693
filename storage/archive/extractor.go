package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// extractor decides every entry from its tree and the limits, then hands what
// it accepts to its sink: a dirSink writes it under an os.Root (Extract), a
// discardSink drops it (Check). It enforces the entry, size and name limits;
// the meter enforces the stream limits. Every decision is made before the sink
// is called, so both sinks see the same archive accepted or rejected alike.
type extractor struct {
	sink     sink
	lim      Limits
	meter    *meter
	tree     *tree
	symlinks []string // in extraction order, for the final check
	entries  int
	stats    Stats
	buf      []byte
}

// begin counts one entry and honours cancellation between entries.
func (x *extractor) begin(raw string) error {
	if err := x.meter.ctx.Err(); err != nil {
		return err
	}
	if x.entries++; x.entries > x.lim.MaxFiles {
		return reject(raw, ReasonTooManyFiles, fmt.Sprintf("limit %d", x.lim.MaxFiles))
	}
	return nil
}

// name validates raw; rootOK says whether the entry may name the root itself.
func (x *extractor) name(raw string, rootOK bool) (string, error) {
	name, rej := checkName(raw, x.lim.MaxDepth)
	if rej != nil {
		return "", rej
	}
	if name == "" && !rootOK {
		return "", reject(raw, ReasonInvalidName, "names the archive root")
	}
	return name, nil
}

// prepare checks that name is free and creates its missing parents.
func (x *extractor) prepare(raw, name string) error {
	missing, rej := x.tree.missingParents(raw, name)
	if rej != nil {
		return rej
	}
	if x.tree.kinds[name] != kindNone {
		return reject(raw, ReasonDuplicate, "")
	}
	for _, p := range missing {
		if err := x.mkdir(raw, p); err != nil {
			return err
		}
	}
	return nil
}

func (x *extractor) mkdir(raw, name string) error {
	if err := x.sink.mkdir(name); err != nil {
		return fmt.Errorf("entry %s: %w", quote(raw), err)
	}
	x.tree.kinds[name] = kindDir
	return nil
}

// dir extracts a directory entry. Repeating a directory is allowed.
func (x *extractor) dir(raw string) error {
	name, err := x.name(raw, true)
	if err != nil || name == "" {
		return err
	}
	if x.tree.kinds[name] == kindDir {
		return nil
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	return x.mkdir(raw, name)
}

// file extracts a regular file of the given declared size (-1 if unknown)
// from body. The mode is 0755 if any execute bit is set, else 0644.
func (x *extractor) file(raw string, mode fs.FileMode, size int64, body io.Reader) error {
	name, err := x.name(raw, false)
	if err != nil {
		return err
	}
	if size > x.lim.MaxFileBytes {
		return reject(raw, ReasonFileTooLarge, fmt.Sprintf("%d bytes, limit %d", size, x.lim.MaxFileBytes))
	}
	if size > x.lim.MaxTotalBytes-x.stats.Bytes {
		return reject(raw, ReasonTooLarge, fmt.Sprintf("more than %d bytes of files", x.lim.MaxTotalBytes))
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := x.sink.create(name, perm)
	if err != nil {
		return fmt.Errorf("entry %s: %w", quote(raw), err)
	}
	x.tree.kinds[name] = kindFile
	x.stats.Files++
	if err := x.copy(raw, f, body); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("entry %s: close file: %w", quote(raw), err)
	}
	return nil
}

// copy streams body into f, checking the per-file and total limits before
// each write so that nothing past a limit reaches the sink.
func (x *extractor) copy(raw string, f io.Writer, body io.Reader) error {
	if x.buf == nil {
		x.buf = make([]byte, 32<<10)
	}
	var written int64
	for {
		n, rerr := body.Read(x.buf)
		if n > 0 {
			written += int64(n)
			if written > x.lim.MaxFileBytes {
				return reject(raw, ReasonFileTooLarge, fmt.Sprintf("over %d bytes", x.lim.MaxFileBytes))
			}
			if int64(n) > x.lim.MaxTotalBytes-x.stats.Bytes {
				return reject(raw, ReasonTooLarge, fmt.Sprintf("more than %d bytes of files", x.lim.MaxTotalBytes))
			}
			if _, err := f.Write(x.buf[:n]); err != nil {
				return fmt.Errorf("entry %s: write file: %w", quote(raw), err)
			}
			x.stats.Bytes += int64(n)
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return readFailure(x.meter.ctx, raw, rerr)
		}
	}
}

// symlink extracts a symlink after checking that its target stays inside
// the root given everything extracted so far.
func (x *extractor) symlink(raw, target string) error {
	name, err := x.name(raw, false)
	if err != nil {
		return err
	}
	if rej := checkTarget(target); rej != nil {
		rej.Entry = raw
		return rej
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	x.tree.kinds[name] = kindSymlink
	x.tree.targets[name] = target
	if rej := x.tree.checkSymlink(name); rej != nil {
		rej.Entry = raw
		return rej
	}
	if err := x.sink.symlink(target, name); err != nil {
		return fmt.Errorf("entry %s: %w", quote(raw), err)
	}
	x.symlinks = append(x.symlinks, name)
	return nil
}

// hardlink extracts a hard link to a regular file extracted earlier; any
// other target is rejected.
func (x *extractor) hardlink(raw, target string) error {
	name, err := x.name(raw, false)
	if err != nil {
		return err
	}
	old, rej := checkName(target, x.lim.MaxDepth)
	if rej != nil || x.tree.kinds[old] != kindFile {
		return reject(raw, ReasonHardlink, "target "+quote(target))
	}
	if err := x.prepare(raw, name); err != nil {
		return err
	}
	if err := x.sink.link(old, name); err != nil {
		return fmt.Errorf("entry %s: %w", quote(raw), err)
	}
	x.tree.kinds[name] = kindFile
	x.stats.Files++
	return nil
}

// finish re-checks every symlink against the tree as extracted: a later
// entry can turn a path an earlier symlink resolves through into a symlink.
// It runs after a failed extraction too, and if any symlink fails it removes
// them all, so the destination never holds a symlink that leaves it.
func (x *extractor) finish() error {
	rej := x.tree.checkAllSymlinks(x.symlinks)
	if rej == nil {
		return nil
	}
	for _, name := range x.symlinks {
		if err := x.sink.remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove symlink %s of rejected archive: %w", quote(name), err)
		}
	}
	return rej
}
