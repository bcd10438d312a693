package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	"github.com/aquasecurity/trivy-db/pkg/types"
	bolt "go.etcd.io/bbolt"
)

// importedNextUpdate is how far ahead an imported DB's NextUpdate is set. trivy
// re-downloads a DB whose NextUpdate has passed (unless told to skip updates), which
// would replace an air-gapped import with the official DB or fail offline; an
// imported DB is only ever replaced by another import.
const importedNextUpdate = 100 * 365 * 24 * time.Hour

// ImportStats counts what ImportOSV read and wrote.
type ImportStats struct {
	// Files is the number of *.json files read.
	Files int
	// Vulnerabilities is the number of distinct vulnerability ids (OSV ids) written.
	Vulnerabilities int
	// Advisories counts the (vulnerability, package) advisories written per ecosystem,
	// keyed by the OSV name: "npm", "PyPI", "Go", "Maven".
	Advisories map[string]int
	// Withdrawn counts records skipped because they have a "withdrawn" field.
	Withdrawn int
	// Invalid counts files skipped because they are not a usable OSV record.
	Invalid int
	// Duplicates counts records whose id an earlier file already had. The later
	// file's details and package advisories overwrite the earlier ones; packages
	// only the earlier file names keep its advisory.
	Duplicates int
	// SkippedEcosystems counts affected entries of the ecosystems not imported, keyed
	// by the record's ecosystem name without ":suffix" (e.g. "NuGet").
	SkippedEcosystems map[string]int
	// Unversioned counts affected packages left out because none of their ranges or
	// versions could be used.
	Unversioned int
}

// ImportOSV builds a Trivy-format vulnerability DB in dbDir from OSV records, one
// advisory per *.json file anywhere under each of srcDirs, read in lexical order.
//
// Records of the npm, PyPI, Go and Maven ecosystems are imported; other ecosystems,
// withdrawn records and files that are not OSV records are skipped and counted, and
// the latter logged. A source directory that is missing, unreadable or holds no
// *.json file is an error. The DB is built in a staging directory next to dbDir and
// renamed into place only when complete; any previous content of dbDir is replaced.
func ImportOSV(ctx context.Context, logger *slog.Logger, dbDir string, srcDirs ...string) (ImportStats, error) {
	im := importer{logger: loggerOrDiscard(logger), now: time.Now}
	stats, err := im.run(ctx, dbDir, srcDirs)
	if err != nil {
		return stats, fmt.Errorf("import osv records into %q: %w", dbDir, err)
	}
	return stats, nil
}

type importer struct {
	logger *slog.Logger
	now    func() time.Time
}

func (im importer) run(ctx context.Context, dbDir string, srcDirs []string) (ImportStats, error) {
	stats := ImportStats{Advisories: map[string]int{}, SkippedEcosystems: map[string]int{}}
	if len(srcDirs) == 0 {
		return stats, errors.New("no source directory given")
	}
	dbDir, err := checkDBDir(dbDir)
	if err != nil {
		return stats, err
	}
	for _, dir := range srcDirs {
		if err := checkSourceDir(dir); err != nil {
			return stats, err
		}
	}

	staging, err := newStagingDir(dbDir, "import")
	if err != nil {
		return stats, err
	}
	defer func() {
		// Gone already when it was renamed into place.
		_ = os.RemoveAll(staging)
	}()

	if err := im.build(ctx, staging, srcDirs, &stats); err != nil {
		return stats, err
	}
	if stats.Invalid == stats.Files {
		return stats, fmt.Errorf("none of the %d files read is a valid osv record", stats.Files)
	}
	if err := replaceDir(ctx, im.logger, staging, dbDir); err != nil {
		return stats, err
	}
	im.logger.InfoContext(ctx, "osv records imported", "db_dir", dbDir,
		"files", stats.Files, "vulnerabilities", stats.Vulnerabilities, "advisories", stats.Advisories,
		"withdrawn", stats.Withdrawn, "invalid", stats.Invalid, "skipped_ecosystems", stats.SkippedEcosystems)
	return stats, nil
}

