package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/workflows"
)

// Scan runs one ScanWorkflow to its end. progress, if not nil, is called
// whenever the workflow reports a new stage.
func (s *Stack) Scan(ctx context.Context, req workflows.ScanRequest, progress func(workflows.Progress)) (workflows.ScanResult, error) {
	// The same search attributes as the API's scans, so that a listing by
	// tenant and app finds local scans too.
	var attrs []temporal.SearchAttributeUpdate
	if req.Tenant != "" {
		attrs = append(attrs, workflows.SearchTenant.ValueSet(req.Tenant))
	}
	if req.App != "" {
		attrs = append(attrs, workflows.SearchApp.ValueSet(req.App))
	}
	run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       "scan-" + req.ScanID,
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowExecutionTimeout: time.Hour,
		TypedSearchAttributes:    temporal.NewSearchAttributes(attrs...),
	}, workflows.ScanWorkflowName, req)
	if err != nil {
		return workflows.ScanResult{}, fmt.Errorf("start scan workflow %s: %w", req.ScanID, err)
	}
	done := make(chan struct{})
	defer close(done)
	if progress != nil {
		go watchProgress(ctx, s.client, run.GetID(), run.GetRunID(), progress, done)
	}
	var res workflows.ScanResult
	if err := run.Get(ctx, &res); err != nil {
		return workflows.ScanResult{}, err
	}
	return res, nil
}

// Report reads a finished scan's report back from the evidence store.
func (s *Stack) Report(ctx context.Context, res workflows.ScanResult) (report.Report, error) {
	data, _, err := s.evidence.Get(ctx, res.Report.Key)
	if err != nil {
		return report.Report{}, fmt.Errorf("read report of scan %s: %w", res.ScanID, err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return report.Report{}, fmt.Errorf("decode report of scan %s: %w", res.ScanID, err)
	}
	return r, nil
}

// watchProgress polls the workflow's progress query, for people watching a
// terminal; nothing waits on it.
func watchProgress(ctx context.Context, c client.Client, id, runID string, progress func(workflows.Progress), done <-chan struct{}) {
	last := ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		v, err := c.QueryWorkflow(ctx, id, runID, workflows.QueryProgress)
		if err != nil {
			continue
		}
		var p workflows.Progress
		if v.Get(&p) != nil || p.Stage == last || p.Done {
			continue
		}
		last = p.Stage
		progress(p)
	}
}
