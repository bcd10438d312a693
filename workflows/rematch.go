package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
)

// Names of the re-matching workflow, its schedule and activities.
const (
	// RematchScheduleID is the Temporal Schedule that starts
	// RematchWorkflow; RematchWorkflowID the workflow id it starts.
	RematchScheduleID = "tollgate-rematch"
	RematchWorkflowID = "rematch"

	ActivityRematchPlan   = "RematchPlan"
	ActivityRecordRematch = "RecordRematch"
)

// RecordSchema is the schema of a re-match record.
const RematchSchema = "tollgate/rematch/v1"

// RematchItem is one live release to match again: where its SBOM is, what
// it was last matched against and found, and its last verdict.
type RematchItem struct {
	Tenant    string         `json:"tenant"`
	App       string         `json:"app"`
	ReleaseID string         `json:"release_id"`
	ScanID    string         `json:"scan_id"`
	SBOM      storage.Object `json:"sbom"`
	// VulnDB is the DB the SBOM was last matched against.
	VulnDB          report.VulnDB          `json:"vulndb"`
	Packages        []report.Package       `json:"packages"`
	Vulnerabilities []report.Vulnerability `json:"vulnerabilities"`
	// Misconfigurations are the scan's IaC findings: the SBOM does not
	// change them, but the deep policy decides on them too.
	Misconfigurations []report.Misconfiguration `json:"misconfigurations,omitempty"`
	Verdict           report.Verdict            `json:"verdict"`
}

// RematchRecord is a release's verdict decided again: stored as evidence
// (apps/<tenant>/<app>/releases/<id>/rematch/...) whenever the SBOM was
// matched against a newer DB or the verdict changed.
type RematchRecord struct {
	Schema    string `json:"schema"`
	Tenant    string `json:"tenant"`
	App       string `json:"app"`
	ReleaseID string `json:"release_id"`
	ScanID    string `json:"scan_id"`
	// Matched is true when the SBOM was matched again (a newer DB), false
	// when only the policy was (exceptions or policy changed).
	Matched         bool                      `json:"matched"`
	VulnDB          report.VulnDB             `json:"vulndb"`
	Previous        report.Verdict            `json:"previous"`
	Verdict         report.Verdict            `json:"verdict"`
	Worse           bool                      `json:"worse"`
	Reasons         []report.Reason           `json:"reasons"`
	Exceptions      []report.AppliedException `json:"exceptions,omitempty"`
	Vulnerabilities []report.Vulnerability    `json:"vulnerabilities"`
	At              time.Time                 `json:"at"`
}

// RematchResult counts what a run did.
type RematchResult struct {
	Releases  int `json:"releases"`
	Matched   int `json:"matched"`
	Skipped   int `json:"skipped"`
	Changed   int `json:"changed"`
	Worsened  int `json:"worsened"`
	Improved  int `json:"improved"`
	Unchanged int `json:"unchanged"`
}

var rematchDispatchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
		NonRetryableErrorTypes: []string{tasks.ErrTypeBadInput, tasks.ErrTypeTenantBacklog},
	},
}