// build writes trivy.db and metadata.json into dir.
func (im importer) build(ctx context.Context, dir string, srcDirs []string, stats *ImportStats) error {
	dbPath := db.Path(dir)
	bdb, err := bolt.Open(dbPath, 0o644, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("create trivy db %q: %w", dbPath, err)
	}
	// One write transaction: bbolt keeps it in memory until commit, and the public
	// corpora convert to a few tens of MB.
	err = bdb.Update(func(tx *bolt.Tx) error {
		w, err := newWriter(tx)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		for _, src := range srcDirs {
			if err := im.importDir(ctx, w, src, seen, stats); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := bdb.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close trivy db %q: %w", dbPath, cerr)
	}
	if err != nil {
		return err
	}

	now := im.now().UTC()
	meta := metadata.Metadata{
		Version:      db.SchemaVersion,
		UpdatedAt:    now,
		NextUpdate:   now.Add(importedNextUpdate),
		DownloadedAt: now, // trivy treats a zero DownloadedAt as a corrupt download
	}
	if err := metadata.NewClient(dir).Update(meta); err != nil {
		return fmt.Errorf("write trivy db metadata in %q: %w", dir, err)
	}
	return nil
}

func (im importer) importDir(ctx context.Context, w *writer, src string, seen map[string]bool, stats *ImportStats) error {
	var files []string
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.EqualFold(filepath.Ext(path), ".json") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("walk osv source dir %q: %w", src, err)
	}
	if len(files) == 0 {
		return fmt.Errorf("osv source dir %q holds no *.json file", src)
	}

	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		stats.Files++
		data, err := readRecordFile(path)
		if err != nil {
			return err
		}
		rec, err := parseRecord(data)
		if err != nil {
			stats.Invalid++
			im.logger.WarnContext(ctx, "skip invalid osv record", "file", path, "error", err)
			continue
		}
		if strings.TrimSpace(rec.Withdrawn) != "" {
			stats.Withdrawn++
			im.logger.DebugContext(ctx, "skip withdrawn osv record", "file", path, "id", rec.ID)
			continue
		}
		conv := convertRecord(rec)
		if len(conv.notes) > 0 {
			im.logger.WarnContext(ctx, "osv record partly imported", "file", path, "id", rec.ID,
				"dropped", errors.Join(conv.notes...))
		}
		for eco, n := range conv.skipped {
			stats.SkippedEcosystems[eco] += n
		}
		stats.Unversioned += conv.unversioned
		if len(conv.packages) == 0 {
			continue
		}
		if seen[conv.id] {
			stats.Duplicates++
			im.logger.WarnContext(ctx, "osv id seen before, later record overwrites it", "file", path, "id", rec.ID)
		} else {
			stats.Vulnerabilities++
		}
		seen[conv.id] = true
		if err := w.put(conv); err != nil {
			return fmt.Errorf("write osv record %q: %w", path, err)
		}
		for _, p := range conv.packages {
			stats.Advisories[p.eco.name]++
		}
	}
	return nil
}

// readRecordFile reads one file, refusing to hold more than a record may be.
func readRecordFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read osv record %q: %w", path, err)
	}
	defer f.Close()
	// One byte more than allowed, so parseRecord sees the file is too big.
	data, err := io.ReadAll(io.LimitReader(f, maxRecordBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read osv record %q: %w", path, err)
	}
	return data, nil
}

// writer puts conversions into a trivy-db file through trivy-db's own
// transaction-scoped helpers, so the layout is exactly trivy-db's without opening its
// process-wide handle:
//
//	"<eco>::<source name>" / <package> / <vulnerability id> -> types.Advisory
//	"vulnerability" / <vulnerability id>                     -> types.Vulnerability
//	"data-source" / "<eco>::<source name>"                   -> types.DataSource
type writer struct {
	tx      *bolt.Tx
	dbc     db.Config
	buckets map[string]string // trivy ecosystem -> bucket name, once its data source is written
}

func newWriter(tx *bolt.Tx) (*writer, error) {
	// trivy's GetVulnerability assumes the bucket exists, even in an empty DB.
	if _, err := tx.CreateBucketIfNotExists([]byte("vulnerability")); err != nil {
		return nil, fmt.Errorf("create vulnerability bucket: %w", err)
	}
	return &writer{tx: tx, buckets: map[string]string{}}, nil
}

func (w *writer) put(conv conversion) error {
	for _, p := range conv.packages {
		bkt, err := w.bucket(p.eco)
		if err != nil {
			return err
		}
		adv := types.Advisory{
			VendorIDs:          conv.aliases,
			VulnerableVersions: p.constraints,
		}
		if err := w.dbc.PutAdvisory(w.tx, []string{bkt, p.name}, conv.id, &adv); err != nil {
			return fmt.Errorf("put advisory %s for %s package %q: %w", conv.id, p.eco.name, p.name, err)
		}
	}
	if err := w.dbc.PutVulnerability(w.tx, conv.id, conv.vuln); err != nil {
		return fmt.Errorf("put vulnerability %s: %w", conv.id, err)
	}
	return nil
}

// bucket returns the ecosystem's bucket name, recording its data source on first use.
func (w *writer) bucket(eco ecosystemSpec) (string, error) {
	if name, ok := w.buckets[string(eco.trivy)]; ok {
		return name, nil
	}
	b, err := eco.newBucket(eco.dataSource())
	if err != nil {
		return "", fmt.Errorf("name %s bucket: %w", eco.name, err)
	}
	if err := w.dbc.PutDataSource(w.tx, b.Name(), b.DataSource()); err != nil {
		return "", fmt.Errorf("put data source of bucket %q: %w", b.Name(), err)
	}
	w.buckets[string(eco.trivy)] = b.Name()
	return b.Name(), nil
}

func checkSourceDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("open osv source dir %q: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("open osv source dir %q: not a directory", dir)
	}
	return nil
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
