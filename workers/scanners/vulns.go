package scanners

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"

	dbc "github.com/aquasecurity/trivy-db/pkg/db"
	"github.com/aquasecurity/trivy-db/pkg/metadata"
	dbtypes "github.com/aquasecurity/trivy-db/pkg/types"
	"github.com/aquasecurity/trivy/pkg/cache"
	"github.com/aquasecurity/trivy/pkg/db"
	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	"github.com/aquasecurity/trivy/pkg/fanal/applier"
	"github.com/aquasecurity/trivy/pkg/fanal/artifact"
	artlocal "github.com/aquasecurity/trivy/pkg/fanal/artifact/local"
	artsbom "github.com/aquasecurity/trivy/pkg/fanal/artifact/sbom"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"
	"github.com/aquasecurity/trivy/pkg/scan"
	"github.com/aquasecurity/trivy/pkg/scan/langpkg"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/scan/ospkg"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/aquasecurity/trivy/pkg/vulnerability"

	"github.com/tollgate/tollgate/report"
)

// Vulns matches packages against the Trivy vulnerability DB with trivy's own
// analyzers and detectors, in-process and offline. The DB is one read-only
// bbolt handle per process (trivy-db keeps it global): open it once with
// OpenVulns, scan concurrently, Close when the worker stops.
type Vulns struct {
	db     report.VulnDB
	opened bool
}

// disabledAnalyzers is what `trivy fs --scanners vuln` disables, plus the jar
// analyzer: it needs trivy's separate Java DB, which tollgate does not ship.
var disabledAnalyzers = slices.Concat(
	analyzer.TypeIndividualPkgs,
	[]analyzer.Type{analyzer.TypeSBOM, analyzer.TypeApkCommand, analyzer.TypeSecret, analyzer.TypeLicenseFile,
		analyzer.TypeHistoryDockerfile, analyzer.TypeExecutable, analyzer.TypeRpmArchive, analyzer.TypeJar},
	analyzer.TypeConfigFiles,
)

// The trivy DB handle is global to the process (trivy-db keeps it so): every
// Vulns in a process shares it, opened by the first and closed by the last.
var shared struct {
	sync.Mutex
	dir   string
	users int
}

// OpenVulns opens the DB in dbDir. A missing DB is not an error: the scanner
// then reports VulnDB.Available=false and matches nothing, and the report and
// the policy say that vulnerabilities were not checked. Only one DB directory
// can be open in a process at a time.
func OpenVulns(dbDir string) (*Vulns, error) {
	v := &Vulns{db: report.VulnDB{Path: dbDir}}
	if dbDir == "" {
		v.db.Note = "no vulnerability DB configured"
		return v, nil
	}
	if _, err := os.Stat(db.Path(dbDir)); errors.Is(err, fs.ErrNotExist) {
		v.db.Note = fmt.Sprintf("no vulnerability DB at %s: run `tollgate db import --osv DIR` or `tollgate db update`", dbDir)
		return v, nil
	}
	meta, err := metadata.NewClient(dbDir).Get()
	if err != nil {
		return nil, fmt.Errorf("read vulnerability DB metadata in %q: %w", dbDir, err)
	}
	if meta.Version != db.SchemaVersion {
		return nil, fmt.Errorf("vulnerability DB in %q has schema %d, want %d", dbDir, meta.Version, db.SchemaVersion)
	}
	shared.Lock()
	defer shared.Unlock()
	switch {
	case shared.users == 0:
		if err := db.Init(dbDir); err != nil {
			return nil, fmt.Errorf("open vulnerability DB %q: %w", dbDir, err)
		}
		shared.dir = dbDir
	case shared.dir != dbDir:
		return nil, fmt.Errorf("open vulnerability DB %q: this process already has %q open (trivy allows one DB per process)", dbDir, shared.dir)
	}
	shared.users++
	v.opened = true
	v.db.Available = true
	v.db.Version = meta.Version
	v.db.UpdatedAt = meta.UpdatedAt
	return v, nil
}

// DB describes the DB in use.
func (v *Vulns) DB() report.VulnDB { return v.db }

