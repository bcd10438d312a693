// Package storage keeps scan inputs and evidence. Evidence is write-once: an
// object, once stored, is never overwritten or deleted by tollgate. The local
// store does this on a plain directory for the embedded mode; the MinIO store
// does it with S3 Object Lock for the fleet.
package storage

import (
	"context"
	"errors"
)

// ErrImmutable is returned when a write would replace or delete stored evidence.
var ErrImmutable = errors.New("evidence is write-once")

// ErrNotFound is returned when no object is stored under a key.
var ErrNotFound = errors.New("evidence object not found")

// Object describes one stored object.
type Object struct {
	Bucket      string `json:"bucket"`
	Key         string `json:"key"`
	VersionID   string `json:"version_id"`
	SHA256      string `json:"sha256"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
}

// Evidence is the write-once store every scan output goes to.
//
// Put stores data under key. Storing the same bytes under a key again returns
// the existing object (so retried tasks are safe); storing different bytes
// under an existing key fails with ErrImmutable. Get returns the newest
// version's bytes, or ErrNotFound.
type Evidence interface {
	Put(ctx context.Context, key, contentType string, data []byte) (Object, error)
	Get(ctx context.Context, key string) ([]byte, Object, error)
}

// Lister lists the keys stored under a prefix, in lexical order. Both stores
// implement it; it is a separate interface because only readers of release
// and rollback records need it.
type Lister interface {
	List(ctx context.Context, prefix string) ([]string, error)
}
