package report

// Baseline states of a finding: new since the baseline scan, or known (the
// baseline had it). SARIF calls a known result "unchanged" (baselineState).
const (
	BaselineNew   = "new"
	BaselineKnown = "known"
)

// Baseline names the scan a report's findings were compared with, and how
// many were new and known.
//
// A finding's identity, the same in the baseline and in a diff of two
// scans, leaves out what moves with unrelated edits: a vulnerability is its
// advisory id on a package name, whatever the version (an upgrade that keeps
// the advisory keeps it known); a secret is its rule in a file, a
// misconfiguration its check id in a file and a code weakness its rule in a
// file, line numbers ignored, as GitHub code scanning matches alerts. Two
// findings of one identity are both known when the baseline had one.
type Baseline struct {
	ScanID string `json:"scan_id"`
	// ReleaseID is the known-good release whose scan the baseline is;
	// empty when the scan was named (--baseline).
	ReleaseID string `json:"release_id,omitempty"`
	New       int    `json:"new"`
	Known     int    `json:"known"`
}

// Identity keys of findings (see Baseline).
func (v Vulnerability) identity() string    { return "vuln\x00" + v.ID + "\x00" + v.Package }
func (s Secret) identity() string           { return "secret\x00" + s.Rule + "\x00" + s.File }
func (m Misconfiguration) identity() string { return "misconfig\x00" + m.ID + "\x00" + m.File }
func (w Weakness) identity() string         { return "weakness\x00" + w.Rule + "\x00" + w.File }

// identities is the set of identities of every finding in f but packages.
func (f Findings) identities() map[string]bool {
	ids := map[string]bool{}
	for _, v := range f.Vulnerabilities {
		ids[v.identity()] = true
	}
	for _, s := range f.Secrets {
		ids[s.identity()] = true
	}
	for _, m := range f.Misconfigurations {
		ids[m.identity()] = true
	}
	for _, w := range f.Weaknesses {
		ids[w.identity()] = true
	}
	return ids
}

// MarkBaseline marks each vulnerability, secret, misconfiguration and code
// weakness of f new or known against the findings of the baseline scan
// base, and returns the baseline named scanID and releaseID with the counts.
func (f *Findings) MarkBaseline(base Findings, scanID, releaseID string) *Baseline {
	known := base.identities()
	b := &Baseline{ScanID: scanID, ReleaseID: releaseID}
	state := func(id string) string {
		if known[id] {
			b.Known++
			return BaselineKnown
		}
		b.New++
		return BaselineNew
	}
	for i := range f.Vulnerabilities {
		f.Vulnerabilities[i].Baseline = state(f.Vulnerabilities[i].identity())
	}
	for i := range f.Secrets {
		f.Secrets[i].Baseline = state(f.Secrets[i].identity())
	}
	for i := range f.Misconfigurations {
		f.Misconfigurations[i].Baseline = state(f.Misconfigurations[i].identity())
	}
	for i := range f.Weaknesses {
		f.Weaknesses[i].Baseline = state(f.Weaknesses[i].identity())
	}
	return b
}

// sarifBaselineState is a finding's state as SARIF 2.1.0 spells it
// (result.baselineState), or "" when the report had no baseline.
func sarifBaselineState(state string) string {
	switch state {
	case BaselineNew:
		return "new"
	case BaselineKnown:
		return "unchanged"
	}
	return ""
}
