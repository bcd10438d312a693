package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// sink is where an extractor puts the entries it has accepted. Names are
// clean, relative to the root, and already decided by the extractor's tree:
// every parent exists as a directory, the name itself is free, a hard link's
// old name is a regular file put earlier. A sink makes no decision of its own;
// an error from it is operational, never a rejection.
type sink interface {
	// mkdir creates the directory name, mode 0755.
	mkdir(name string) error
	// create creates the regular file name with mode perm, for writing.
	create(name string, perm fs.FileMode) (io.WriteCloser, error)
	// symlink creates name as a symlink to target.
	symlink(target, name string) error
	// link creates name as a hard link to the regular file old.
	link(old, name string) error
	// remove removes name (a symlink of a rejected archive).
	remove(name string) error
}

var (
	_ sink = dirSink{}
	_ sink = discardSink{}
)

// dirSink writes under an os.Root, so no write can leave the destination
// even if the tree bookkeeping were wrong or the directory were changed
// underneath it.
type dirSink struct{ root *os.Root }

func (d dirSink) mkdir(name string) error {
	if err := d.root.Mkdir(name, 0o755); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	// Mkdir is subject to the umask; make the mode exact.
	if err := d.root.Chmod(name, 0o755); err != nil {
		return fmt.Errorf("chmod directory: %w", err)
	}
	return nil
}

func (d dirSink) create(name string, perm fs.FileMode) (io.WriteCloser, error) {
	// O_EXCL: never follow or replace whatever is at name.
	f, err := d.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return nil, fmt.Errorf("create file: %w", err)
	}
	if err := f.Chmod(perm); err != nil { // the umask applied at create
		_ = f.Close()
		return nil, fmt.Errorf("chmod file: %w", err)
	}
	return f, nil
}

func (d dirSink) symlink(target, name string) error {
	if err := d.root.Symlink(target, name); err != nil {
		return fmt.Errorf("create symlink: %w", err)
	}
	return nil
}

func (d dirSink) link(old, name string) error {
	if err := d.root.Link(old, name); err != nil {
		return fmt.Errorf("create hard link: %w", err)
	}
	return nil
}

func (d dirSink) remove(name string) error { return d.root.Remove(name) }

// emptyDir fails unless the directory root refers to is empty: the tree
// bookkeeping assumes it starts from nothing, as a discardSink does.
func emptyDir(root *os.Root, dest string) error {
	d, err := root.Open(".")
	if err != nil {
		return fmt.Errorf("open destination %q: %w", dest, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read destination %q: %w", dest, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("destination %q is not empty", dest)
	}
	return nil
}

// discardSink writes nothing: Check's sink. File bodies are still read, through
// the same limit checks, into io.Discard.
type discardSink struct{}

func (discardSink) mkdir(string) error           { return nil }
func (discardSink) symlink(string, string) error { return nil }
func (discardSink) link(string, string) error    { return nil }
func (discardSink) remove(string) error          { return nil }
func (discardSink) create(string, fs.FileMode) (io.WriteCloser, error) {
	return discardFile{}, nil
}

// discardFile is an io.WriteCloser that keeps nothing.
type discardFile struct{}

func (discardFile) Write(p []byte) (int, error) { return len(p), nil }
func (discardFile) Close() error                { return nil }
