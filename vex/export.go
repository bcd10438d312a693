package vex

import (
	"fmt"
	"slices"
	"strings"
	"time"

	openvex "github.com/openvex/go-vex/pkg/vex"

	"github.com/tollgate/tollgate/report"
)

// OpenVEXContext is the @context of the documents Export writes.
const OpenVEXContext = "https://openvex.dev/ns/v0.2.0"

// ExportAuthor is the author Export names.
const ExportAuthor = "tollgate"

// Export writes a scan's final vulnerability status as an OpenVEX v0.2.0
// document: one statement per vulnerability finding, whose product is the
// scanned app (pkg:generic/<app>, at the commit when there is one) and
// whose subcomponent is the vulnerable package.
//
//   - A finding a VEX statement silenced in the verdict is not_affected
//     (with that statement's justification) or fixed.
//   - Every other finding is affected: an accepted risk (an exception)
//     says so and until when in its action statement; the others say to
//     update to a fixed version, or that none is known.
//
// The same report always gives the same bytes.
func Export(r report.Report) ([]byte, error) {
	ts := r.FinishedAt
	if ts.IsZero() {
		ts = r.StartedAt
	}
	ts = ts.UTC().Truncate(time.Second)
	doc := openvex.VEX{
		Metadata: openvex.Metadata{
			Context: OpenVEXContext, ID: "https://tollgate.dev/scans/" + r.ScanID + "/openvex",
			Author: ExportAuthor, AuthorRole: "security gate", Timestamp: &ts, Version: 1,
			Tooling: "tollgate " + report.Schema,
		},
		Statements: []openvex.Statement{},
	}
	app := appPURL(r)
	for _, v := range r.Vulnerabilities {
		st := openvex.Statement{
			Vulnerability: openvex.Vulnerability{Name: openvex.VulnerabilityID(v.ID), Aliases: aliases(v)},
			Products: []openvex.Product{{
				Component:     openvex.Component{ID: app},
				Subcomponents: []openvex.Subcomponent{{Component: openvex.Component{ID: cmpOr(v.PURL, v.Package+"@"+v.Version)}}},
			}},
		}
		if a, ok := silencedBy(r.VEX, v); ok {
			st.Status = openvex.Status(a.Status)
			st.StatusNotes = fmt.Sprintf("VEX document %s (%s), added by %s", a.Record, a.Format, a.AddedBy)
			if a.Status == StatusNotAffected {
				st.Justification = openvex.Justification(a.Justification)
			}
		} else {
			st.Status = openvex.StatusAffected
			st.ActionStatement = actionStatement(r.Exceptions, v)
		}
		doc.Statements = append(doc.Statements, st)
	}
	out, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode OpenVEX of scan %s: %w", r.ScanID, err)
	}
	return out, nil
}

// appPURL names the scanned app as a generic package URL.
func appPURL(r report.Report) string {
	p := "pkg:generic/" + strings.ToLower(cmpOr(r.App, "app"))
	if r.Commit != "" {
		p += "@" + r.Commit
	}
	return p
}

// aliases are the finding's other names, once each and never its id
// (OpenVEX wants them unique).
func aliases(v report.Vulnerability) []openvex.VulnerabilityID {
	var out []openvex.VulnerabilityID
	seen := map[string]bool{v.ID: true}
	for _, a := range v.Aliases {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, openvex.VulnerabilityID(a))
		}
	}
	return out
}

func silencedBy(applied []report.AppliedVEX, v report.Vulnerability) (report.AppliedVEX, bool) {
	i := slices.IndexFunc(applied, func(a report.AppliedVEX) bool {
		return a.Vulnerability == v.ID && a.PURL == v.PURL
	})
	if i < 0 {
		return report.AppliedVEX{}, false
	}
	return applied[i], true
}

func actionStatement(excs []report.AppliedException, v report.Vulnerability) string {
	for _, e := range excs {
		id := e.Finding["vulnerability"]
		if e.Finding["package"] == v.Package && (id == v.ID || slices.Contains(v.Aliases, id)) {
			return fmt.Sprintf("accepted risk: exception %s (%s), approved by %s, until %s", e.ID, e.Scope, e.Approver, e.ExpiresAt.UTC().Format(time.RFC3339))
		}
	}
	if len(v.FixedVersions) > 0 {
		return fmt.Sprintf("update %s to %s", v.Package, strings.Join(v.FixedVersions, " or "))
	}
	return fmt.Sprintf("no fixed version of %s is known: remove it, or assess and record a VEX statement or an exception", v.Package)
}
