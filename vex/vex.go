// Package vex reads VEX documents (Vulnerability Exploitability eXchange)
// in the two formats vendors publish, OpenVEX and CycloneDX VEX, keeps them
// as write-once evidence per tenant (or per scan), resolves their
// statements against a scan's findings, and writes a scan's final
// vulnerability status as OpenVEX.
//
// Parsing is done by the formats' own libraries (github.com/openvex/go-vex,
// github.com/CycloneDX/cyclonedx-go); this package maps both onto one
// Statement with OpenVEX's vocabulary, and matches package URLs with
// go-vex's PurlMatches.
//
// A statement covers a finding only where it names both: the vulnerability
// (by name or alias) and the package the finding is in (a product, or a
// subcomponent of a product that is itself in the scan's SBOM). A statement
// about another product or another vulnerability covers nothing.
package vex

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	openvex "github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"
)

// Formats of a VEX document.
const (
	FormatOpenVEX   = "openvex"
	FormatCycloneDX = "cyclonedx"
)

// Statuses, in OpenVEX's vocabulary; CycloneDX analysis states are mapped
// onto them (resolved is fixed, exploitable is affected, in_triage is
// under_investigation). A CycloneDX false_positive keeps its own name: it
// is neither not_affected nor fixed, so it covers nothing.
const (
	StatusNotAffected        = "not_affected"
	StatusAffected           = "affected"
	StatusFixed              = "fixed"
	StatusUnderInvestigation = "under_investigation"
)

// Limits on a document, which comes from outside.
const (
	// MaxDocumentBytes is the largest document accepted.
	MaxDocumentBytes = 4 << 20
	// MaxStatements is the most statements one document may make.
	MaxStatements = 10000
	// maxProducts bounds products and subcomponents per statement.
	maxProducts = 1000
)

// ErrInvalid wraps every reason a document is refused.
var ErrInvalid = errors.New("invalid VEX document")

// Document is a parsed VEX document.
type Document struct {
	Format string `json:"format"`
	// ID is the document's own identifier (OpenVEX @id, CycloneDX
	// serialNumber), if it has one.
	ID         string      `json:"id,omitempty"`
	Author     string      `json:"author,omitempty"`
	Statements []Statement `json:"statements"`
}

// Statement says what one vulnerability does to some products.
type Statement struct {
	// Vulnerability is the advisory's name (CVE-..., GHSA-..., GO-...);
	// Aliases are its other names.
	Vulnerability string    `json:"vulnerability"`
	Aliases       []string  `json:"aliases,omitempty"`
	Products      []Product `json:"products"`
	Status        string    `json:"status"`
	// Justification is why a product is not affected, in OpenVEX's
	// vocabulary (vulnerable_code_not_present, ...).
	Justification string `json:"justification,omitempty"`
	// Impact is the author's free text (OpenVEX impact_statement,
	// CycloneDX analysis detail).
	Impact string `json:"impact,omitempty"`
}

// Names returns the vulnerability's name and aliases.
func (s Statement) Names() []string {
	return append([]string{s.Vulnerability}, s.Aliases...)
}

// Product is one product a statement is about: a package URL, optionally
// narrowed to versions, and the subcomponents (package URLs) inside it the
// vulnerability is in.
type Product struct {
	PURL string `json:"purl"`
	// Versions and Ranges narrow a PURL without a version (CycloneDX
	// affects versions): exact versions, and vers ranges
	// ("vers:maven/>=6.0|<7").
	Versions      []string `json:"versions,omitempty"`
	Ranges        []string `json:"ranges,omitempty"`
	Subcomponents []string `json:"subcomponents,omitempty"`
}

