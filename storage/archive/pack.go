package archive

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"time"
)

// packSkip lists directory names Pack leaves out wherever they appear.
var packSkip = map[string]bool{".git": true, "node_modules": true}

// packEntry is one path Pack will write.
type packEntry struct {
	name   string
	kind   kind
	target string // symlinks only
	skip   bool
}

// Pack writes the tree under dir to w as a deterministic tar.gz: entries in
// lexical walk order, modes normalised to 0644/0755 (0777 for symlinks),
// zero times and owners. It keeps regular files, directories and relative
// symlinks that resolve inside dir under the same rules Extract applies, and
// silently leaves out everything else (escaping symlinks, devices, FIFOs,
// sockets) as well as ".git" and "node_modules" at any depth. Names Extract
// would reject (backslashes, control characters, invalid UTF-8, over-long
// components) fail the whole Pack, so no file is silently missing from a
// scan. Pack honours ctx between entries.
func Pack(ctx context.Context, dir string, w io.Writer) error {
	if err := pack(ctx, dir, w); err != nil {
		return fmt.Errorf("pack %q: %w", dir, err)
	}
	return nil
}

func pack(ctx context.Context, dir string, w io.Writer) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	entries, err := packList(ctx, root)
	if err != nil {
		return err
	}
	packSymlinks(entries)

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.skip {
			continue
		}
		if err := packWrite(root, tw, e); err != nil {
			return fmt.Errorf("entry %s: %w", quote(e.name), err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close tar: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("close gzip: %w", err)
	}
	return nil
}

// packList walks root in lexical order and lists what Pack may write.
func packList(ctx context.Context, root *os.Root) ([]packEntry, error) {
	var entries []packEntry
	err := fs.WalkDir(root.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		if packSkip[d.Name()] {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if _, rej := checkName(name, math.MaxInt); rej != nil {
			return rej
		}
		switch d.Type() {
		case fs.ModeDir:
			entries = append(entries, packEntry{name: name, kind: kindDir})
		case 0:
			entries = append(entries, packEntry{name: name, kind: kindFile})
		case fs.ModeSymlink:
			target, err := root.Readlink(name)
			if err != nil {
				return fmt.Errorf("entry %s: %w", quote(name), err)
			}
			entries = append(entries, packEntry{name: name, kind: kindSymlink, target: target, skip: checkTarget(target) != nil})
		}
		return nil
	})
	return entries, err
}

// packSymlinks marks the symlinks Extract would reject, running Extract's
// checks in the same order. Leaving out one symlink can change how another
// resolves, so it repeats until nothing more is left out.
func packSymlinks(entries []packEntry) {
	for {
		t := newTree()
		var links []int
		for i := range entries {
			e := &entries[i]
			if e.skip {
				continue
			}
			t.kinds[e.name] = e.kind
			if e.kind != kindSymlink {
				continue
			}
			t.targets[e.name] = e.target
			if t.checkSymlink(e.name) != nil {
				e.skip = true
				delete(t.kinds, e.name)
				delete(t.targets, e.name)
				continue
			}
			links = append(links, i)
		}
		again := false
		for _, i := range links {
			if t.checkSymlink(entries[i].name) != nil {
				entries[i].skip = true
				again = true
			}
		}
		if !again {
			return
		}
	}
}

// packWrite writes one entry.
func packWrite(root *os.Root, tw *tar.Writer, e packEntry) error {
	hdr := &tar.Header{Name: e.name, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	switch e.kind {
	case kindDir:
		hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, e.name+"/", 0o755
		return tw.WriteHeader(hdr)
	case kindSymlink:
		hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, e.target, 0o777
		return tw.WriteHeader(hdr)
	}
	f, err := root.Open(e.name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return errors.New("changed type while packing")
	}
	hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
	if fi.Mode()&0o111 != 0 {
		hdr.Mode = 0o755
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := io.CopyN(tw, f, fi.Size()); err != nil {
		return fmt.Errorf("copy: %w", err)
	}
	return nil
}
