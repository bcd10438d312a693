package control

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// Errors callers map to responses.
var (
	// ErrNoScan is a scan id Temporal does not know, or one that is not a
	// scan id at all.
	ErrNoScan = errors.New("no such scan")
	// ErrContentConflict is a scan id already taken by a submission of
	// other content: never the same scan, never its verdict.
	ErrContentConflict = errors.New("the scan id is taken by a submission of other content")
	// ErrScanEnded is a review decision that came after its scan ended.
	ErrScanEnded = errors.New("the scan has ended")
)

// MemoContent is the scan workflow's memo key holding StartOptions.Content,
// the digest of what was submitted.
const MemoContent = "content"

// scanBudget is how long a scan may take besides its review wait: long
// enough for a tenant's backlog in a busy fleet.
const scanBudget = 24 * time.Hour

// WorkflowID is the workflow id of scan scanID.
func WorkflowID(scanID string) string { return "scan-" + scanID }

// ScanID is the scan id of a scan workflow's id (WorkflowID's inverse).
func ScanID(workflowID string) string { return strings.TrimPrefix(workflowID, "scan-") }

// Scans starts, reviews and reads scans (ScanWorkflow runs). The API and
// the embedded stack's local scans use it alike; a local scan simply has no
// tenant, no submitter and no content digest.
type Scans struct {
	Temporal client.Client
}

// StartOptions are what a start records besides the request.
type StartOptions struct {
	// Content is the digest of what was submitted (archive, app, commit,
	// labels, priority, author), kept in the memo: a start that finds its
	// scan id taken compares it. A local scan, which nobody submits twice,
	// has none.
	Content string
}

// Start starts scan req.ScanID. Every scan is started alike: workflow id
// WorkflowID(req.ScanID), used once ever (a finished scan's id is never
// reused, and a start racing another of the same id fails and is compared
// with the one that won); a timeout of the longest review wait the request
// allows plus a day for the scan itself; the memo the API reads (tenant,
// app, submitter, submitter person, author, content digest); and the
// search attributes scans are listed by (tenant and app, when set).
//
// A scan id already started with the same Content is the same scan: Start
// returns its run id and starts nothing. One started with other content is
// ErrContentConflict. An error that leaves the answer open (the start
// found the id taken but could not describe it) wraps the start's
// *serviceerror.WorkflowExecutionAlreadyStarted.
func (s *Scans) Start(ctx context.Context, req workflows.ScanRequest, opts StartOptions) (runID string, err error) {
	var attrs []temporal.SearchAttributeUpdate
	if req.Tenant != "" {
		attrs = append(attrs, workflows.SearchTenant.ValueSet(req.Tenant))
	}
	if req.App != "" {
		attrs = append(attrs, workflows.SearchApp.ValueSet(req.App))
	}
	run, err := s.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                                       WorkflowID(req.ScanID),
		TaskQueue:                                workflows.TaskQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		WorkflowExecutionTimeout:                 executionTimeout(req),
		Memo: map[string]any{workflows.MemoTenant: req.Tenant, workflows.MemoApp: req.App, workflows.MemoSubmitter: req.Submitter,
			workflows.MemoSubmitterPerson: req.SubmitterPerson, workflows.MemoAuthor: req.Author, MemoContent: opts.Content},
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
	}, workflows.ScanWorkflowName, req)
	if err == nil {
		return run.GetRunID(), nil
	}
	if _, taken := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); !taken {
		return "", fmt.Errorf("start scan workflow %s: %w", req.ScanID, err)
	}
	sc, derr := s.Describe(ctx, req.ScanID)
	if derr != nil {
		return "", fmt.Errorf("start scan workflow %s: %w", req.ScanID, errors.Join(err, derr))
	}
	if !sc.SameContent(opts.Content) {
		return "", fmt.Errorf("start scan workflow %s: %w", req.ScanID, ErrContentConflict)
	}
	return sc.RunID, nil
}

// executionTimeout is how long a scan's workflow may run: the longest
// review wait its request allows (workflows.MaxReviewTimeout unless the
// request sets its own; none for a scan that can have no reviewer) plus
// scanBudget.
func executionTimeout(req workflows.ScanRequest) time.Duration {
	review := workflows.MaxReviewTimeout
	switch {
	case req.ReviewTimeout < 0:
		review = 0
	case req.ReviewTimeout > 0:
		review = req.ReviewTimeout
	}
	return review + scanBudget
}

