package health

import "time"

// ReleaseRef names a deployed release and what it is measured against.
type ReleaseRef struct {
	ID       string `json:"id"`
	Artifact string `json:"artifact"`
	ScanID   string `json:"scan_id"`
	// BaselineP95 is the p95 latency the release is expected to have; zero
	// turns the latency rule off.
	BaselineP95 time.Duration `json:"baseline_p95,omitempty"`
	// RollbackID is set when a rollback switched to this release: the guard
	// reports its first conclusive evaluation to that workflow.
	RollbackID string `json:"rollback_id,omitempty"`
}
