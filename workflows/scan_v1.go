package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// ScanWorkflow is the first type of the scan workflow (ScanWorkflowV1Name),
// kept so that scans started as it finish and its recorded histories replay;
// new scans start as ScanWorkflowV2, the same flow at the newest versions
// without asking for them. Do not change what it asks, or when: every
// version marker it records is in histories (testdata/scan_history*.json).
func ScanWorkflow(ctx workflow.Context, req ScanRequest) (ScanResult, error) {
	version := func(change string, maxSupported workflow.Version) workflow.Version {
		return workflow.GetVersion(ctx, change, workflow.DefaultVersion, maxSupported)
	}
	return runScan(ctx, req, scanVersions{
		// Scans started before exceptions existed replay without the read.
		exceptions: func() workflow.Version { return version("exceptions", 2) },
		// Before the review gate, no review; before reviews were bound to a
		// person, the old checks.
		reviewGate:   func() bool { return version("review-gate", 1) >= 1 },
		reviewPerson: func() bool { return version("review-person", 1) >= 1 },
		// Before the verdict memo, no upsert.
		memoVerdict: func() bool { return version("memo-verdict", 1) >= 1 },
	})
}
