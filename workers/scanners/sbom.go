package scanners

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/anchore/syft/syft"
	"github.com/anchore/syft/syft/cataloging"
	"github.com/anchore/syft/syft/cataloging/pkgcataloging"
	"github.com/anchore/syft/syft/format"
	"github.com/anchore/syft/syft/format/cyclonedxjson"
	"github.com/anchore/syft/syft/format/spdxjson"
	"github.com/anchore/syft/syft/pkg/cataloger/golang"
	"github.com/anchore/syft/syft/pkg/cataloger/java"
	"github.com/anchore/syft/syft/pkg/cataloger/javascript"
	"github.com/anchore/syft/syft/pkg/cataloger/python"
	"github.com/anchore/syft/syft/sbom"
	"github.com/anchore/syft/syft/source"
	"github.com/anchore/syft/syft/source/directorysource"
	"github.com/google/uuid"
	// syft reads newer RPM databases through database/sql; its CLI links this driver too.
	_ "modernc.org/sqlite"

	"github.com/tollgate/tollgate/report"
)

// SBOM catalogs packages with syft. Its licence scanner is built once (it costs
// about a second of CPU) and reused by every scan.
type SBOM struct {
	// licenses is a context that carries nothing but syft's licence scanner:
	// syft keeps that scanner only as a context value.
	licenses context.Context
	cfg      *syft.CreateSBOMConfig
	cdx      sbom.FormatEncoder
	spdx     sbom.FormatEncoder
}

// NewSBOM prepares syft for scanning untrusted directories: nothing in the
// scanned tree is executed and nothing is fetched from the network.
func NewSBOM(toolVersion string) (*SBOM, error) {
	pkgs := pkgcataloging.DefaultConfig().
		WithGolangConfig(golang.DefaultCatalogerConfig().
			WithUsePackagesLib(false). // would run `go list` in the scanned tree
			WithSearchRemoteLicenses(false).
			WithSearchLocalModCacheLicenses(false)).
		WithJavascriptConfig(javascript.DefaultCatalogerConfig().WithSearchRemoteLicenses(false)).
		WithPythonConfig(python.DefaultCatalogerConfig().WithSearchRemoteLicenses(false)).
		WithJavaArchiveConfig(java.DefaultArchiveCatalogerConfig().WithUseNetwork(false).WithUseMavenLocalRepository(false))
	cfg := syft.DefaultCreateSBOMConfig().
		WithTool("tollgate", toolVersion).
		WithPackagesConfig(pkgs)

	lctx, err := syft.SetContextLicenseScanner(context.Background(), cataloging.DefaultLicenseConfig())
	if err != nil {
		return nil, fmt.Errorf("build syft licence scanner: %w", err)
	}
	cdx, err := cyclonedxjson.NewFormatEncoderWithConfig(cyclonedxjson.DefaultEncoderConfig())
	if err != nil {
		return nil, fmt.Errorf("build cyclonedx encoder: %w", err)
	}
	spdx, err := spdxjson.NewFormatEncoderWithConfig(spdxjson.DefaultEncoderConfig())
	if err != nil {
		return nil, fmt.Errorf("build spdx encoder: %w", err)
	}
	return &SBOM{licenses: lctx, cfg: cfg, cdx: cdx, spdx: spdx}, nil
}

// Catalog is one SBOM: its packages and its two encodings.
type Catalog struct {
	Packages  []report.Package
	CycloneDX []byte
	SPDX      []byte
}

// Identity makes an SBOM document reproducible: the same scan gives the same
// bytes, so a retried task stores the same evidence.
type Identity struct {
	ScanID  string
	Name    string
	Created time.Time
}

// Scan catalogs dir and encodes the result as CycloneDX and SPDX JSON.
func (s *SBOM) Scan(ctx context.Context, dir string, id Identity) (Catalog, error) {
	src, err := directorysource.New(directorysource.Config{Path: dir, Base: dir, Alias: sourceAlias(id)})
	if err != nil {
		return Catalog{}, fmt.Errorf("open source %q for syft: %w", dir, err)
	}
	defer src.Close()
	doc, err := syft.CreateSBOM(withValues(ctx, s.licenses), src, s.cfg)
	if err != nil {
		return Catalog{}, fmt.Errorf("catalog %q with syft: %w", dir, err)
	}
	out := Catalog{Packages: packagesOf(doc)}
	if out.CycloneDX, err = s.encode(doc, s.cdx, id); err != nil {
		return Catalog{}, err
	}
	if out.SPDX, err = s.encode(doc, s.spdx, id); err != nil {
		return Catalog{}, err
	}
	return out, nil
}

func (s *SBOM) encode(doc *sbom.SBOM, enc sbom.FormatEncoder, id Identity) ([]byte, error) {
	raw, err := format.Encode(*doc, enc)
	if err != nil {
		return nil, fmt.Errorf("encode sbom as %s: %w", enc.ID(), err)
	}
	return reproducible(raw, enc.ID(), id)
}

// reproducible replaces the random and clock-based fields syft writes (serial
// number, document namespace, creation time) with values derived from the scan.
func reproducible(raw []byte, fmtID sbom.FormatID, id Identity) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decode %s sbom: %w", fmtID, err)
	}
	created := id.Created.UTC().Format(time.RFC3339)
	docUUID := uuid.NewSHA1(uuid.NameSpaceURL, []byte("tollgate:scan:"+id.ScanID+":"+string(fmtID)))
	switch fmtID {
	case cyclonedxjson.ID:
		doc["serialNumber"] = "urn:uuid:" + docUUID.String()
		if md, ok := doc["metadata"].(map[string]any); ok {
			md["timestamp"] = created
		}
	case spdxjson.ID:
		doc["documentNamespace"] = fmt.Sprintf("https://tollgate.dev/spdx/%s-%s", id.ScanID, docUUID)
		if ci, ok := doc["creationInfo"].(map[string]any); ok {
			ci["created"] = created
		}
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s sbom: %w", fmtID, err)
	}
	return append(out, '\n'), nil
}

func sourceAlias(id Identity) source.Alias {
	return source.Alias{Name: id.Name}
}

func packagesOf(doc *sbom.SBOM) []report.Package {
	var out []report.Package
	for _, p := range doc.Artifacts.Packages.Sorted() {
		rp := report.Package{
			Name:      p.Name,
			Version:   p.Version,
			PURL:      p.PURL,
			Ecosystem: ecosystemFromPURL(p.PURL),
			Licenses:  []string{},
		}
		if rp.Ecosystem == "" {
			rp.Ecosystem = string(p.Type)
		}
		for _, l := range p.Licenses.ToSlice() {
			v := l.SPDXExpression
			if v == "" {
				v = l.Value
			}
			if v != "" && !slices.Contains(rp.Licenses, v) {
				rp.Licenses = append(rp.Licenses, v)
			}
		}
		for _, loc := range p.Locations.ToSlice() {
			f := strings.TrimPrefix(loc.RealPath, "/")
			if !slices.Contains(rp.Files, f) {
				rp.Files = append(rp.Files, f)
			}
		}
		out = append(out, rp)
	}
	return out
}