// Scan is a scan as its workflow's description shows it.
type Scan struct {
	ID, RunID string
	Status    enumspb.WorkflowExecutionStatus
	// Tenant, App, Submitter, SubmitterPerson, Author and Content are the
	// memo Start wrote (a scan started before a key existed lacks it).
	Tenant, App, Submitter, SubmitterPerson, Author, Content string
}

// SameContent reports whether the scan was started with this content
// digest. A scan started before the digest was recorded cannot show it has
// the same content: it is not the same.
func (sc Scan) SameContent(content string) bool { return sc.Content != "" && sc.Content == content }

// Running reports whether the scan has not ended.
func (sc Scan) Running() bool { return sc.Status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING }

// Describe reads scan id's status and memo in one round trip. An id that
// is not a scan id, or that Temporal does not know, is ErrNoScan.
func (s *Scans) Describe(ctx context.Context, id string) (Scan, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Scan{}, fmt.Errorf("scan %q: %w", id, ErrNoScan)
	}
	desc, err := s.Temporal.DescribeWorkflowExecution(ctx, WorkflowID(id), "")
	if _, nf := errors.AsType[*serviceerror.NotFound](err); nf {
		return Scan{}, fmt.Errorf("scan %s: %w", id, ErrNoScan)
	}
	if err != nil {
		return Scan{}, fmt.Errorf("describe scan %s: %w", id, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	sc := Scan{ID: id, RunID: info.GetExecution().GetRunId(), Status: info.GetStatus()}
	f := info.GetMemo().GetFields()
	dc := converter.GetDefaultDataConverter()
	for key, dst := range map[string]*string{workflows.MemoTenant: &sc.Tenant, workflows.MemoApp: &sc.App, workflows.MemoSubmitter: &sc.Submitter,
		workflows.MemoSubmitterPerson: &sc.SubmitterPerson, workflows.MemoAuthor: &sc.Author, MemoContent: &sc.Content} {
		if p := f[key]; p != nil {
			_ = dc.FromPayload(p, dst) // the memo holds strings Start wrote
		}
	}
	return sc, nil
}

// Statuses of a scan, as GET /v1/scans/{id} names them.
const (
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Outcome is where a scan stands.
type Outcome struct {
	// Status is StatusRunning, StatusCompleted or StatusFailed.
	Status string
	// Progress of a running scan, when its progress query answered.
	Progress *workflows.Progress
	// Result of a completed scan.
	Result workflows.ScanResult
	// Err is why a failed scan failed.
	Err error
}

// BadInput reports whether a failed scan failed on its input (an archive
// the workers refused): the submitter's doing, not the fleet's.
func (o Outcome) BadInput() bool { return BadInput(o.Err) }

// BadInput reports whether err, a scan's failure, is bad input.
func BadInput(err error) bool {
	appErr, ok := errors.AsType[*temporal.ApplicationError](err)
	return ok && appErr.Type() == tasks.ErrTypeBadInput
}

// Read reads scan sc, as Describe found it: the result of a completed scan,
// the failure of a failed one, the progress of a running one. With a wait
// above zero, a running scan is long-polled for up to that long, and the
// poll's own answer is the outcome: a scan that ends within the wait costs
// no second description and no second read of its result, and the progress
// query is asked only when the wait ran out with the scan still running.
func (s *Scans) Read(ctx context.Context, sc Scan, wait time.Duration) (Outcome, error) {
	if sc.Running() && wait > 0 {
		// The poll's deadline lies past the wait, which ends by cancelling
		// it: see pollRoom.
		wctx, cancel := context.WithTimeout(ctx, wait+pollRoom)
		stop := time.AfterFunc(wait, cancel)
		var res workflows.ScanResult
		err := s.run(wctx, sc).Get(wctx, &res)
		stop.Stop()
		waited := wctx.Err() != nil
		cancel()
		_, ended := errors.AsType[*temporal.WorkflowExecutionError](err)
		switch {
		case err == nil:
			return Outcome{Status: StatusCompleted, Result: res}, nil
		case ended:
			return Outcome{Status: StatusFailed, Err: err}, nil
		case !waited:
			// Not the workflow's answer (Temporal away, a result that
			// does not decode): describe it again and read it as it is.
			if sc, err = s.Describe(ctx, sc.ID); err != nil {
				return Outcome{}, err
			}
		}
	}
	return s.read(ctx, sc), nil
}

// pollRoom is how far past a wait the long poll's deadline lies. Temporal's
// history service answers a long poll with an empty page a second before
// its caller's deadline (longPollSoftTimeout), and the SDK then polls again
// at once, and again, until the deadline: a poll whose deadline is the
// wait itself spends its last second in a loop of hundreds of calls
// (measured: 959 in a 1 s wait). With the deadline a second and a little
// past the wait, the server holds the poll until the wait is over, and the
// wait ends by cancelling it: one call per 20 s of wait (the server's
// long-poll interval), none in a loop.
const pollRoom = time.Second + 250*time.Millisecond

// read reads sc without waiting.
func (s *Scans) read(ctx context.Context, sc Scan) Outcome {
	switch sc.Status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		out := Outcome{Status: StatusRunning}
		if p, err := s.Progress(ctx, sc.ID); err == nil {
			out.Progress = &p
		}
		return out
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED:
		var res workflows.ScanResult
		if err := s.run(ctx, sc).Get(ctx, &res); err != nil {
			return Outcome{Status: StatusFailed, Err: err}
		}
		return Outcome{Status: StatusCompleted, Result: res}
	default:
		return Outcome{Status: StatusFailed, Err: s.run(ctx, sc).Get(ctx, nil)}
	}
}

// run is sc's workflow run. Its run id comes from the description, so that
// reading the result does not describe the workflow again to find it.
func (s *Scans) run(ctx context.Context, sc Scan) client.WorkflowRun {
	return s.Temporal.GetWorkflow(ctx, WorkflowID(sc.ID), sc.RunID)
}

// Wait waits for run runID of scan id to end: its result, or the
// workflow's error (BadInput tells a refused input).
func (s *Scans) Wait(ctx context.Context, id, runID string) (workflows.ScanResult, error) {
	var res workflows.ScanResult
	err := s.run(ctx, Scan{ID: id, RunID: runID}).Get(ctx, &res)
	return res, err
}

// Progress asks a running scan where it stands (the workflow's progress
// query, answered by an orchestrator).
func (s *Scans) Progress(ctx context.Context, id string) (workflows.Progress, error) {
	v, err := s.Temporal.QueryWorkflow(ctx, WorkflowID(id), "", workflows.QueryProgress)
	if err != nil {
		return workflows.Progress{}, fmt.Errorf("query progress of scan %s: %w", id, err)
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return workflows.Progress{}, fmt.Errorf("decode progress of scan %s: %w", id, err)
	}
	return p, nil
}

// Review hands a reviewer's decision to scan id, which the workflow checks
// again. A scan that has ended is ErrScanEnded.
func (s *Scans) Review(ctx context.Context, id string, sig workflows.ReviewSignal) error {
	err := s.Temporal.SignalWorkflow(ctx, WorkflowID(id), "", workflows.SignalReview, sig)
	if _, nf := errors.AsType[*serviceerror.NotFound](err); nf {
		return fmt.Errorf("review scan %s: %w", id, ErrScanEnded)
	}
	if err != nil {
		return fmt.Errorf("review scan %s: %w", id, err)
	}
	return nil
}

// LastScan is an app's newest completed scan: its verdict came at At.
type LastScan struct {
	ScanID  string    `json:"scan_id"`
	Verdict string    `json:"verdict"`
	At      time.Time `json:"at"`
}

// Last is the app's newest completed scan, from the visibility store (the
// tenant and app are search attributes, the verdict is the memo); nil when
// it has none. The names must be valid (they go into the query).
func (s *Scans) Last(ctx context.Context, tenantName, app string) (*LastScan, error) {
	if err := checkApp(tenantName, app); err != nil {
		return nil, err
	}
	query := fmt.Sprintf("%s AND %s = '%s' AND %s = '%s' AND ExecutionStatus = 'Completed'", workflows.ScanWorkflowTypes,
		workflows.SearchTenant.GetName(), tenantName, workflows.SearchApp.GetName(), app)
	resp, err := s.Temporal.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1, Query: query})
	if err != nil {
		return nil, fmt.Errorf("list scans of %s/%s: %w", tenantName, app, err)
	}
	dc := converter.GetDefaultDataConverter()
	for _, e := range resp.GetExecutions() {
		fields := e.GetMemo().GetFields()
		var sTenant, sVerdict string
		_ = dc.FromPayload(fields[workflows.MemoTenant], &sTenant)
		_ = dc.FromPayload(fields[workflows.MemoVerdict], &sVerdict)
		if sTenant != tenantName {
			continue // the query asked for this tenant only; never show another's
		}
		at := e.GetCloseTime().AsTime()
		if e.GetCloseTime() == nil {
			at = e.GetStartTime().AsTime()
		}
		return &LastScan{ScanID: ScanID(e.GetExecution().GetWorkflowId()), Verdict: sVerdict, At: at}, nil
	}
	return nil, nil
}
