package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// LocalInputs keeps submitted source archives by sha256 in a directory, for
// the embedded and dev modes. The fleet keeps them in MinIO's inputs bucket.
type LocalInputs struct {
	dir string
}

// OpenLocalInputs opens (and creates) an inputs directory.
func OpenLocalInputs(dir string) (*LocalInputs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create inputs dir %q: %w", dir, err)
	}
	return &LocalInputs{dir: dir}, nil
}

// PutInput stores an archive under "inputs/<sha256>" and returns its object.
// Storing the same archive again is a no-op.
func (l *LocalInputs) PutInput(ctx context.Context, r io.Reader, size int64) (Object, error) {
	tmp, err := os.CreateTemp(l.dir, ".upload-*")
	if err != nil {
		return Object{}, fmt.Errorf("store input: %w", err)
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Object{}, fmt.Errorf("store input: %w", err)
	}
	if size >= 0 && n != size {
		return Object{}, fmt.Errorf("store input: read %d bytes, want %d", n, size)
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	key := InputsPrefix + sum
	if err := os.Rename(tmp.Name(), filepath.Join(l.dir, sum)); err != nil {
		return Object{}, fmt.Errorf("store input %q: %w", key, err)
	}
	return Object{Bucket: "local-inputs", Key: key, VersionID: sum[:16], SHA256: sum, Size: n, ContentType: "application/octet-stream"}, nil
}

// FetchTo copies the archive stored under key to path, checking its bytes
// against the sha256 the key names.
func (l *LocalInputs) FetchTo(ctx context.Context, key, path string) error {
	sum, ok := strings.CutPrefix(key, InputsPrefix)
	if !ok || len(sum) != 64 || strings.ContainsAny(sum, "/.\\") {
		return fmt.Errorf("fetch input %q: not an input key", key)
	}
	src, err := os.Open(filepath.Join(l.dir, sum))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("fetch input %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("fetch input %q: %w", key, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("fetch input %q: %w", key, err)
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(dst, h), src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = checkSum(h, sum)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("fetch input %q: %w", key, err)
	}
	return nil
}
