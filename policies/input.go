package policies

import (
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
)

// Scan is the submitted metadata a policy sees as input.scan.
type Scan struct {
	App    string   `json:"app"`
	Commit string   `json:"commit"`
	Labels []string `json:"labels"`
	Full   bool     `json:"full"`
	Tenant string   `json:"tenant,omitempty"`
}

// Input is the document a stage's policy is evaluated against.
type Input struct {
	Stage           string                 `json:"stage"`
	Scan            Scan                   `json:"scan"`
	Secrets         []report.Secret        `json:"secrets"`
	Packages        []report.Package       `json:"packages"`
	Vulnerabilities []report.Vulnerability `json:"vulnerabilities"`
	// Misconfigurations are failed IaC checks (deep stage).
	Misconfigurations []report.Misconfiguration `json:"misconfigurations"`
	// Weaknesses are code weaknesses found by the SAST engine (fast
	// stage): rule ids, CWEs, severity and confidence for the policy to
	// weigh.
	Weaknesses []report.Weakness `json:"weaknesses"`
	VulnDB     report.VulnDB     `json:"vulndb"`
	// Manifest is the app's permission manifest; null when the fast stage
	// did not run (the deep stage's input).
	Manifest *report.Manifest `json:"manifest"`
	// Touches lists the files per sensitive area (auth, secrets, egress).
	Touches map[string][]string `json:"touches"`
	// Exceptions are the tenant's accepted risks; the policy applies those
	// in force at Now (RFC 3339), for the scan's app.
	Exceptions []exceptions.Exception `json:"exceptions"`
	Now        string                 `json:"now"`
}

// normalized replaces nil lists with empty ones: policies see [] rather than null.
func (in Input) normalized() Input {
	in.Scan.Labels = orEmpty(in.Scan.Labels)
	in.Secrets = orEmpty(in.Secrets)
	in.Packages = orEmpty(in.Packages)
	in.Vulnerabilities = orEmpty(in.Vulnerabilities)
	in.Misconfigurations = orEmpty(in.Misconfigurations)
	in.Weaknesses = report.MergeWeaknesses(nil, in.Weaknesses)
	in.Exceptions = orEmpty(in.Exceptions)
	if in.Touches == nil {
		in.Touches = map[string][]string{}
	}
	for i := range in.Packages {
		in.Packages[i].Licenses = orEmpty(in.Packages[i].Licenses)
	}
	for i := range in.Vulnerabilities {
		in.Vulnerabilities[i].Aliases = orEmpty(in.Vulnerabilities[i].Aliases)
		in.Vulnerabilities[i].FixedVersions = orEmpty(in.Vulnerabilities[i].FixedVersions)
	}
	for i := range in.Misconfigurations {
		in.Misconfigurations[i].References = orEmpty(in.Misconfigurations[i].References)
	}
	return in
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
