// Package report holds the scan report contract of DESIGN.md ("tollgate/report/v1")
// and renders it as a table, JSON or SARIF.
package report

import (
	"slices"
	"strings"
	"time"
)

// Schema is the value of Report.Schema; bump it only with a note in DESIGN.md.
const Schema = "tollgate/report/v1"

// Verdict is the outcome of a scan.
type Verdict string

const (
	VerdictPass   Verdict = "pass"
	VerdictWarn   Verdict = "warn"
	VerdictBlock  Verdict = "block"
	VerdictReview Verdict = "review"
)

// Worse returns the more severe of two verdicts (block > review > warn > pass).
func Worse(a, b Verdict) Verdict {
	if verdictRank[b] > verdictRank[a] {
		return b
	}
	return a
}

var verdictRank = map[Verdict]int{"": 0, VerdictPass: 1, VerdictWarn: 2, VerdictReview: 3, VerdictBlock: 4}

// Stage names where a verdict was decided.
const (
	StageFast = "fast"
	StageDeep = "deep"
)

// Report is the JSON report of one scan.
type Report struct {
	Schema  string   `json:"schema"`
	ScanID  string   `json:"scan_id"`
	App     string   `json:"app"`
	Commit  string   `json:"commit,omitempty"`
	Labels  []string `json:"labels,omitempty"`
	Verdict Verdict  `json:"verdict"`
	Stage   string   `json:"stage"`
	Reasons []Reason `json:"reasons"`
	// Exceptions are the accepted risks the verdict applied.
	Exceptions []AppliedException `json:"exceptions,omitempty"`
	// VEX are the VEX statements the verdict applied: the findings they
	// silenced and the documents they came from.
	VEX []AppliedVEX `json:"vex,omitempty"`
	// Review is the human review the policy asked for, and its outcome.
	Review *Review `json:"review,omitempty"`
	// Baseline is the scan the findings were compared with (each finding's
	// "baseline" says new or known); absent when there was none.
	Baseline *Baseline `json:"baseline,omitempty"`
	// Findings are the scan's findings, merged from its stages' tasks
	// (touches, manifest, secrets, skipped, vulnerabilities,
	// misconfigurations, weaknesses, code_scan, packages).
	Findings
	VulnDB     VulnDB             `json:"vulndb"`
	Evidence   []Evidence         `json:"evidence"`
	Timings    map[string]float64 `json:"timings"`
	StartedAt  time.Time          `json:"started_at"`
	FinishedAt time.Time          `json:"finished_at"`
}

// Reason explains one policy decision.
type Reason struct {
	Policy  string  `json:"policy"`
	Message string  `json:"message"`
	Verdict Verdict `json:"verdict,omitempty"`
	// Check is the check id behind the reason (an IaC check), which an
	// exception for that rule names.
	Check string `json:"check,omitempty"`
	// Baseline is the state of the finding behind the reason, new or
	// known, when the scan had a baseline.
	Baseline string `json:"baseline,omitempty"`
}

// Secret is a redacted secret finding: it never carries the secret itself.
type Secret struct {
	Rule        string `json:"rule"`
	File        string `json:"file"`
	Line        int    `json:"line"`
	Fingerprint string `json:"fingerprint"`
	// Baseline is new or known when the scan had a baseline.
	Baseline string `json:"baseline,omitempty"`
}

// Skipped is one file of the tree left out of the scan, and why.
type Skipped struct {
	File   string `json:"file"`
	Reason string `json:"reason"`
}

// MergeSkipped adds more to have, once per file (each stage's task lists
// the same files), sorted by file.
func MergeSkipped(have, more []Skipped) []Skipped {
	if len(more) == 0 {
		return have
	}
	out := append(slices.Clone(have), more...)
	slices.SortStableFunc(out, func(a, b Skipped) int { return strings.Compare(a.File, b.File) })
	return slices.CompactFunc(out, func(a, b Skipped) bool { return a.File == b.File })
}