// Close releases this scanner's use of the DB; the last user closes it.
func (v *Vulns) Close() error {
	if !v.opened {
		return nil
	}
	v.opened = false
	shared.Lock()
	defer shared.Unlock()
	if shared.users--; shared.users > 0 {
		return nil
	}
	shared.dir = ""
	return db.Close()
}

// Scan returns the vulnerabilities of the packages found in dir's manifests
// and lockfiles. Without a DB it returns none.
func (v *Vulns) Scan(ctx context.Context, dir string) ([]report.Vulnerability, error) {
	if !v.db.Available {
		return []report.Vulnerability{}, nil
	}
	c := cache.NewMemoryCache()
	art, err := artlocal.NewArtifact(dir, c, walker.NewFS(), artifact.Option{
		DisabledAnalyzers: disabledAnalyzers,
		Offline:           true,
		NoProgress:        true,
		Parallel:          1,
	})
	if err != nil {
		return nil, fmt.Errorf("open %q for trivy: %w", dir, err)
	}
	return v.match(ctx, c, art, dir)
}

// ScanSBOM returns the vulnerabilities of the packages a CycloneDX or SPDX
// SBOM lists: trivy's `trivy sbom`, with nothing catalogued again. Without a
// DB it returns none.
func (v *Vulns) ScanSBOM(ctx context.Context, path string) ([]report.Vulnerability, error) {
	if !v.db.Available {
		return []report.Vulnerability{}, nil
	}
	c := cache.NewMemoryCache()
	art, err := artsbom.NewArtifact(path, c, artifact.Option{Offline: true, NoProgress: true, Parallel: 1})
	if err != nil {
		return nil, fmt.Errorf("open SBOM %q for trivy: %w", path, err)
	}
	return v.match(ctx, c, art, path)
}

// match runs trivy's vulnerability detection on an artifact's packages.
func (v *Vulns) match(ctx context.Context, c cache.Cache, art artifact.Artifact, target string) ([]report.Vulnerability, error) {
	dir := target
	svc := scan.NewService(local.NewService(applier.NewApplier(c), ospkg.NewScanner(), langpkg.NewScanner(),
		vulnerability.NewClient(dbc.Config{})), art)
	rep, err := svc.ScanArtifact(ctx, types.ScanOptions{
		PkgTypes:         []string{types.PkgTypeOS, types.PkgTypeLibrary},
		PkgRelationships: ftypes.Relationships,
		Scanners:         types.Scanners{types.VulnerabilityScanner},
		// trivy's default: the data source's own severity, else the vendor's.
		VulnSeveritySources: []dbtypes.SourceID{"auto"},
	})
	if err != nil {
		return nil, fmt.Errorf("match vulnerabilities in %q with trivy: %w", dir, err)
	}
	out := []report.Vulnerability{}
	for _, res := range rep.Results {
		for _, dv := range res.Vulnerabilities {
			rv := report.Vulnerability{
				ID:            dv.VulnerabilityID,
				Aliases:       orEmpty(dv.VendorIDs),
				Package:       dv.PkgName,
				Version:       dv.InstalledVersion,
				Severity:      cmp.Or(dv.Severity, "UNKNOWN"),
				FixedVersions: splitFixed(dv.FixedVersion),
				Title:         dv.Title,
				File:          res.Target,
			}
			if dv.PkgIdentifier.PURL != nil {
				rv.PURL = dv.PkgIdentifier.PURL.String()
				rv.Ecosystem = ecosystemFromPURL(rv.PURL)
			}
			if rv.Ecosystem == "" {
				rv.Ecosystem = string(res.Type)
			}
			out = append(out, rv)
		}
	}
	slices.SortFunc(out, func(a, b report.Vulnerability) int {
		return cmp.Or(strings.Compare(a.Package, b.Package), strings.Compare(a.Version, b.Version), strings.Compare(a.ID, b.ID), strings.Compare(a.File, b.File))
	})
	return out, nil
}

func splitFixed(s string) []string {
	out := []string{}
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
