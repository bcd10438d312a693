package vulndb

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on untrusted record content. They are far above anything in the public
// databases (in the shared corpus: 25 KB per record, 8 aliases, 30 range events and
// 1132 versions per package) and keep one hostile file from costing much time or
// memory, here or in every trivy lookup of the package, or producing keys bbolt
// rejects. What a record holds beyond them is dropped with a note.
const (
	maxRecordBytes  = 1 << 20
	maxIDBytes      = 256
	maxPackageBytes = 1024
	maxVersionBytes = 256
	maxAliases      = 256  // per record
	maxReferences   = 1024 // per record
	maxIntervals    = 256  // per affected entry
	maxVersions     = 8192 // per affected entry
	maxAlternatives = 8192 // per package, after merging its affected entries
)

// Values of OSV fields the import reads.
const (
	rangeEcosystem = "ECOSYSTEM"
	rangeSemver    = "SEMVER"
	severityCVSSv2 = "CVSS_V2"
	severityCVSSv3 = "CVSS_V3"
	severityCVSSv4 = "CVSS_V4"
)

// unnamedEcosystem is the ImportStats.SkippedEcosystems key of affected entries
// without a package ecosystem (e.g. GIT-only entries).
const unnamedEcosystem = "(none)"

// record is the part of an OSV record (https://ossf.github.io/osv-schema/) the import
// reads. Dates stay strings: a bad date should not cost the advisory.
type record struct {
	ID               string          `json:"id"`
	Modified         string          `json:"modified"`
	Published        string          `json:"published"`
	Withdrawn        string          `json:"withdrawn"`
	Aliases          []string        `json:"aliases"`
	Upstream         []string        `json:"upstream"`
	Summary          string          `json:"summary"`
	Details          string          `json:"details"`
	Severity         []osvSeverity   `json:"severity"`
	Affected         []osvAffected   `json:"affected"`
	References       []osvReference  `json:"references"`
	DatabaseSpecific json.RawMessage `json:"database_specific"`
}

type osvSeverity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

type osvAffected struct {
	Package  osvPackage    `json:"package"`
	Severity []osvSeverity `json:"severity"`
	Ranges   []osvRange    `json:"ranges"`
	Versions []string      `json:"versions"`
}

type osvPackage struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

// osvEvent holds one event; exactly one field is set in a valid record. "limit" only
// matters for GIT ranges, which the import ignores.
type osvEvent struct {
	Introduced   string `json:"introduced"`
	Fixed        string `json:"fixed"`
	LastAffected string `json:"last_affected"`
}

type osvReference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// parseRecord decodes one OSV record and checks what the import relies on: an id, and
// a usable package name in every affected entry of an ecosystem the import supports.
// Everything else is checked, and dropped with a note, during conversion.
func parseRecord(data []byte) (*record, error) {
	if len(data) > maxRecordBytes {
		return nil, fmt.Errorf("record is %d bytes, more than the %d allowed", len(data), maxRecordBytes)
	}
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	if err := checkToken(rec.ID, maxIDBytes); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	for i, a := range rec.Affected {
		if _, ok := ecosystemFor(a.Package.Ecosystem); !ok {
			continue
		}
		if err := checkPackageName(a.Package.Name); err != nil {
			return nil, fmt.Errorf("affected[%d] package name: %w", i, err)
		}
	}
	return &rec, nil
}

// checkToken accepts a non-empty, printable string without spaces, such as an id.
func checkToken(s string, maxBytes int) error {
	switch {
	case s == "":
		return errors.New("empty")
	case len(s) > maxBytes:
		return fmt.Errorf("longer than %d bytes", maxBytes)
	case !utf8.ValidString(s):
		return errors.New("not valid utf-8")
	case strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return fmt.Errorf("%q contains a space or control character", s)
	}
	return nil
}

// checkPackageName accepts what can serve as a bbolt bucket name and a trivy lookup key.
func checkPackageName(name string) error {
	return checkToken(strings.TrimSpace(name), maxPackageBytes)
}

// checkVersion rejects a version that could change the meaning of the constraint it
// is pasted into: trivy joins alternatives with "||" and bounds with ",", so a version
// such as "1.0 || >=0" from a hostile record would otherwise match everything.
func checkVersion(v string) error {
	if err := checkToken(v, maxVersionBytes); err != nil {
		return err
	}
	if i := strings.IndexAny(v, ",|<>=!~^*()[]{}"); i >= 0 {
		return fmt.Errorf("%q contains %q", v, v[i])
	}
	return nil
}