// RematchWorkflow matches the stored SBOM of every live release (the
// newest release of each app) against the workers' current vulnerability
// DB, with no re-cataloguing, and decides its verdict again under today's
// exceptions. A deep worker skips an SBOM already matched against the same
// or a newer DB. A changed verdict is recorded as evidence; a worse one also
// becomes an event (NATS tollgate.events.verdict.<tenant>.<app>, and the
// events webhook when configured) for the guard's and on-call's tooling.
//
// A Temporal Schedule (RematchScheduleID) starts it; `tollgate rematch`
// triggers the schedule at once, e.g. after a DB update.
func RematchWorkflow(ctx workflow.Context) (RematchResult, error) {
	logger := workflow.GetLogger(ctx)
	var items []RematchItem
	actx := workflow.WithActivityOptions(ctx, finalizeOptions)
	if err := workflow.ExecuteActivity(actx, ActivityRematchPlan).Get(ctx, &items); err != nil {
		return RematchResult{}, err
	}
	var out RematchResult
	for _, it := range items {
		out.Releases++
		rec, matched, err := rematchOne(ctx, it)
		if err != nil {
			// One release's failure does not stop the others; the next run
			// tries it again.
			logger.Warn("rematch failed", "tenant", it.Tenant, "app", it.App, "release", it.ReleaseID, "error", err)
			continue
		}
		if matched {
			out.Matched++
		} else {
			out.Skipped++
		}
		switch {
		case rec.Verdict == rec.Previous:
			out.Unchanged++
		case rec.Worse:
			out.Changed++
			out.Worsened++
		default:
			out.Changed++
			out.Improved++
		}
		if !matched && rec.Verdict == rec.Previous {
			continue // nothing new to record
		}
		if err := workflow.ExecuteActivity(actx, ActivityRecordRematch, rec).Get(ctx, nil); err != nil {
			return out, err
		}
	}
	logger.Info("rematch done", "releases", out.Releases, "matched", out.Matched, "worsened", out.Worsened)
	return out, nil
}

// rematchOne matches one release again (or learns the worker skipped it)
// and decides its verdict.
func rematchOne(ctx workflow.Context, it RematchItem) (RematchRecord, bool, error) {
	sbom := it.SBOM
	task := tasks.Task{
		ScanID: it.ScanID, App: it.App, Pool: tasks.PoolDeep, Kind: tasks.KindRematch, Tenant: it.Tenant,
		Priority: tasks.PriorityBulk, Input: tasks.Input{SBOM: &sbom}, MatchedDB: it.VulnDB.UpdatedAt,
		SubmittedAt: workflow.Now(ctx),
	}
	res, err := dispatch(workflow.WithActivityOptions(ctx, rematchDispatchOptions), task, func(time.Duration) {})
	if err != nil {
		return RematchRecord{}, false, err
	}
	matched := !res.Skipped
	vulns, db := it.Vulnerabilities, it.VulnDB
	if matched {
		vulns = res.Vulnerabilities
		if res.VulnDB != nil {
			db = *res.VulnDB
		}
	}
	var excs []exceptions.Exception
	actx := workflow.WithActivityOptions(ctx, finalizeOptions)
	if err := workflow.ExecuteActivity(actx, ActivityLoadExceptions, it.Tenant, it.App).Get(ctx, &excs); err != nil {
		return RematchRecord{}, false, err
	}
	now := workflow.Now(ctx)
	pr := PolicyRequest{
		Stage: report.StageDeep, Scan: ScanRequest{ScanID: it.ScanID, App: it.App, Tenant: it.Tenant},
		Results: []tasks.Result{{Kind: tasks.KindDeep, Packages: it.Packages, Vulnerabilities: vulns,
			Misconfigurations: it.Misconfigurations, VulnDB: &db}},
		Exceptions: excs, Now: now,
	}
	var dec report.Decision
	lctx := workflow.WithLocalActivityOptions(ctx, localOptions)
	if err := workflow.ExecuteLocalActivity(lctx, ActivityPolicy, pr).Get(ctx, &dec); err != nil {
		return RematchRecord{}, false, err
	}
	rec := RematchRecord{
		Schema: RematchSchema, Tenant: it.Tenant, App: it.App, ReleaseID: it.ReleaseID, ScanID: it.ScanID,
		Matched: matched, VulnDB: db, Previous: it.Verdict, Verdict: dec.Verdict,
		Worse: report.Worse(dec.Verdict, it.Verdict) != it.Verdict, Reasons: dec.Reasons, Exceptions: dec.Exceptions,
		Vulnerabilities: vulns, At: now,
	}
	if rec.Vulnerabilities == nil {
		rec.Vulnerabilities = []report.Vulnerability{}
	}
	return rec, matched, nil
}
