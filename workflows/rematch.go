package workflows

import (
	"cmp"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
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

	// ActivityRematchPlan and ActivityRecordRematch are the activities of
	// version 0 (DefaultVersion) runs, which matched every release in one
	// workflow; they stay registered for runs started before version 1.
	ActivityRematchPlan   = "RematchPlan"
	ActivityRecordRematch = "RecordRematch"

	// ActivityRematchPage lists a page of apps to match again
	// (RematchPageRequest → RematchPage): references only.
	ActivityRematchPage = "RematchPage"
	// ActivityRematchTarget resolves an app's live release to references
	// (RematchRef → RematchTarget): its scan, report and SBOM, and the DB and
	// verdict of its last match.
	ActivityRematchTarget = "RematchTarget"
	// ActivityDecideRematch decides a release's verdict again from its
	// stored report, the new match and today's exceptions, and records it
	// (RematchDecideRequest → RematchOutcome).
	ActivityDecideRematch = "DecideRematch"
)

// RematchNowWorkflowID is the id of a re-match run triggered for one tenant
// (POST /v1/rematch): one per tenant, so a second trigger joins it.
func RematchNowWorkflowID(tenant string) string { return "rematch-now-" + tenant }

// RematchAppWorkflowID is the id of the child that matches one app again
// in a run. Slashes separate the parts, as in guard and rollback ids: a
// tenant or app name cannot hold one, so two apps never share an id.
func RematchAppWorkflowID(tenant, app, run string) string {
	return "rematch/" + tenant + "/" + app + "/" + run
}

// Pages of a re-match run. A run lists rematchPageSize apps at a time,
// matches them in as many children at once, and continues as new after
// rematchAppsPerRun apps (or sooner when Temporal suggests it), so neither
// a payload nor a history grows with the number of apps.
const (
	rematchPageSize   = 50
	rematchAppsPerRun = 500
)

// RematchRequest is the input of RematchWorkflow. The schedule starts it
// empty: every tenant's apps from the first.
type RematchRequest struct {
	// Tenant, when set, limits the run to that tenant's apps.
	Tenant string `json:"tenant,omitempty"`
	// After is where a continued run resumes: the apps after this one.
	After RematchRef `json:"after,omitzero"`
	// Run names the children of every run of the chain (the first run's
	// id), so that their ids stay unique and deterministic.
	Run string `json:"run,omitempty"`
	// Totals are the counts of the runs before this one.
	Totals RematchResult `json:"totals,omitzero"`
	// PageSize and AppsPerRun override the defaults (tests).
	PageSize   int `json:"page_size,omitempty"`
	AppsPerRun int `json:"apps_per_run,omitempty"`
}

// RematchRef names an app.
type RematchRef struct {
	Tenant string `json:"tenant"`
	App    string `json:"app"`
}

// RematchPageRequest asks for up to Limit apps after After, of Tenant
// (every tenant when empty), in (tenant, app) order.
type RematchPageRequest struct {
	Tenant string     `json:"tenant,omitempty"`
	After  RematchRef `json:"after,omitzero"`
	Limit  int        `json:"limit"`
}

// RematchPage is a page of apps, and whether more follow.
type RematchPage struct {
	Apps []RematchRef `json:"apps"`
	More bool         `json:"more"`
}

// RematchTarget is an app's live release, by reference: what a re-match
// dispatches and decides on. An empty SBOM key means nothing to match (the
// app has no release, or its scan never ran the deep stage).
type RematchTarget struct {
	Tenant    string         `json:"tenant"`
	App       string         `json:"app"`
	ReleaseID string         `json:"release_id,omitempty"`
	ScanID    string         `json:"scan_id,omitempty"`
	Report    storage.Object `json:"report,omitzero"`
	SBOM      storage.Object `json:"sbom,omitzero"`
	// LastRematch is the key of the release's newest re-match record.
	LastRematch string `json:"last_rematch,omitempty"`
	// VulnDB and Verdict are those of the last match (the scan's, or the
	// newest re-match's).
	VulnDB  report.VulnDB  `json:"vulndb"`
	Verdict report.Verdict `json:"verdict,omitempty"`
}

// RematchDecideRequest is a release to decide again after the worker
// matched its SBOM (Matched, with the new findings) or skipped it.
type RematchDecideRequest struct {
	Target          RematchTarget          `json:"target"`
	Matched         bool                   `json:"matched"`
	Vulnerabilities []report.Vulnerability `json:"vulnerabilities,omitempty"`
	VulnDB          *report.VulnDB         `json:"vulndb,omitempty"`
	At              time.Time              `json:"at"`
}

