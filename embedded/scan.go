package embedded

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/workflows"
)

// Scan runs one ScanWorkflow to its end, started as the API starts its
// scans (control.Scans.Start; a local scan has no submitter). progress, if
// not nil, is called whenever the workflow reports a new stage.
func (s *Stack) Scan(ctx context.Context, req workflows.ScanRequest, progress func(workflows.Progress)) (workflows.ScanResult, error) {
	scans := &control.Scans{Temporal: s.client}
	runID, err := scans.Start(ctx, req, control.StartOptions{})
	if err != nil {
		return workflows.ScanResult{}, err
	}
	done := make(chan struct{})
	defer close(done)
	if progress != nil {
		go watchProgress(ctx, scans, req.ScanID, progress, done)
	}
	return scans.Wait(ctx, req.ScanID, runID)
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

// watchProgress asks the scan's progress every 100 ms, for people watching
// a terminal; nothing waits on it.
func watchProgress(ctx context.Context, scans *control.Scans, id string, progress func(workflows.Progress), done <-chan struct{}) {
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
		p, err := scans.Progress(ctx, id)
		if err != nil || p.Stage == last || p.Done {
			continue
		}
		last = p.Stage
		progress(p)
	}
}
