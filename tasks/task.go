// Package tasks is the contract between the orchestrator and the worker pools:
// the task message that a dispatch activity publishes to NATS JetStream, the
// result a worker completes the activity with, and the stream and consumers
// that carry them.
package tasks

import (
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
)

// Pools, each with its own consumer and its own workers.
const (
	PoolFast = "fast"
	PoolDeep = "deep"
)

// Kinds of task. A stage dispatches one task: every Temporal action costs, so
// one task runs all of a stage's scanners on one extraction of the input.
const (
	KindSecrets = "secrets" // fast pool: gitleaks
	KindDeep    = "deep"    // deep pool: syft SBOM, trivy vulnerabilities, licences
)

// Input says where a task's source code is.
type Input struct {
	// Dir is a directory the workers can read: the embedded mode only, where
	// the workers share the submitter's filesystem.
	Dir string `json:"dir,omitempty"`
	// Archive is a source archive in the inputs store (the fleet).
	Archive *storage.Object `json:"archive,omitempty"`
}

// Task is one unit of scanner work.
type Task struct {
	ScanID      string    `json:"scan_id"`
	App         string    `json:"app"`
	Pool        string    `json:"pool"`
	Kind        string    `json:"kind"`
	Input       Input     `json:"input"`
	SubmittedAt time.Time `json:"submitted_at"`
	// TaskToken completes the dispatching activity; Attempt is its attempt.
	TaskToken []byte `json:"task_token"`
	Attempt   int32  `json:"attempt"`
}

// Result is what a worker completes the activity with. Large outputs (SBOMs)
// are in the evidence store; Evidence names them.
type Result struct {
	Kind            string                 `json:"kind"`
	Secrets         []report.Secret        `json:"secrets,omitempty"`
	Packages        []report.Package       `json:"packages,omitempty"`
	Vulnerabilities []report.Vulnerability `json:"vulnerabilities,omitempty"`
	VulnDB          *report.VulnDB         `json:"vulndb,omitempty"`
	Evidence        []report.Evidence      `json:"evidence,omitempty"`
	// Timings are seconds spent per scanner.
	Timings map[string]float64 `json:"timings,omitempty"`
	Worker  string             `json:"worker,omitempty"`
}

// ErrTypeBadInput is the Temporal application error type of a task that
// failed because its input is bad (a hostile or corrupt archive). It is not
// retried, and `tollgate scan` exits 2 on it.
const ErrTypeBadInput = "BadInput"