// MergeWeaknesses adds more to have, with the lists the report contract
// says are lists ([] rather than null: a pattern rule's trace, say).
func MergeWeaknesses(have, more []Weakness) []Weakness {
	if have == nil {
		have = []Weakness{}
	}
	for _, w := range more {
		if w.CWE == nil {
			w.CWE = []string{}
		}
		if w.Trace == nil {
			w.Trace = []TraceStep{}
		}
		have = append(have, w)
	}
	return have
}

// Vulnerability is one advisory matched against one package.
type Vulnerability struct {
	ID            string   `json:"id"`
	Aliases       []string `json:"aliases"`
	Package       string   `json:"package"`
	Version       string   `json:"version"`
	Ecosystem     string   `json:"ecosystem"`
	PURL          string   `json:"purl"`
	Severity      string   `json:"severity"`
	FixedVersions []string `json:"fixed_versions"`
	Title         string   `json:"title,omitempty"`
	File          string   `json:"file,omitempty"`
	// Baseline is new or known when the scan had a baseline.
	Baseline string `json:"baseline,omitempty"`
}

// Misconfiguration is one failed check of trivy's built-in IaC checks
// against one configuration file.
type Misconfiguration struct {
	// ID is the check's id as trivy reports it (DS-0002, KSV-0014, AWS-0104).
	ID       string `json:"id"`
	Title    string `json:"title"`
	Severity string `json:"severity"`
	// Type is the file's kind: dockerfile, kubernetes, terraform or helm.
	Type string `json:"type"`
	File string `json:"file"`
	// StartLine and EndLine are the lines at fault; 0 when the check is about
	// the file as a whole (a Dockerfile without USER).
	StartLine int `json:"start_line,omitempty"`
	EndLine   int `json:"end_line,omitempty"`
	// Resource names the object at fault (aws_s3_bucket.assets, Deployment 'web').
	Resource   string   `json:"resource,omitempty"`
	Message    string   `json:"message"`
	Resolution string   `json:"resolution,omitempty"`
	PrimaryURL string   `json:"primary_url,omitempty"`
	References []string `json:"references"`
	// Baseline is new or known when the scan had a baseline.
	Baseline string `json:"baseline,omitempty"`
}

// Package is one catalogued package.
type Package struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Ecosystem string   `json:"ecosystem"`
	PURL      string   `json:"purl"`
	Licenses  []string `json:"licenses"`
	Files     []string `json:"files,omitempty"`
}

