// Package tasks is the contract between the orchestrator and the worker pools:
// the task message that a dispatch activity publishes to NATS JetStream, the
// result a worker completes the activity with, and the stream and consumers
// that carry them.
package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
)

// Pools, each with its own consumer and its own workers.
const (
	PoolFast = "fast"
	PoolDeep = "deep"
)

// Priorities. CI scans gate a merge and someone waits on them; bulk scans
// (rescans of many apps, backfills) do not. Each pool has one consumer per
// priority, and a worker serves CI first, so CI work never queues behind
// bulk work.
const (
	PriorityCI   = "ci"
	PriorityBulk = "bulk"
)

// ValidPriority checks a priority name; the empty name is CI.
func ValidPriority(p string) error {
	switch p {
	case "", PriorityCI, PriorityBulk:
		return nil
	}
	return fmt.Errorf("priority %q: %w (want %q or %q)", p, ErrUnknownPriority, PriorityCI, PriorityBulk)
}

// ErrUnknownPriority is returned for a priority that is neither ci nor bulk.
var ErrUnknownPriority = errors.New("unknown priority")

// Kinds of task. A stage dispatches one task: every Temporal action costs, so
// one task runs all of a stage's scanners on one extraction of the input.
const (
	KindSecrets = "secrets" // fast pool: gitleaks, code weaknesses (SAST), touches, the manifest
	KindDeep    = "deep"    // deep pool: syft SBOM, trivy vulnerabilities and IaC misconfigurations, licences
	// KindRematch matches a stored SBOM against the worker's DB again,
	// without cataloguing anything (deep pool, usually bulk priority).
	KindRematch = "rematch"
)

// PoolKinds are the kinds of task a pool's workers run (none for a pool
// that is neither fast nor deep).
func PoolKinds(pool string) []string {
	switch pool {
	case PoolFast:
		return []string{KindSecrets}
	case PoolDeep:
		return []string{KindDeep, KindRematch}
	}
	return nil
}

// Input says where a task's source code is.
type Input struct {
	// Dir is a directory the workers can read: the embedded mode only, where
	// the workers share the submitter's filesystem.
	Dir string `json:"dir,omitempty"`
	// Archive is a source archive in the inputs store (the fleet).
	Archive *storage.Object `json:"archive,omitempty"`
	// SBOM is a stored CycloneDX SBOM in the evidence store (rematch
	// tasks).
	SBOM *storage.Object `json:"sbom,omitempty"`
}

// Task is one unit of scanner work.
type Task struct {
	ScanID string `json:"scan_id"`
	App    string `json:"app"`
	Pool   string `json:"pool"`
	Kind   string `json:"kind"`
	// Tenant owns the task's scan; its pending tasks are limited.
	Tenant string `json:"tenant,omitempty"`
	// Priority is PriorityCI (the default) or PriorityBulk.
	Priority    string    `json:"priority,omitempty"`
	Input       Input     `json:"input"`
	SubmittedAt time.Time `json:"submitted_at"`
	// TaskToken completes the dispatching activity; Attempt is its attempt.
	TaskToken []byte `json:"task_token"`
	Attempt   int32  `json:"attempt"`
	// MatchedDB is when the DB the SBOM was last matched against was
	// updated (rematch tasks): a worker whose DB is not newer skips it.
	MatchedDB time.Time `json:"matched_db,omitzero"`
}

// Result is what a worker completes the activity with. Large outputs (SBOMs)
// are in the evidence store; Evidence names them.
type Result struct {
	Kind string `json:"kind"`
	// Findings are what the task's scanners found (report.Findings).
	report.Findings
	VulnDB   *report.VulnDB    `json:"vulndb,omitempty"`
	Evidence []report.Evidence `json:"evidence,omitempty"`
	// Timings are seconds spent per scanner.
	Timings map[string]float64 `json:"timings,omitempty"`
	Worker  string             `json:"worker,omitempty"`
	// Skipped says a rematch task was not matched: the worker's DB is no
	// newer than the one the SBOM was last matched against (or it has none).
	Skipped bool `json:"skipped,omitempty"`
	// Limit, when set, says why the sandbox stopped this task's scanner
	// on its input (a memory, CPU or time limit, a crash, a refused
	// operation): the task found nothing, and the policy step blocks the
	// scan with this reason.
	Limit string `json:"limit,omitempty"`
}

// resultFields is Result without its JSON methods.
type resultFields Result

// resultWire is a Result as it travels (the activity's completion, the
// sandbox child's answer, recorded histories): as Result, but the files
// left unscanned are "unscanned", since "skipped" is the re-match flag here.
// The flag, one level up, takes "skipped" from the embedded findings.
type resultWire struct {
	resultFields
	Unscanned []report.Skipped `json:"unscanned,omitempty"`
}

// MarshalJSON encodes r with its unscanned files named "unscanned".
func (r Result) MarshalJSON() ([]byte, error) {
	return json.Marshal(resultWire{resultFields: resultFields(r), Unscanned: r.Unscanned})
}

// UnmarshalJSON decodes a result with its unscanned files named
// "unscanned".
func (r *Result) UnmarshalJSON(data []byte) error {
	var w resultWire
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	*r = Result(w.resultFields)
	r.Unscanned = w.Unscanned
	return nil
}

// ErrTypeBadInput is the Temporal application error type of a task that
// failed because its input is bad (a hostile or corrupt archive). It is not
// retried, and `tollgate scan` exits 2 on it.
const ErrTypeBadInput = "BadInput"

// ErrTypeTenantBacklog is the Temporal application error type of a dispatch
// refused because the tenant already has its limit of pending tasks in the
// pool at that priority. The scan waits and dispatches again; it does not
// fail.
const ErrTypeTenantBacklog = "TenantBacklog"