// RematchOutcome is how a release was decided again.
type RematchOutcome struct {
	Matched  bool           `json:"matched"`
	Previous report.Verdict `json:"previous"`
	Verdict  report.Verdict `json:"verdict"`
	Worse    bool           `json:"worse"`
	// Recorded is true when a record was stored (a new match, or a
	// changed verdict).
	Recorded bool `json:"recorded"`
}

// RecordSchema is the schema of a re-match record.
const RematchSchema = "tollgate/rematch/v1"

// RematchItem (version 0 runs) is one live release to match again: where its SBOM is, what
// it was last matched against and found, and its last verdict.
type RematchItem struct {
	Tenant    string         `json:"tenant"`
	App       string         `json:"app"`
	ReleaseID string         `json:"release_id"`
	ScanID    string         `json:"scan_id"`
	SBOM      storage.Object `json:"sbom"`
	// VulnDB is the DB the SBOM was last matched against.
	VulnDB report.VulnDB `json:"vulndb"`
	// Findings are the deep stage's findings as last decided: packages,
	// vulnerabilities, and the IaC misconfigurations, which the SBOM does
	// not change but the deep policy decides on too.
	report.Findings
	Verdict report.Verdict `json:"verdict"`
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
	// Apps were listed; Failed of them could not be matched (the next run
	// tries them again).
	Apps      int `json:"apps,omitempty"`
	Failed    int `json:"failed,omitempty"`
	Releases  int `json:"releases"`
	Matched   int `json:"matched"`
	Skipped   int `json:"skipped"`
	Changed   int `json:"changed"`
	Worsened  int `json:"worsened"`
	Improved  int `json:"improved"`
	Unchanged int `json:"unchanged"`
}

// add counts one decided release.
func (r *RematchResult) add(o RematchOutcome) {
	r.Releases++
	if o.Matched {
		r.Matched++
	} else {
		r.Skipped++
	}
	switch {
	case o.Verdict == o.Previous:
		r.Unchanged++
	case o.Worse:
		r.Changed++
		r.Worsened++
	default:
		r.Changed++
		r.Improved++
	}
}

// plus is r with o's counts added.
func (r RematchResult) plus(o RematchResult) RematchResult {
	return RematchResult{
		Apps: r.Apps + o.Apps, Failed: r.Failed + o.Failed, Releases: r.Releases + o.Releases,
		Matched: r.Matched + o.Matched, Skipped: r.Skipped + o.Skipped, Changed: r.Changed + o.Changed,
		Worsened: r.Worsened + o.Worsened, Improved: r.Improved + o.Improved, Unchanged: r.Unchanged + o.Unchanged,
	}
}

var rematchDispatchOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	HeartbeatTimeout:    DispatchHeartbeatTimeout,
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
// It lists apps a page at a time (references only) and matches each app in
// a child workflow (RematchAppWorkflow), which loads what it needs by
// reference inside its activities; one app's failure is counted and does
// not stop the others. After rematchAppsPerRun apps it continues as new.
// req.Tenant limits a run to one tenant (a triggered run); the schedule
// starts it with no tenant.
//
// A Temporal Schedule (RematchScheduleID) starts it for every tenant; POST
// /v1/rematch starts one for the caller's tenant (RematchNowWorkflowID).
func RematchWorkflow(ctx workflow.Context, req RematchRequest) (RematchResult, error) {
	// Version 0 runs planned every release into one payload and matched
	// them all in this workflow; their histories replay on that code.
	if workflow.GetVersion(ctx, "rematch-children", workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return rematchAllV0(ctx)
	}
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	req.Run = cmp.Or(req.Run, info.WorkflowExecution.RunID)
	pageSize, perRun := cmp.Or(req.PageSize, rematchPageSize), cmp.Or(req.AppsPerRun, rematchAppsPerRun)
	out := req.Totals
	actx := workflow.WithActivityOptions(ctx, finalizeOptions)
	cont, err := appPages(ctx, actx, req.Tenant, &req.After, pageSize, perRun, func(apps []RematchRef) {
		// One child per app, all of the page at once. A cancelled or
		// terminated run asks its children to stop (REQUEST_CANCEL): stopping
		// a re-match should stop its work, and a child cancelled between
		// activities leaves its app for the next run, which decides it again.
		// A run never continues as new with children open.
		futures := make([]workflow.ChildWorkflowFuture, len(apps))
		for i, app := range apps {
			cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
				WorkflowID:        RematchAppWorkflowID(app.Tenant, app.App, req.Run),
				ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
			})
			futures[i] = workflow.ExecuteChildWorkflow(cctx, RematchAppWorkflow, app)
		}
		for i, f := range futures {
			var res RematchResult
			if err := f.Get(ctx, &res); err != nil {
				// The next run tries this app again.
				logger.Warn("rematch of an app failed", "tenant", apps[i].Tenant, "app", apps[i].App, "error", err)
				res = RematchResult{Failed: 1}
			}
			res.Apps = 1
			out = out.plus(res)
		}
	})
	if err != nil {
		return out, err
	}
	if cont {
		req.Totals = out
		return out, workflow.NewContinueAsNewError(ctx, RematchWorkflow, req)
	}
	logger.Info("rematch done", "tenant", req.Tenant, "apps", out.Apps, "failed", out.Failed, "matched", out.Matched, "worsened", out.Worsened)
	return out, nil
}