// VulnDB says which vulnerability database the scan was matched against. When
// Available is false no vulnerability was looked up, and the report says so.
type VulnDB struct {
	Available bool      `json:"available"`
	Path      string    `json:"path,omitempty"`
	Version   int       `json:"version,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	Note      string    `json:"note,omitempty"`
}

// Evidence names one stored object.
type Evidence struct {
	Name      string `json:"name"`
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
	SHA256    string `json:"sha256"`
}

// Decision is what one policy stage decided.
type Decision struct {
	Verdict Verdict  `json:"verdict"`
	Reasons []Reason `json:"reasons"`
	// Exceptions are the accepted risks the decision applied.
	Exceptions []AppliedException `json:"exceptions,omitempty"`
	// VEX are the VEX statements the decision applied.
	VEX []AppliedVEX `json:"vex,omitempty"`
	// Timeout is how long a review decision waits for a reviewer (a Go
	// duration; review decisions only).
	Timeout string `json:"timeout,omitempty"`
}

// Outcomes of a review.
const (
	ReviewApproved = "approved"
	ReviewRejected = "rejected"
	ReviewTimedOut = "timed_out"
)

// Review records a human review: why the policy asked for it, who decided
// what and when, and the decisions refused (a submitter reviewing their own
// scan). It is stored as evidence (review.json) under the scan's signed
// attestation.
type Review struct {
	Reasons   []Reason `json:"reasons"`
	Submitter string   `json:"submitter,omitempty"`
	// SubmitterPerson and Author are the people who may not approve: the
	// human behind the submitting principal and the commit's author.
	SubmitterPerson string    `json:"submitter_person,omitempty"`
	Author          string    `json:"author,omitempty"`
	Requested       time.Time `json:"requested_at"`
	Deadline        time.Time `json:"deadline"`
	Outcome         string    `json:"outcome"`
	Reviewer        string    `json:"reviewer,omitempty"`
	// Approver is who decided: the person, the principal, how it
	// authenticated and its tenant.
	Approver *Approver       `json:"approver,omitempty"`
	Reason   string          `json:"reason,omitempty"`
	At       time.Time       `json:"at"`
	Refused  []ReviewRefusal `json:"refused,omitempty"`
}

// Approver is the identity behind a review decision.
type Approver struct {
	Person    string `json:"person"`
	Principal string `json:"principal"`
	// Auth is how the principal authenticated: "oidc" or "static".
	Auth   string `json:"auth,omitempty"`
	Tenant string `json:"tenant,omitempty"`
}

// ReviewRefusal is a review decision the workflow did not take, and why.
type ReviewRefusal struct {
	Reviewer string    `json:"reviewer"`
	Person   string    `json:"person,omitempty"`
	Decision string    `json:"decision"`
	At       time.Time `json:"at"`
	Why      string    `json:"why"`
}

// AppliedException names an accepted risk a verdict applied, and when it
// stops applying.
type AppliedException struct {
	ID        string            `json:"id"`
	Scope     string            `json:"scope"`
	Finding   map[string]string `json:"finding"`
	ExpiresAt time.Time         `json:"expires_at"`
	Approver  string            `json:"approver"`
}

// AppliedVEX names a VEX statement a verdict applied: the finding it
// silenced (a vulnerability in a package, by purl), what it said, and the
// stored document it came from, with who added it and when.
type AppliedVEX struct {
	Record        string    `json:"record"`
	Format        string    `json:"format"`
	Vulnerability string    `json:"vulnerability"`
	Package       string    `json:"package"`
	PURL          string    `json:"purl"`
	Product       string    `json:"product"`
	Status        string    `json:"status"`
	Justification string    `json:"justification,omitempty"`
	AddedBy       string    `json:"added_by"`
	AddedAt       time.Time `json:"added_at"`
}

// Manifest is an app's permission manifest (tollgate.yaml or
// app.manifest.json): whether there is one, whether it matches the schema,
// and what it declares.
type Manifest struct {
	Present bool   `json:"present"`
	File    string `json:"file,omitempty"`
	Valid   bool   `json:"valid"`
	// Errors are why it is not valid: JSON pointer and message.
	Errors []ManifestError `json:"errors,omitempty"`
	// Ignored names other manifest files present, which the first one
	// overrides.
	Ignored     []string             `json:"ignored,omitempty"`
	App         string               `json:"app,omitempty"`
	Permissions *ManifestPermissions `json:"permissions,omitempty"`
}

// ManifestError is one reason a manifest is not valid.
type ManifestError struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// ManifestPermissions is what an app declares it needs.
type ManifestPermissions struct {
	Files   []FilePermission    `json:"files,omitempty"`
	Network []NetworkPermission `json:"network,omitempty"`
	LLM     []LLMPermission     `json:"llm,omitempty"`
}

// FilePermission is a path the app reads or writes.
type FilePermission struct {
	Path    string `json:"path"`
	Access  string `json:"access"`
	Purpose string `json:"purpose,omitempty"`
}

// NetworkPermission is a destination the app connects to.
type NetworkPermission struct {
	Host    string `json:"host"`
	Ports   []int  `json:"ports,omitempty"`
	Purpose string `json:"purpose,omitempty"`
}

// LLMPermission is an LLM provider the app calls, with its models and
// scopes.
type LLMPermission struct {
	Provider string   `json:"provider"`
	Models   []string `json:"models,omitempty"`
	Scopes   []string `json:"scopes,omitempty"`
	Purpose  string   `json:"purpose,omitempty"`
}
