package vulndb

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aquasecurity/trivy-db/pkg/types"
)

// conversion is what one OSV record becomes in the database.
type conversion struct {
	id       string
	aliases  []string
	vuln     types.Vulnerability
	packages []packageAdvisory

	skipped     map[string]int // affected entries per ecosystem the import does not support
	unversioned int            // supported packages left without a usable version range
	notes       []error        // data dropped on the way, for the log
}

// packageAdvisory is the advisory of one package.
type packageAdvisory struct {
	eco         ecosystemSpec
	name        string   // as trivy looks it up (ecosystemSpec.packageKey)
	constraints []string // Advisory.VulnerableVersions
}

// convertRecord maps a parsed record onto trivy-db's types. It never fails: whatever
// cannot be used is dropped and noted. A withdrawn record is the caller's business.
func convertRecord(rec *record) conversion {
	conv := conversion{id: rec.ID, skipped: map[string]int{}}

	// The record's id is the vulnerability id; aliases (and upstream ids, which name
	// the same flaw) go to Advisory.VendorIDs, which trivy passes on as
	// DetectedVulnerability.VendorIDs.
	seenIDs := map[string]bool{rec.ID: true}
	for _, id := range slices.Concat(rec.Aliases, rec.Upstream) {
		id = strings.TrimSpace(id)
		if seenIDs[id] {
			continue
		}
		if err := checkToken(id, maxIDBytes); err != nil {
			conv.notes = append(conv.notes, fmt.Errorf("drop alias: %w", err))
			continue
		}
		if len(conv.aliases) == maxAliases {
			conv.notes = append(conv.notes, fmt.Errorf("more than %d aliases, the rest dropped", maxAliases))
			break
		}
		seenIDs[id] = true
		conv.aliases = append(conv.aliases, id)
	}

	// Packages: the same package may appear in several affected entries, each with
	// its own ranges (GHSA does this); their alternatives are merged.
	index := map[string]int{}            // package -> position in conv.packages
	seen := map[string]map[string]bool{} // package -> its alternatives
	for _, a := range rec.Affected {
		eco, ok := ecosystemFor(a.Package.Ecosystem)
		if !ok {
			name, _, _ := strings.Cut(strings.TrimSpace(a.Package.Ecosystem), ":")
			if name == "" {
				name = unnamedEcosystem
			}
			conv.skipped[name]++
			continue
		}
		alts, notes := eco.constraints(a)
		for _, n := range notes {
			conv.notes = append(conv.notes, fmt.Errorf("%s package %q: %w", eco.name, a.Package.Name, n))
		}
		name := eco.packageKey(a.Package.Name)
		key := string(eco.trivy) + "\x00" + name
		i, ok := index[key]
		if !ok {
			i = len(conv.packages)
			index[key], seen[key] = i, map[string]bool{}
			conv.packages = append(conv.packages, packageAdvisory{eco: eco, name: name})
		}
		p := &conv.packages[i]
		for _, c := range alts {
			if seen[key][c] {
				continue
			}
			if len(p.constraints) == maxAlternatives {
				conv.notes = append(conv.notes, fmt.Errorf("%s package %q: more than %d alternatives, the rest dropped", eco.name, name, maxAlternatives))
				break
			}
			seen[key][c] = true
			p.constraints = append(p.constraints, c)
		}
	}
	// A package without alternatives would never match in trivy; it is not written.
	conv.packages = slices.DeleteFunc(conv.packages, func(p packageAdvisory) bool {
		if len(p.constraints) == 0 {
			conv.unversioned++
			conv.notes = append(conv.notes, fmt.Errorf("%s package %q: no usable version range, not imported", p.eco.name, p.name))
			return true
		}
		return false
	})

	conv.vuln = vulnerabilityOf(rec, &conv.notes)
	return conv
}

// vulnerabilityOf builds the entry of trivy-db's "vulnerability" bucket, which trivy
// copies into DetectedVulnerability.Vulnerability.
func vulnerabilityOf(rec *record, notes *[]error) types.Vulnerability {
	cvss, cvssNotes := parseCVSS(rec.Severity)
	*notes = append(*notes, cvssNotes...)
	if cvss == (types.CVSS{}) {
		// Some sources rate per package only; take the first affected entry that does.
		for _, a := range rec.Affected {
			c, n := parseCVSS(a.Severity)
			*notes = append(*notes, n...)
			if c != (types.CVSS{}) {
				cvss = c
				break
			}
		}
	}
	ds := parseDatabaseSpecific(rec.DatabaseSpecific)

	severity := severityFromCVSS(cvss)
	if severity == types.SeverityUnknown {
		severity = severityFromName(ds.severity)
	}

	v := types.Vulnerability{
		Title:            strings.TrimSpace(rec.Summary),
		Description:      strings.TrimSpace(rec.Details),
		CweIDs:           ds.cweIDs,
		References:       references(rec.References),
		PublishedDate:    parseTime(rec.Published),
		LastModifiedDate: parseTime(rec.Modified),
	}
	// An unknown severity is left out altogether: trivy then reports UNKNOWN, where
	// Severity "UNKNOWN" would make it warn about using another vendor's severity.
	if severity != types.SeverityUnknown {
		v.Severity = severity.String()
		v.VendorSeverity = types.VendorSeverity{SourceID: severity}
	}
	if cvss != (types.CVSS{}) {
		v.CVSS = types.VendorCVSS{SourceID: cvss}
	}
	return v
}

func references(refs []osvReference) []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range refs {
		u := strings.TrimSpace(r.URL)
		if u == "" || seen[u] {
			continue
		}
		if len(out) == maxReferences {
			break
		}
		seen[u] = true
		out = append(out, u)
	}
	return out
}

// parseTime reads an OSV timestamp (RFC 3339, UTC). Golang's vulndb writes the zero
// time for "unknown"; that and anything unparsable become nil.
func parseTime(s string) *time.Time {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		if t.Year() <= 1 {
			return nil
		}
		t = t.UTC()
		return &t
	}
	return nil
}
