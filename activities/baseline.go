package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
)

// ErrNoReport is a scan without a stored report (unknown or unfinished).
var ErrNoReport = errors.New("no stored report")

// ReportKey is the evidence key of a finished scan's report.
func ReportKey(scanID string) string { return "scans/" + scanID + "/report.json" }

// LoadReport reads a finished scan's stored report.
func LoadReport(ctx context.Context, ev storage.Evidence, scanID string) (report.Report, error) {
	raw, _, err := ev.Get(ctx, ReportKey(scanID))
	if errors.Is(err, storage.ErrNotFound) {
		return report.Report{}, fmt.Errorf("report of scan %s: %w", scanID, ErrNoReport)
	} else if err != nil {
		return report.Report{}, fmt.Errorf("read report of scan %s: %w", scanID, err)
	}
	var r report.Report
	if err := json.Unmarshal(raw, &r); err != nil {
		return report.Report{}, fmt.Errorf("decode report of scan %s: %w", scanID, err)
	}
	return r, nil
}

// markBaseline marks each finding of f new or known against the stored
// report of the baseline scan ref names (see report.Baseline), and returns
// the baseline with its counts; nil when the scan has no baseline. f with
// no finding to mark (the review stage's input) reads nothing.
func (a *Activities) markBaseline(ctx context.Context, ref *report.Baseline, f *report.Findings) (*report.Baseline, error) {
	if ref == nil || a.Evidence == nil {
		return nil, nil
	}
	if len(f.Vulnerabilities)+len(f.Secrets)+len(f.Misconfigurations)+len(f.Weaknesses) == 0 {
		return &report.Baseline{ScanID: ref.ScanID, ReleaseID: ref.ReleaseID}, nil
	}
	base, err := LoadReport(ctx, a.Evidence, ref.ScanID)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	return f.MarkBaseline(base.Findings, ref.ScanID, ref.ReleaseID), nil
}
