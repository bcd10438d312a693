package vex

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	openvex "github.com/openvex/go-vex/pkg/vex"
	"github.com/package-url/packageurl-go"

	"github.com/tollgate/tollgate/report"
)

// Match is one statement resolved against one vulnerability finding of a
// scan: the policy sees these as input.vex and decides what they silence.
type Match struct {
	// Record is the stored document's id; Format its format.
	Record string `json:"record"`
	Format string `json:"format"`
	// Vulnerability and PURL name the finding covered (its id and its
	// package's purl, as in the report).
	Vulnerability string `json:"vulnerability"`
	Package       string `json:"package"`
	Version       string `json:"version"`
	PURL          string `json:"purl"`
	// Product is the statement's product the match went through.
	Product       string    `json:"product"`
	Status        string    `json:"status"`
	Justification string    `json:"justification"`
	Impact        string    `json:"impact,omitempty"`
	AddedBy       string    `json:"added_by"`
	AddedAt       time.Time `json:"added_at"`
}

// Resolve matches the statements of records against a scan's
// vulnerability findings and packages (its SBOM). A statement matches a
// finding when it names the finding's vulnerability (id or alias, on
// either side) and either
//   - a product without subcomponents whose purl matches the finding's
//     package purl, or
//   - a product that matches a package of the SBOM, with a subcomponent
//     whose purl matches the finding's package purl.
//
// A product purl without a version matches every version (OpenVEX);
// qualifiers it names must be on the package (go-vex's PurlMatches). Every
// status is returned: which statuses silence a finding is the policy's
// call. The result is sorted, so it is the same for the same input.
func Resolve(records []Record, vulns []report.Vulnerability, packages []report.Package) []Match {
	out := []Match{}
	for _, rec := range records {
		for _, st := range rec.Statements {
			for _, v := range vulns {
				if v.PURL == "" || !st.names(append([]string{v.ID}, v.Aliases...)) {
					continue
				}
				for _, p := range st.Products {
					if !covers(p, v.PURL, packages) {
						continue
					}
					out = append(out, Match{
						Record: rec.ID, Format: rec.Format, Vulnerability: v.ID, Package: v.Package, Version: v.Version,
						PURL: v.PURL, Product: p.PURL, Status: st.Status, Justification: st.Justification, Impact: st.Impact,
						AddedBy: rec.AddedBy, AddedAt: rec.AddedAt,
					})
					break
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Match) int {
		return cmp.Or(strings.Compare(a.Vulnerability, b.Vulnerability), strings.Compare(a.PURL, b.PURL), strings.Compare(a.Record, b.Record))
	})
	return slices.CompactFunc(out, func(a, b Match) bool {
		return a.Vulnerability == b.Vulnerability && a.PURL == b.PURL && a.Record == b.Record
	})
}

// covers says whether product p names the package purl, directly or as a
// subcomponent of a product present in the SBOM.
func covers(p Product, purl string, packages []report.Package) bool {
	if len(p.Subcomponents) == 0 {
		return productMatches(p, purl)
	}
	inSBOM := slices.ContainsFunc(packages, func(pkg report.Package) bool {
		return pkg.PURL != "" && productMatches(p, pkg.PURL)
	})
	if !inSBOM {
		return false
	}
	purl = withDefaults(purl)
	return slices.ContainsFunc(p.Subcomponents, func(sub string) bool { return openvex.PurlMatches(sub, purl) })
}

// productMatches matches the product's purl, and its versions or ranges
// when it has them, against a package's purl.
func productMatches(p Product, purl string) bool {
	purl = withDefaults(purl)
	if !openvex.PurlMatches(p.PURL, purl) {
		return false
	}
	if len(p.Versions) == 0 && len(p.Ranges) == 0 {
		return true
	}
	pkg, err := packageurl.FromString(purl)
	if err != nil || pkg.Version == "" {
		return false
	}
	if slices.Contains(p.Versions, pkg.Version) {
		return true
	}
	return slices.ContainsFunc(p.Ranges, func(r string) bool { return inVersRange(r, pkg.Type, pkg.Version) })
}

// withDefaults adds to a package's purl the qualifiers the purl spec gives
// a default: a maven purl without "type" is a jar, so a statement about
// "pkg:maven/g/a?type=jar" names it (scanners leave the default out).
func withDefaults(purl string) string {
	p, err := packageurl.FromString(purl)
	if err != nil || p.Type != packageurl.TypeMaven {
		return purl
	}
	q := p.Qualifiers.Map()
	if _, ok := q["type"]; ok {
		return purl
	}
	q["type"] = "jar"
	p.Qualifiers = packageurl.QualifiersFromMap(q)
	return p.ToString()
}

// inVersRange evaluates a vers range ("vers:maven/>=6.0|<7") for version.
// Only versions made of dot-separated numbers (an optional leading v) are
// compared; any other version, a range of another package type, or a
// malformed range matches nothing, so an unreadable range silences nothing.
func inVersRange(vers, purlType, version string) bool {
	rest, ok := strings.CutPrefix(vers, "vers:")
	if !ok {
		return false
	}
	scheme, constraints, ok := strings.Cut(rest, "/")
	if !ok || scheme != purlType {
		return false
	}
	v, ok := numericVersion(version)
	if !ok {
		return false
	}
	if strings.TrimSpace(constraints) == "*" {
		return true
	}
	// A vers range is a sorted list of constraints: a version is in it
	// when it equals an "=" constraint, or lies between a lower bound and
	// the upper bound that follows it (or above a last lower bound).
	var lowerOK *bool
	for c := range strings.SplitSeq(constraints, "|") {
		c = strings.TrimSpace(c)
		bound := strings.TrimLeft(c, "<>=!")
		op := c[:len(c)-len(bound)]
		b, ok := numericVersion(strings.TrimSpace(bound))
		if !ok {
			return false
		}
		d := compareNumeric(v, b)
		switch op {
		case "", "=":
			if d == 0 {
				return true
			}
		case "!=":
			if d == 0 {
				return false
			}
		case ">", ">=":
			ok := d > 0 || (op == ">=" && d == 0)
			lowerOK = &ok
		case "<", "<=":
			if (d < 0 || (op == "<=" && d == 0)) && (lowerOK == nil || *lowerOK) {
				return true
			}
			lowerOK = nil
		default:
			return false
		}
	}
	return lowerOK != nil && *lowerOK
}

func numericVersion(s string) ([]int, bool) {
	s = strings.TrimPrefix(s, "v")
	if s == "" {
		return nil, false
	}
	var out []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

func compareNumeric(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}
