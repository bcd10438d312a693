package vulndb

import (
	"fmt"
	"strings"
)

// interval is one alternative of an OSV range: from an "introduced" event up to a
// "fixed" (exclusive) or "last_affected" (inclusive) event, or without an upper bound.
type interval struct {
	from      string // "0" means no lower bound
	to        string // "" means no upper bound
	inclusive bool   // to is the last affected version rather than the fixed one
}

// allVersions is the VulnerableVersions entry for "every version". trivy's comparers
// (compare.IsVulnerable) treat an empty entry as matching any version, even one they
// cannot parse. trivy-db writes ">=0" instead, which misses versions that sort below
// 0: Go pseudo-versions "v0.0.0-<date>-<commit>" and npm "0.0.0-x" pre-releases.
const allVersions = ""

// constraint renders the interval in the syntax trivy-db stores and all four of
// trivy's comparers parse: ">=A, <B", "<B", "<=B", ">=A", "=A". The "<B" part is also
// what trivy reports as the fixed version when an advisory has no PatchedVersions.
func (iv interval) constraint() string {
	switch {
	case iv.to == "" && iv.from == "0":
		return allVersions
	case iv.to == "":
		return ">=" + iv.from
	case iv.inclusive && iv.from == iv.to:
		return "=" + iv.from
	}
	upper := "<" + iv.to
	if iv.inclusive {
		upper = "<=" + iv.to
	}
	if iv.from == "0" {
		return upper
	}
	return ">=" + iv.from + ", " + upper
}

// constraints turns the ranges and versions of one affected entry into the
// alternatives of Advisory.VulnerableVersions: a version is vulnerable if it matches
// any of them. Problems (versions the ecosystem cannot parse, or that would inject
// constraint syntax) drop the alternative or version concerned and are returned as
// notes; the rest of the entry stays usable.
func (e ecosystemSpec) constraints(a osvAffected) (alts []string, notes []error) {
	seen := map[string]bool{}
	var rangeMatchers []matchFunc

	ivs, notes := e.intervals(a.Ranges)
	if len(ivs) > maxIntervals {
		notes = append(notes, fmt.Errorf("%d ranges, only the first %d used", len(ivs), maxIntervals))
		ivs = ivs[:maxIntervals]
	}
	for _, iv := range ivs {
		c := iv.constraint()
		if seen[c] {
			continue
		}
		m, err := e.matcher(c)
		if err != nil {
			notes = append(notes, fmt.Errorf("drop constraint %q: %w", c, err))
			continue
		}
		seen[c] = true
		alts = append(alts, c)
		rangeMatchers = append(rangeMatchers, m)
	}

	// Explicit versions are exact alternatives. Those the ranges already cover are
	// left out, as trivy-db does, so long PyPI lists do not bloat every lookup.
	versions := a.Versions
	if len(versions) > maxVersions {
		notes = append(notes, fmt.Errorf("%d versions, only the first %d used", len(versions), maxVersions))
		versions = versions[:maxVersions]
	}
	for _, raw := range versions {
		v := e.cleanVersion(raw)
		if err := checkVersion(v); err != nil {
			notes = append(notes, fmt.Errorf("drop version: %w", err))
			continue
		}
		c := "=" + v
		if seen[c] {
			continue
		}
		covered, err := anyMatch(rangeMatchers, v)
		if err == nil && !covered {
			_, err = e.compile(c)
		}
		if err != nil {
			notes = append(notes, fmt.Errorf("drop version %q: %w", v, err))
			continue
		}
		if !covered {
			seen[c] = true
			alts = append(alts, c)
		}
	}
	return alts, notes
}

// matcher compiles a constraint, allVersions included.
func (e ecosystemSpec) matcher(c string) (matchFunc, error) {
	if c == allVersions {
		return func(string) (bool, error) { return true, nil }, nil
	}
	return e.compile(c)
}

// intervals reads the events of ECOSYSTEM and SEMVER ranges in order, as trivy-db
// does: every "introduced" opens an interval, and the next "fixed" or "last_affected"
// closes it. GIT ranges hold commits, not versions, and are skipped.
func (e ecosystemSpec) intervals(ranges []osvRange) (out []interval, notes []error) {
	for _, r := range ranges {
		if !strings.EqualFold(r.Type, rangeEcosystem) && !strings.EqualFold(r.Type, rangeSemver) {
			continue
		}
		var open *interval // the interval being read
		dropped := false   // the interval being read had a bad "introduced"
		for _, ev := range r.Events {
			ver, introduced, inclusive := ev.Introduced, true, false
			switch {
			case ev.Introduced != "":
			case ev.Fixed != "":
				ver, introduced = ev.Fixed, false
			case ev.LastAffected != "":
				ver, introduced, inclusive = ev.LastAffected, false, true
			default:
				continue // "limit", or an empty event
			}
			ver = e.cleanVersion(ver)
			err := checkVersion(ver)

			if introduced {
				if open != nil {
					out = append(out, *open) // introduced twice: the first stays open
				}
				open, dropped = nil, err != nil
				if err != nil {
					notes = append(notes, fmt.Errorf("drop range from bad introduced event: %w", err))
				} else {
					open = &interval{from: ver}
				}
				continue
			}

			// A bad bound, or the bound of an interval already dropped, drops the
			// interval: it cannot be compared, and left open it would flag every
			// later version, fixed ones included.
			switch {
			case dropped:
			case err != nil:
				notes = append(notes, fmt.Errorf("drop range with bad upper bound: %w", err))
			default:
				if open == nil {
					// An upper bound with no "introduced" before it: the record is
					// malformed; read it as unbounded below rather than lose it.
					open = &interval{from: "0"}
				}
				open.to, open.inclusive = ver, inclusive
				out = append(out, *open)
			}
			open, dropped = nil, false
		}
		if open != nil {
			out = append(out, *open)
		}
	}
	return out, notes
}

func anyMatch(matchers []matchFunc, version string) (bool, error) {
	for _, m := range matchers {
		ok, err := m(version)
		if err != nil {
			return false, err
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}
