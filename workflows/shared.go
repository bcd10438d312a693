// Package workflows holds the Temporal workflows of tollgate. Everything here
// is deterministic: no clocks but workflow.Now, no I/O, no goroutines, no
// reliance on map order. Activities are referred to by name so that this
// package does not link the code that runs them.
package workflows

import (
	"time"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// TaskQueue is the orchestrator's Temporal task queue.
const TaskQueue = "tollgate-orchestrator"

// Activity names, registered by package activities.
const (
	ActivityDispatch = "Dispatch"
	ActivityPolicy   = "EvaluatePolicy"
	ActivityFinalize = "Finalize"
	// ActivityLoadExceptions reads the accepted risks that apply to a scan.
	ActivityLoadExceptions = "LoadExceptions"
)

// ScanRequest starts one ScanWorkflow.
type ScanRequest struct {
	ScanID      string      `json:"scan_id"`
	App         string      `json:"app"`
	Commit      string      `json:"commit,omitempty"`
	Labels      []string    `json:"labels,omitempty"`
	Input       tasks.Input `json:"input"`
	Full        bool        `json:"full,omitempty"`
	SubmittedAt time.Time   `json:"submitted_at"`
	// Tenant owns the scan (the fleet's API sets it).
	Tenant string `json:"tenant,omitempty"`
	// Priority is tasks.PriorityCI (the default) or tasks.PriorityBulk.
	Priority string `json:"priority,omitempty"`
	// Submitter is the principal that submitted the scan; it may not review
	// it.
	Submitter string `json:"submitter,omitempty"`
	// SubmitterPerson is the human behind the submitting principal, when it
	// names one, and Author the commit's author email as submitted: neither
	// may approve the change, whatever token they hold.
	SubmitterPerson string `json:"submitter_person,omitempty"`
	Author          string `json:"author,omitempty"`
	// ReviewTimeout, when set, overrides the policy's review timeout; a
	// negative one means no reviewer can come (the embedded mode), so a
	// scan that needs review is blocked at once.
	ReviewTimeout time.Duration `json:"review_timeout,omitempty"`
	// Provenance is the stored (redacted) provenance record of the code:
	// prompt, model, user. It becomes part of the scan's evidence.
	Provenance *report.Evidence `json:"provenance,omitempty"`
	// Baseline names the scan the findings are compared with (its ScanID,
	// and ReleaseID when it is a known-good release's; the counts are
	// unset): each finding is then new or known in the policy input and the
	// report. Nil when the app has no baseline.
	Baseline *report.Baseline `json:"baseline,omitempty"`
}

// PolicyRequest asks for the verdict of one stage.
type PolicyRequest struct {
	Stage   string         `json:"stage"`
	Scan    ScanRequest    `json:"scan"`
	Results []tasks.Result `json:"results"`
	// Exceptions are the tenant's accepted risks as loaded for the scan;
	// the policy applies those in force at Now.
	Exceptions []exceptions.Exception `json:"exceptions,omitempty"`
	Now        time.Time              `json:"now,omitzero"`
}

// FinalizeRequest asks to assemble and store the report.
type FinalizeRequest struct {
	Scan       ScanRequest        `json:"scan"`
	Stage      string             `json:"stage"`
	Decisions  []report.Decision  `json:"decisions"`
	Results    []tasks.Result     `json:"results"`
	Timings    map[string]float64 `json:"timings"`
	StartedAt  time.Time          `json:"started_at"`
	FinishedAt time.Time          `json:"finished_at"`
	// Review is the human review the scan went through, if any.
	Review *report.Review `json:"review,omitempty"`
}

// ScanResult is what ScanWorkflow returns: the verdict and where the full
// report is kept.
type ScanResult struct {
	ScanID  string          `json:"scan_id"`
	Verdict report.Verdict  `json:"verdict"`
	Stage   string          `json:"stage"`
	Reasons []report.Reason `json:"reasons"`
	Report  report.Evidence `json:"report"`
	// Evidence lists every stored object of the scan, the report included.
	Evidence []report.Evidence `json:"evidence"`
	// StartedAt and Timings (seconds per stage, as in the report) say when
	// each verdict was reached: the fast one at StartedAt + Timings["fast"].
	StartedAt time.Time          `json:"started_at,omitzero"`
	Timings   map[string]float64 `json:"timings,omitempty"`
}

// Progress is the workflow's answer to the "progress" query.
type Progress struct {
	Stage   string         `json:"stage"`
	Verdict report.Verdict `json:"verdict,omitempty"`
	Done    bool           `json:"done"`
	// Waiting says what the scan waits for, when it waits for something
	// other than a worker (for example its tenant's backlog, or a review).
	Waiting string `json:"waiting,omitempty"`
	// Review is set while the scan waits for a human review.
	Review *report.Review `json:"review,omitempty"`
}

// SignalReview is the signal a reviewer's decision comes on.
const SignalReview = "review"

// Review decisions.
const (
	ReviewApprove = "approve"
	ReviewReject  = "reject"
)

// ReviewSignal is a reviewer's decision on a scan waiting for review.
// Reviewer is the principal's name; Person the human it belongs to (an OIDC
// subject or verified email, or a static token's person), which a review is
// bound to; Auth how the principal authenticated ("oidc" or "static").
type ReviewSignal struct {
	Decision string    `json:"decision"`
	Reviewer string    `json:"reviewer"`
	Person   string    `json:"person,omitempty"`
	Auth     string    `json:"auth,omitempty"`
	Tenant   string    `json:"tenant,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// StageReview is the policy query that says whether a scan needs a human
// review (verdict "review") or not ("pass").
const StageReview = "review"

// DefaultReviewTimeout is how long a review waits when the policy says not;
// MaxReviewTimeout is the longest it may wait.
const (
	DefaultReviewTimeout = 24 * time.Hour
	MaxReviewTimeout     = 7 * 24 * time.Hour
)

// QueryProgress is the name of the query that returns Progress.
const QueryProgress = "progress"

// Memo keys of a scan workflow: the API sets tenant and app when it starts
// one; the workflow adds verdict and stage when it ends.
const (
	MemoTenant  = "tenant"
	MemoApp     = "app"
	MemoVerdict = "verdict"
	MemoStage   = "stage"
	// MemoSubmitter is the principal that submitted the scan.
	MemoSubmitter = "submitter"
	// MemoSubmitterPerson and MemoAuthor are ScanRequest.SubmitterPerson and
	// Author, for the API's check before it signals a review.
	MemoSubmitterPerson = "submitter_person"
	MemoAuthor          = "author"
)
