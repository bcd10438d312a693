package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the trivy-db schema this build reads, imports and
// downloads (trivy-db's db.SchemaVersion).
const SchemaVersion = db.SchemaVersion

// ErrNoDB is wrapped by ReadInfo's error when dbDir has no trivy.db or no metadata.json.
var ErrNoDB = errors.New("no vulnerability db")

// openTimeout bounds the wait for bbolt's file lock, held exclusively by a process
// writing the file.
const openTimeout = 5 * time.Second

// dataSourceBucket is trivy-db's bucket of data sources, keyed by bucket name.
const dataSourceBucket = "data-source"

// Info describes the DB in a directory.
type Info struct {
	// Dir is the directory read.
	Dir string
	// SchemaVersion is the trivy-db schema (2 for the DBs trivy v0.70 reads).
	SchemaVersion int
	// UpdatedAt is when the DB was built.
	UpdatedAt time.Time
	// NextUpdate is when trivy would consider the DB stale and fetch a new one.
	NextUpdate time.Time
	// DownloadedAt is when the DB was fetched, or built by ImportOSV.
	DownloadedAt time.Time
	// Age is the time from UpdatedAt to when ReadInfo ran.
	Age time.Duration
	// DataSources lists where the advisories come from, by bucket name.
	DataSources []DataSource
}

// DataSource is one entry of the DB's data-source bucket.
type DataSource struct {
	// Bucket is the advisory bucket, e.g. "npm::Tollgate OSV import (npm)" or
	// "alpine 3.20".
	Bucket string
	// Ecosystem is the language ecosystem ("npm", "pip", "go", "maven", ...) of a
	// language bucket, and empty for OS buckets.
	Ecosystem string
	ID        string
	Name      string
	URL       string
}

// ReadInfo says what DB dbDir holds. It opens trivy.db read-only for the time of the
// call, without trivy-db's process-wide handle. When dbDir has no DB the error wraps
// ErrNoDB.
func ReadInfo(dbDir string) (Info, error) {
	info, err := readInfo(dbDir, time.Now())
	if err != nil {
		return Info{}, fmt.Errorf("read vulnerability db info %q: %w", dbDir, err)
	}
	return info, nil
}

func readInfo(dbDir string, now time.Time) (Info, error) {
	for _, path := range []string{db.Path(dbDir), metadata.Path(dbDir)} {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return Info{}, fmt.Errorf("%w: %s is missing", ErrNoDB, path)
		}
	}
	meta, err := metadata.NewClient(dbDir).Get()
	if err != nil {
		return Info{}, fmt.Errorf("read metadata: %w", err)
	}
	sources, err := readDataSources(db.Path(dbDir))
	if err != nil {
		return Info{}, err
	}
	return Info{
		Dir:           dbDir,
		SchemaVersion: meta.Version,
		UpdatedAt:     meta.UpdatedAt,
		NextUpdate:    meta.NextUpdate,
		DownloadedAt:  meta.DownloadedAt,
		Age:           now.Sub(meta.UpdatedAt),
		DataSources:   sources,
	}, nil
}

func readDataSources(dbPath string) ([]DataSource, error) {
	bdb, err := bolt.Open(dbPath, 0o444, &bolt.Options{ReadOnly: true, Timeout: openTimeout})
	if err != nil {
		return nil, fmt.Errorf("open trivy db %q read-only: %w", dbPath, err)
	}
	defer bdb.Close()

	var out []DataSource
	err = bdb.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(dataSourceBucket))
		if b == nil {
			return nil // an empty DB
		}
		return b.ForEach(func(k, v []byte) error {
			var src types.DataSource
			if err := json.Unmarshal(v, &src); err != nil {
				return fmt.Errorf("decode data source %q: %w", k, err)
			}
			eco, _, isLang := strings.Cut(string(k), "::")
			if !isLang {
				eco = ""
			}
			out = append(out, DataSource{
				Bucket:    string(k),
				Ecosystem: eco,
				ID:        string(src.ID),
				Name:      src.Name,
				URL:       src.URL,
			})
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read data sources of %q: %w", dbPath, err)
	}
	return out, nil // in bucket order: bbolt iterates keys sorted
}
