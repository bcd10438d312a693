package vulndb

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aquasecurity/trivy-db/pkg/types"
	cvss20 "github.com/pandatix/go-cvss/20"
	cvss30 "github.com/pandatix/go-cvss/30"
	cvss31 "github.com/pandatix/go-cvss/31"
	cvss40 "github.com/pandatix/go-cvss/40"
)

// parseCVSS reads the CVSS vectors of an OSV severity list and computes their base
// scores. The vector's own prefix decides its version ("CVSS:4.0/", "CVSS:3.x/", none
// for v2), since records sometimes file a vector under the wrong type. The first
// vector of each version wins; vectors that do not parse are returned as notes.
func parseCVSS(list []osvSeverity) (types.CVSS, []error) {
	var c types.CVSS
	var notes []error
	for _, s := range list {
		// A trailing "/" appears in some GHSA records; trivy-db trims it too.
		vec := strings.TrimSuffix(strings.TrimSpace(s.Score), "/")
		if vec == "" {
			continue
		}
		switch {
		case strings.HasPrefix(vec, "CVSS:4.0/"):
			if c.V40Vector != "" {
				continue
			}
			v, err := cvss40.ParseVector(vec)
			if err != nil {
				notes = append(notes, fmt.Errorf("parse cvss v4 vector %q: %w", vec, err))
				continue
			}
			// Score is the base score (CVSS-B) when, as in OSV records, the vector
			// holds only base metrics.
			c.V40Vector, c.V40Score = vec, v.Score()
		case strings.HasPrefix(vec, "CVSS:3.0/"), strings.HasPrefix(vec, "CVSS:3.1/"):
			if c.V3Vector != "" {
				continue
			}
			score, err := cvss3BaseScore(vec)
			if err != nil {
				notes = append(notes, fmt.Errorf("parse cvss v3 vector %q: %w", vec, err))
				continue
			}
			c.V3Vector, c.V3Score = vec, score
		case strings.EqualFold(s.Type, severityCVSSv2):
			if c.V2Vector != "" {
				continue
			}
			vec = strings.TrimSuffix(strings.TrimPrefix(vec, "("), ")")
			v, err := cvss20.ParseVector(vec)
			if err != nil {
				notes = append(notes, fmt.Errorf("parse cvss v2 vector %q: %w", vec, err))
				continue
			}
			c.V2Vector, c.V2Score = vec, v.BaseScore()
		case strings.EqualFold(s.Type, severityCVSSv3), strings.EqualFold(s.Type, severityCVSSv4):
			notes = append(notes, fmt.Errorf("cvss vector %q of type %s has no known version prefix", vec, s.Type))
		}
	}
	return c, notes
}

func cvss3BaseScore(vec string) (float64, error) {
	if strings.HasPrefix(vec, "CVSS:3.0/") {
		v, err := cvss30.ParseVector(vec)
		if err != nil {
			return 0, err
		}
		return v.BaseScore(), nil
	}
	v, err := cvss31.ParseVector(vec)
	if err != nil {
		return 0, err
	}
	return v.BaseScore(), nil
}

// severityFromCVSS rates the base score of the v3 vector, else the v4 one, else the
// v2 one; UNKNOWN when there is none or its score is 0 ("None" in CVSS).
//
// v3 comes first because it is what the advisory databases still rate by: for
// GHSA-qw6h-vgh9-j6wx GitHub says MODERATE, its v3 vector scores 5.0 (MEDIUM), and its
// v4 vector 2.3 (LOW).
func severityFromCVSS(c types.CVSS) types.Severity {
	switch {
	case c.V3Score > 0:
		return ratingV3V4(c.V3Score)
	case c.V40Score > 0:
		return ratingV3V4(c.V40Score)
	case c.V2Score > 0:
		return ratingV2(c.V2Score)
	}
	return types.SeverityUnknown
}

// ratingV3V4 is the qualitative rating of CVSS v3.x and v4.0: 0.1-3.9 low, 4.0-6.9
// medium, 7.0-8.9 high, 9.0-10.0 critical.
func ratingV3V4(score float64) types.Severity {
	switch {
	case score >= 9.0:
		return types.SeverityCritical
	case score >= 7.0:
		return types.SeverityHigh
	case score >= 4.0:
		return types.SeverityMedium
	case score > 0:
		return types.SeverityLow
	}
	return types.SeverityUnknown
}

// ratingV2 is NVD's rating of CVSS v2, which has no critical: 0.0-3.9 low, 4.0-6.9
// medium, 7.0-10.0 high.
func ratingV2(score float64) types.Severity {
	switch {
	case score >= 7.0:
		return types.SeverityHigh
	case score >= 4.0:
		return types.SeverityMedium
	case score > 0:
		return types.SeverityLow
	}
	return types.SeverityUnknown
}

// databaseSpecific is the part of a record's database_specific object the import
// reads. Its shape is up to each database, so fields are decoded one by one and a
// field of an unexpected type is ignored rather than costing the record.
type databaseSpecific struct {
	severity string   // GHSA: LOW, MODERATE, HIGH, CRITICAL
	cweIDs   []string // GHSA: CWE-79, ...
}

func parseDatabaseSpecific(raw json.RawMessage) databaseSpecific {
	var fields map[string]json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &fields) != nil {
		return databaseSpecific{}
	}
	var ds databaseSpecific
	_ = json.Unmarshal(fields["severity"], &ds.severity)
	var cwes []string
	if json.Unmarshal(fields["cwe_ids"], &cwes) == nil {
		for _, id := range cwes {
			if strings.HasPrefix(id, "CWE-") && checkToken(id, maxIDBytes) == nil {
				ds.cweIDs = append(ds.cweIDs, id)
			}
		}
	}
	return ds
}

// severityFromName maps a database's own rating onto trivy's scale; GHSA's MODERATE
// is MEDIUM.
func severityFromName(name string) types.Severity {
	switch strings.ToUpper(strings.TrimSpace(name)) {
	case "LOW":
		return types.SeverityLow
	case "MODERATE", "MEDIUM":
		return types.SeverityMedium
	case "HIGH":
		return types.SeverityHigh
	case "CRITICAL":
		return types.SeverityCritical
	}
	return types.SeverityUnknown
}
