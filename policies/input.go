package policies

import (
	"fmt"
	"reflect"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/vex"
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
	Stage string `json:"stage"`
	Scan  Scan   `json:"scan"`
	// Findings are the stage's findings, its tasks' results merged with
	// report.Findings.Add: rule ids, CWEs, severity and confidence of code
	// weaknesses for the policy to weigh, say. The policy sees each kind of
	// finding as a list, [] when there is none; touches (the files per
	// sensitive area: auth, secrets, egress) as {} when none; the manifest
	// as null when the fast stage did not run (the deep stage's input). It
	// does not see the files left unscanned or the code-scan summary.
	report.Findings
	VulnDB report.VulnDB `json:"vulndb"`
	// Baseline is the app's baseline scan and the counts of new and known
	// findings; absent when the scan had none. Each vulnerability, secret,
	// misconfiguration and code weakness then carries "baseline": "new" or
	// "known" (report.Baseline says how findings are matched).
	Baseline *report.Baseline `json:"baseline,omitempty"`
	// Exceptions are the tenant's accepted risks; the policy applies those
	// in force at Now (RFC 3339), for the scan's app.
	Exceptions []exceptions.Exception `json:"exceptions"`
	// VEX are the tenant's and the scan's VEX statements, resolved against
	// the stage's vulnerability findings (vex.Resolve): the policy decides
	// which statuses silence a finding. Absent when there are none, so a
	// scan without VEX sees the input it saw before VEX.
	VEX []vex.Match `json:"vex,omitempty"`
	Now string      `json:"now"`
}

// document is an Input as the policies see it.
type document struct {
	Input
	// Manifest is always there, null when the fast stage did not run: it
	// takes "manifest" from the embedded findings, which leave out a nil
	// one.
	Manifest *report.Manifest `json:"manifest"`
}

// document returns in as the policies see it: lists [] rather than null
// (those inside a finding too), touches {} rather than absent, the manifest
// null rather than absent, and neither the files left unscanned nor the
// code-scan summary.
func (in Input) document() document {
	in.Findings.Normalize()
	in.Unscanned, in.CodeScan = nil, nil
	if in.Touches == nil {
		in.Touches = map[string][]string{}
	}
	in.Scan.Labels = orEmpty(in.Scan.Labels)
	in.Exceptions = orEmpty(in.Exceptions)
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
	return document{Input: in, Manifest: in.Manifest}
}

// Value is in as the policies see it, as a Rego value: the input a stage's
// query is evaluated against. It is built without a JSON round trip.
func (in Input) Value() (ast.Value, error) {
	v, err := regoValue(reflect.ValueOf(in.document()))
	if err != nil {
		return nil, fmt.Errorf("policy input of stage %q: %w", in.Stage, err)
	}
	return v, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
