package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// LocalBucket is the bucket name reported for objects of a Local store.
const LocalBucket = "local"

// Local is a write-once evidence store on a directory, for the embedded mode.
// Objects are written to a temporary file, made read-only and linked into place,
// so an existing object is never replaced; each object's sha256 is recorded in
// a sidecar file next to it.
type Local struct {
	root *os.Root
	dir  string
}

var _ Evidence = (*Local)(nil)

// OpenLocal opens (and creates) a local evidence store rooted at dir.
func OpenLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create evidence dir %q: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open evidence dir %q: %w", dir, err)
	}
	return &Local{root: root, dir: dir}, nil
}

// Dir returns the directory the store writes to.
func (l *Local) Dir() string { return l.dir }

// Close releases the store's directory handle.
func (l *Local) Close() error { return l.root.Close() }

type localMeta struct {
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
}

// Put stores data under key unless a different object is already there.
// The object is linked into place first, so of two writers racing on one key
// exactly one body wins; the sidecar with its digest follows. A sidecar lost
// to a crash is rebuilt from the object on the next Put or Get.
func (l *Local) Put(ctx context.Context, key, contentType string, data []byte) (Object, error) {
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(data)
	obj := Object{Bucket: LocalBucket, Key: key, SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), ContentType: contentType}
	obj.VersionID = obj.SHA256[:16]

	if dir := filepath.Dir(key); dir != "." {
		if err := l.root.MkdirAll(dir, 0o755); err != nil {
			return Object{}, fmt.Errorf("put evidence %q: %w", key, err)
		}
	}
	if err := l.writeOnce(key, data); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return Object{}, fmt.Errorf("put evidence %q: %w", key, err)
		}
		existing, err := l.root.ReadFile(key)
		if err != nil {
			return Object{}, fmt.Errorf("put evidence %q: read existing: %w", key, err)
		}
		if esum := sha256.Sum256(existing); esum != sum {
			return Object{}, fmt.Errorf("put evidence %q: %w", key, ErrImmutable)
		}
	}
	meta, err := json.Marshal(localMeta{SHA256: obj.SHA256, Size: obj.Size, ContentType: contentType})
	if err != nil {
		return Object{}, fmt.Errorf("put evidence %q: %w", key, err)
	}
	// An existing sidecar was written for these same bytes: keep it.
	if err := l.writeOnce(key+".meta", meta); err != nil && !errors.Is(err, fs.ErrExist) {
		return Object{}, fmt.Errorf("put evidence %q: write digest: %w", key, err)
	}
	return obj, nil
}

// writeOnce writes data to a uniquely named temporary file and links it to
// name, which fails if name exists: no object is ever replaced, not even in a
// race.
func (l *Local) writeOnce(name string, data []byte) error {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	tmp := fmt.Sprintf("%s.tmp-%x", name, rnd)
	f, err := l.root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o444)
	if err != nil {
		return err
	}
	defer l.root.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return l.root.Link(tmp, name)
}

// Get returns the object stored under key and checks it against its recorded digest.
func (l *Local) Get(ctx context.Context, key string) ([]byte, Object, error) {
	if err := ctx.Err(); err != nil {
		return nil, Object{}, err
	}
	obj, err := l.stat(key)
	if err != nil {
		return nil, Object{}, err
	}
	data, err := l.root.ReadFile(key)
	if err != nil {
		return nil, Object{}, fmt.Errorf("get evidence %q: %w", key, err)
	}
	sum := sha256.Sum256(data)
	if hex.EncodeToString(sum[:]) != obj.SHA256 {
		return nil, Object{}, fmt.Errorf("get evidence %q: content does not match its recorded sha256 %s", key, obj.SHA256)
	}
	return data, obj, nil
}

// Delete always refuses: evidence is never deleted by tollgate.
func (l *Local) Delete(_ context.Context, key string) error {
	return fmt.Errorf("delete evidence %q: %w", key, ErrImmutable)
}

// List returns the keys under prefix (a folder path ending in "/", or ""),
// sorted, without the digest sidecars and the temporary files of writes in
// progress.
func (l *Local) List(ctx context.Context, prefix string) ([]string, error) {
	dir := strings.TrimSuffix(prefix, "/")
	if dir == "" {
		dir = "."
	} else if err := validKey(dir); err != nil {
		return nil, fmt.Errorf("list evidence: %w", err)
	}
	var keys []string
	err := fs.WalkDir(l.root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || strings.HasSuffix(p, ".meta") || strings.Contains(path.Base(p), ".tmp-") {
			return nil
		}
		if strings.HasPrefix(p, prefix) {
			keys = append(keys, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list evidence under %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

func (l *Local) stat(key string) (Object, error) {
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	if _, err := l.root.Stat(key); errors.Is(err, fs.ErrNotExist) {
		return Object{}, fmt.Errorf("evidence %q: %w", key, ErrNotFound)
	} else if err != nil {
		return Object{}, fmt.Errorf("stat evidence %q: %w", key, err)
	}
	raw, err := l.root.ReadFile(key + ".meta")
	if errors.Is(err, fs.ErrNotExist) {
		// The writer died between the object and its sidecar: rebuild it.
		data, err := l.root.ReadFile(key)
		if err != nil {
			return Object{}, fmt.Errorf("read evidence %q: %w", key, err)
		}
		sum := sha256.Sum256(data)
		m := localMeta{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
		raw, _ = json.Marshal(m)
		if err := l.writeOnce(key+".meta", raw); err != nil && !errors.Is(err, fs.ErrExist) {
			return Object{}, fmt.Errorf("write digest of evidence %q: %w", key, err)
		}
	} else if err != nil {
		return Object{}, fmt.Errorf("read evidence metadata %q: %w", key, err)
	}
	var m localMeta
	if err := json.Unmarshal(raw, &m); err != nil || len(m.SHA256) != 64 {
		return Object{}, fmt.Errorf("decode evidence metadata %q: %v", key, err)
	}
	return Object{Bucket: LocalBucket, Key: key, VersionID: m.SHA256[:16], SHA256: m.SHA256, Size: m.Size, ContentType: m.ContentType}, nil
}

func validKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, ".meta") || !filepath.IsLocal(key) || strings.Contains(key, "\\") {
		return fmt.Errorf("invalid evidence key %q", key)
	}
	return nil
}