// Parse reads an OpenVEX (JSON) or CycloneDX (JSON or XML) document.
// Statements that name no product by package URL are kept without
// products: they cover nothing. Errors wrap ErrInvalid.
func Parse(data []byte) (Document, error) {
	if len(data) > MaxDocumentBytes {
		return Document{}, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalid, len(data), MaxDocumentBytes)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff")
	if len(trimmed) > 0 && trimmed[0] == '<' {
		return parseCycloneDX(data, cdx.BOMFileFormatXML)
	}
	var probe struct {
		Context   string `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Document{}, fmt.Errorf("%w: not JSON or XML: %w", ErrInvalid, err)
	}
	switch {
	case strings.HasPrefix(probe.Context, "https://openvex.dev/ns"):
		return parseOpenVEX(data)
	case probe.BOMFormat == "CycloneDX":
		return parseCycloneDX(data, cdx.BOMFileFormatJSON)
	}
	return Document{}, fmt.Errorf("%w: neither OpenVEX (@context https://openvex.dev/ns...) nor CycloneDX (bomFormat CycloneDX)", ErrInvalid)
}

func parseOpenVEX(data []byte) (Document, error) {
	doc, err := openvex.Parse(data)
	if err != nil {
		return Document{}, fmt.Errorf("%w: openvex: %w", ErrInvalid, err)
	}
	if len(doc.Statements) > MaxStatements {
		return Document{}, fmt.Errorf("%w: %d statements, at most %d", ErrInvalid, len(doc.Statements), MaxStatements)
	}
	out := Document{Format: FormatOpenVEX, ID: doc.ID, Author: doc.Author, Statements: []Statement{}}
	for i, st := range doc.Statements {
		if len(st.Products) > maxProducts {
			return Document{}, fmt.Errorf("%w: statement %d names %d products, at most %d", ErrInvalid, i, len(st.Products), maxProducts)
		}
		s := Statement{
			Vulnerability: string(st.Vulnerability.Name), Status: string(st.Status),
			Justification: string(st.Justification), Impact: st.ImpactStatement, Products: []Product{},
		}
		for _, a := range st.Vulnerability.Aliases {
			s.Aliases = append(s.Aliases, string(a))
		}
		if s.Vulnerability == "" {
			return Document{}, fmt.Errorf("%w: statement %d names no vulnerability", ErrInvalid, i)
		}
		for _, p := range st.Products {
			purl := componentPURL(p.Component)
			if purl == "" {
				continue
			}
			if len(p.Subcomponents) > maxProducts {
				return Document{}, fmt.Errorf("%w: statement %d: product %s has %d subcomponents, at most %d", ErrInvalid, i, purl, len(p.Subcomponents), maxProducts)
			}
			prod := Product{PURL: purl}
			for _, sub := range p.Subcomponents {
				if sp := componentPURL(sub.Component); sp != "" {
					prod.Subcomponents = append(prod.Subcomponents, sp)
				}
			}
			// A product whose subcomponents are all named otherwise than by
			// purl would otherwise read as the product itself.
			if len(p.Subcomponents) > 0 && len(prod.Subcomponents) == 0 {
				continue
			}
			s.Products = append(s.Products, prod)
		}
		out.Statements = append(out.Statements, s)
	}
	return out, nil
}

// componentPURL is the package URL naming an OpenVEX component: its purl
// identifier, or its @id when that is a purl.
func componentPURL(c openvex.Component) string {
	for _, v := range []string{c.Identifiers[openvex.PURL], c.ID} {
		if isPURL(v) {
			return v
		}
	}
	return ""
}

func isPURL(s string) bool {
	if !strings.HasPrefix(s, "pkg:") {
		return false
	}
	_, err := packageurl.FromString(s)
	return err == nil
}

// cdxStates maps CycloneDX analysis states onto OpenVEX statuses.
var cdxStates = map[cdx.ImpactAnalysisState]string{
	cdx.IASNotAffected:          StatusNotAffected,
	cdx.IASResolved:             StatusFixed,
	cdx.IASResolvedWithPedigree: StatusFixed,
	cdx.IASExploitable:          StatusAffected,
	cdx.IASInTriage:             StatusUnderInvestigation,
	cdx.IASFalsePositive:        "false_positive",
}

// cdxJustifications maps CycloneDX justifications onto OpenVEX's (the
// mapping trivy and vexctl use).
var cdxJustifications = map[cdx.ImpactAnalysisJustification]string{
	cdx.IAJCodeNotPresent:               string(openvex.VulnerableCodeNotPresent),
	cdx.IAJCodeNotReachable:             string(openvex.VulnerableCodeNotInExecutePath),
	cdx.IAJRequiresConfiguration:        string(openvex.VulnerableCodeCannotBeControlledByAdversary),
	cdx.IAJRequiresDependency:           string(openvex.ComponentNotPresent),
	cdx.IAJRequiresEnvironment:          string(openvex.VulnerableCodeCannotBeControlledByAdversary),
	cdx.IAJProtectedByCompiler:          string(openvex.InlineMitigationsAlreadyExist),
	cdx.IAJProtectedAtRuntime:           string(openvex.InlineMitigationsAlreadyExist),
	cdx.IAJProtectedAtPerimeter:         string(openvex.InlineMitigationsAlreadyExist),
	cdx.IAJProtectedByMitigatingControl: string(openvex.InlineMitigationsAlreadyExist),
}

func parseCycloneDX(data []byte, format cdx.BOMFileFormat) (Document, error) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), format).Decode(&bom); err != nil {
		return Document{}, fmt.Errorf("%w: cyclonedx: %w", ErrInvalid, err)
	}
	if bom.Vulnerabilities == nil || len(*bom.Vulnerabilities) == 0 {
		return Document{}, fmt.Errorf("%w: cyclonedx document has no vulnerabilities", ErrInvalid)
	}
	if len(*bom.Vulnerabilities) > MaxStatements {
		return Document{}, fmt.Errorf("%w: %d vulnerabilities, at most %d", ErrInvalid, len(*bom.Vulnerabilities), MaxStatements)
	}
	refs := bomRefs(&bom)
	out := Document{Format: FormatCycloneDX, ID: bom.SerialNumber, Statements: []Statement{}}
	if bom.Metadata != nil && bom.Metadata.Manufacturer != nil {
		out.Author = bom.Metadata.Manufacturer.Name
	}
	for i, v := range *bom.Vulnerabilities {
		if v.ID == "" {
			return Document{}, fmt.Errorf("%w: vulnerability %d has no id", ErrInvalid, i)
		}
		s := Statement{Vulnerability: v.ID, Products: []Product{}}
		if v.References != nil {
			for _, r := range *v.References {
				if r.ID != "" && r.ID != v.ID {
					s.Aliases = append(s.Aliases, r.ID)
				}
			}
		}
		if v.Analysis != nil {
			s.Status = cmpOr(cdxStates[v.Analysis.State], string(v.Analysis.State))
			s.Justification = cdxJustifications[v.Analysis.Justification]
			s.Impact = strings.TrimSpace(v.Analysis.Detail)
		}
		if v.Affects != nil {
			if len(*v.Affects) > maxProducts {
				return Document{}, fmt.Errorf("%w: vulnerability %s affects %d targets, at most %d", ErrInvalid, v.ID, len(*v.Affects), maxProducts)
			}
			for _, a := range *v.Affects {
				if p, ok := cdxProduct(a, refs); ok {
					s.Products = append(s.Products, p)
				}
			}
		}
		out.Statements = append(out.Statements, s)
	}
	return out, nil
}

// bomRefs maps the document's component bom-refs to their purls.
func bomRefs(bom *cdx.BOM) map[string]string {
	refs := map[string]string{}
	var walk func(cs *[]cdx.Component, depth int)
	add := func(c *cdx.Component) {
		if c.BOMRef != "" && isPURL(c.PackageURL) {
			refs[c.BOMRef] = c.PackageURL
		}
	}
	walk = func(cs *[]cdx.Component, depth int) {
		if cs == nil || depth > 16 {
			return
		}
		for i := range *cs {
			add(&(*cs)[i])
			walk((*cs)[i].Components, depth+1)
		}
	}
	if bom.Metadata != nil && bom.Metadata.Component != nil {
		add(bom.Metadata.Component)
	}
	walk(bom.Components, 0)
	return refs
}

// cdxProduct resolves one affects target: a bom-ref of a component in the
// document, a purl, or a BOM-Link ending in #purl. Its versions narrow it:
// only versions stated unaffected count, since the statement's analysis is
// about those.
func cdxProduct(a cdx.Affects, refs map[string]string) (Product, bool) {
	purl, ok := refs[a.Ref]
	if !ok {
		ref := a.Ref
		if strings.HasPrefix(ref, "urn:cdx:") {
			_, ref, _ = strings.Cut(ref, "#")
		}
		if !isPURL(ref) {
			return Product{}, false
		}
		purl = ref
	}
	p := Product{PURL: purl}
	if a.Range == nil || len(*a.Range) == 0 {
		return p, true
	}
	for _, v := range *a.Range {
		if v.Status != cdx.VulnerabilityStatusNotAffected {
			continue
		}
		switch {
		case v.Version != "":
			p.Versions = append(p.Versions, v.Version)
		case v.Range != "":
			p.Ranges = append(p.Ranges, v.Range)
		}
	}
	// Versions were given but none is stated unaffected: the target names
	// no version the analysis is about.
	if len(p.Versions) == 0 && len(p.Ranges) == 0 {
		return Product{}, false
	}
	return p, true
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Record is one stored VEX document: who added it, when, for which scan
// (none: the whole tenant), and what it says.
type Record struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Scan, when set, is the one scan the document was uploaded with; it
	// applies to that scan only.
	Scan       string    `json:"scan,omitempty"`
	Format     string    `json:"format"`
	DocumentID string    `json:"document_id,omitempty"`
	Author     string    `json:"author,omitempty"`
	SHA256     string    `json:"sha256"`
	AddedBy    string    `json:"added_by"`
	AddedAt    time.Time `json:"added_at"`
	// Key is where the document itself is stored, as uploaded.
	Key        string      `json:"key"`
	Statements []Statement `json:"statements"`
}

// names reports whether the statement is about a vulnerability known by
// any of ids.
func (s Statement) names(ids []string) bool {
	for _, n := range s.Names() {
		if n != "" && slices.Contains(ids, n) {
			return true
		}
	}
	return false
}