// appPages hands do the apps of Tenant after *after a page at a time
// (ActivityRematchPage, at most pageSize each), moving *after past each
// page. It stops when no apps are left, or, reporting cont, when perRun
// apps were handed out or the history asks to continue as new. The
// re-match and the TTL sweep walk the apps this way.
func appPages(ctx, actx workflow.Context, tenant string, after *RematchRef, pageSize, perRun int, do func([]RematchRef)) (cont bool, err error) {
	for done := 0; ; {
		var page RematchPage
		preq := RematchPageRequest{Tenant: tenant, After: *after, Limit: min(pageSize, perRun-done)}
		if err := workflow.ExecuteActivity(actx, ActivityRematchPage, preq).Get(ctx, &page); err != nil {
			return false, err
		}
		do(page.Apps)
		done += len(page.Apps)
		if len(page.Apps) > 0 {
			*after = page.Apps[len(page.Apps)-1]
		}
		if !page.More || len(page.Apps) == 0 {
			return false, nil
		}
		if done >= perRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			return true, nil
		}
	}
}

// RematchAppWorkflow matches one app's live release again: it resolves the
// release to references, has a deep worker match the stored SBOM (or skip
// it), and decides and records the verdict in an activity that reads the
// stored report itself. Its result counts at most one release.
func RematchAppWorkflow(ctx workflow.Context, ref RematchRef) (RematchResult, error) {
	actx := workflow.WithActivityOptions(ctx, finalizeOptions)
	var target RematchTarget
	if err := workflow.ExecuteActivity(actx, ActivityRematchTarget, ref).Get(ctx, &target); err != nil {
		return RematchResult{}, err
	}
	if target.SBOM.Key == "" {
		return RematchResult{}, nil // nothing to match
	}
	sbom := target.SBOM
	task := tasks.Task{
		ScanID: target.ScanID, App: target.App, Pool: tasks.PoolDeep, Kind: tasks.KindRematch, Tenant: target.Tenant,
		Priority: tasks.PriorityBulk, Input: tasks.Input{SBOM: &sbom}, MatchedDB: target.VulnDB.UpdatedAt,
		SubmittedAt: workflow.Now(ctx),
	}
	res, err := dispatch(workflow.WithActivityOptions(ctx, rematchDispatchOptions), task, func(time.Duration) {})
	if err != nil {
		return RematchResult{}, err
	}
	dreq := RematchDecideRequest{Target: target, Matched: !res.Skipped, At: workflow.Now(ctx)}
	if dreq.Matched {
		dreq.Vulnerabilities, dreq.VulnDB = res.Vulnerabilities, res.VulnDB
	}
	var o RematchOutcome
	if err := workflow.ExecuteActivity(actx, ActivityDecideRematch, dreq).Get(ctx, &o); err != nil {
		return RematchResult{}, err
	}
	var out RematchResult
	out.add(o)
	return out, nil
}

// rematchAllV0 is RematchWorkflow before version 1: one plan of every
// release, matched in this workflow. Kept so that its histories replay.
func rematchAllV0(ctx workflow.Context) (RematchResult, error) {
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
	found, db := it.Findings, it.VulnDB
	if matched {
		found.Vulnerabilities = res.Vulnerabilities
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
		Results:    []tasks.Result{{Kind: tasks.KindDeep, Findings: found, VulnDB: &db}},
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
		Vulnerabilities: found.Vulnerabilities, At: now,
	}
	if rec.Vulnerabilities == nil {
		rec.Vulnerabilities = []report.Vulnerability{}
	}
	return rec, matched, nil
}
