package archive

import (
	"cmp"
	"fmt"
	"math"
)

// Default limits, applied to every zero field of Limits.
const (
	// DefaultMaxTotalBytes caps the uncompressed bytes of all files: 512 MiB.
	DefaultMaxTotalBytes int64 = 512 << 20
	// DefaultMaxFiles caps the number of entries of any kind: 20,000.
	DefaultMaxFiles = 20_000
	// DefaultMaxFileBytes caps the uncompressed size of one file: 128 MiB.
	DefaultMaxFileBytes int64 = 128 << 20
	// DefaultMaxRatio caps decompressed bytes per compressed byte read: 200.
	DefaultMaxRatio = 200.0
	// DefaultMaxDepth caps the number of components in an entry path: 64.
	DefaultMaxDepth = 64
)

const (
	// ratioGrace is how many bytes may be decompressed before MaxRatio is
	// enforced, so that tiny archives with one very compressible file pass.
	ratioGrace = 1 << 20
	// metaPerEntry is the allowance for headers, padding and long-name
	// records per entry on top of MaxTotalBytes when bounding the raw stream.
	metaPerEntry = 8 << 10
	// maxNameLen and maxComponentLen bound entry names (Linux PATH_MAX and
	// NAME_MAX); maxTargetLen bounds symlink targets.
	maxNameLen      = 4096
	maxComponentLen = 255
	maxTargetLen    = 1024
)

// Limits bounds what Extract accepts. A zero field takes its default.
type Limits struct {
	// MaxTotalBytes caps the uncompressed bytes of all files together.
	// Default DefaultMaxTotalBytes (512 MiB).
	MaxTotalBytes int64
	// MaxFiles caps the number of entries: files, directories, links and
	// metadata entries alike. Default DefaultMaxFiles (20,000).
	MaxFiles int
	// MaxFileBytes caps the uncompressed size of any one file.
	// Default DefaultMaxFileBytes (128 MiB).
	MaxFileBytes int64
	// MaxRatio caps the bytes decompressed so far divided by the compressed
	// bytes read so far. It is checked on every read once 1 MiB has been
	// decompressed, so a bomb is stopped after a few MiB rather than after
	// it has been written out. Plain tar has a ratio of about 1.
	// Default DefaultMaxRatio (200).
	MaxRatio float64
	// MaxDepth caps the number of path components of an entry name.
	// Default DefaultMaxDepth (64).
	MaxDepth int
}

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	l.MaxTotalBytes = cmp.Or(l.MaxTotalBytes, DefaultMaxTotalBytes)
	l.MaxFiles = cmp.Or(l.MaxFiles, DefaultMaxFiles)
	l.MaxFileBytes = cmp.Or(l.MaxFileBytes, DefaultMaxFileBytes)
	l.MaxRatio = cmp.Or(l.MaxRatio, DefaultMaxRatio)
	l.MaxDepth = cmp.Or(l.MaxDepth, DefaultMaxDepth)
	return l
}

// Validate reports the first invalid field. Zero fields are valid: they take
// their defaults.
func (l Limits) Validate() error {
	switch {
	case l.MaxTotalBytes < 0:
		return fmt.Errorf("validate archive limits: max total bytes %d is negative", l.MaxTotalBytes)
	case l.MaxFiles < 0:
		return fmt.Errorf("validate archive limits: max files %d is negative", l.MaxFiles)
	case l.MaxFileBytes < 0:
		return fmt.Errorf("validate archive limits: max file bytes %d is negative", l.MaxFileBytes)
	case math.IsNaN(l.MaxRatio) || math.IsInf(l.MaxRatio, 0):
		return fmt.Errorf("validate archive limits: max ratio %v is not finite", l.MaxRatio)
	case l.MaxRatio < 0 || (l.MaxRatio > 0 && l.MaxRatio < 1):
		return fmt.Errorf("validate archive limits: max ratio %v is below 1", l.MaxRatio)
	case l.MaxDepth < 0:
		return fmt.Errorf("validate archive limits: max depth %d is negative", l.MaxDepth)
	}
	return nil
}

// streamCap bounds the raw (uncompressed tar, or zip) bytes read: the file
// bytes allowed plus an allowance for headers, padding and metadata.
func (l Limits) streamCap() int64 {
	if int64(l.MaxFiles) > (math.MaxInt64-1<<20)/metaPerEntry {
		return math.MaxInt64
	}
	meta := int64(l.MaxFiles)*metaPerEntry + 1<<20
	if l.MaxTotalBytes > math.MaxInt64-meta {
		return math.MaxInt64
	}
	return l.MaxTotalBytes + meta
}
