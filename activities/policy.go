package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workflows"
)

// EvaluatePolicy decides one stage from its scanner results.
func (a *Activities) EvaluatePolicy(ctx context.Context, req workflows.PolicyRequest) (report.Decision, error) {
	in := PolicyInput(req.Stage, req.Scan, req.Results...)
	in.Exceptions = req.Exceptions
	base, err := a.markBaseline(ctx, req.Scan.Baseline, &in.Findings)
	if err != nil {
		return report.Decision{}, fmt.Errorf("policy for scan %s: %w", req.Scan.ScanID, err)
	}
	in.Baseline = base
	if err := a.resolveVEX(ctx, req.Scan, &in); err != nil {
		return report.Decision{}, err
	}
	if !req.Now.IsZero() {
		in.Now = req.Now.UTC().Format(time.RFC3339Nano)
	}
	d, err := a.Policies.Evaluate(ctx, req.Stage, in)
	if err != nil {
		return report.Decision{}, fmt.Errorf("policy for scan %s: %w", req.Scan.ScanID, err)
	}
	return blockLimits(d, req.Results), nil
}

// resolveVEX gives the policy the VEX statements of the scan's tenant and
// of the scan itself, resolved against the stage's vulnerability findings
// and packages. Stages without vulnerabilities read none.
func (a *Activities) resolveVEX(ctx context.Context, scan workflows.ScanRequest, in *policies.Input) error {
	if a.VEX == nil || scan.Tenant == "" || len(in.Vulnerabilities) == 0 {
		return nil
	}
	recs, err := a.VEX.ForScan(ctx, scan.Tenant, scan.ScanID)
	if err != nil {
		return fmt.Errorf("load VEX documents of scan %s: %w", scan.ScanID, err)
	}
	in.VEX = vex.Resolve(recs, in.Vulnerabilities, in.Packages)
	return nil
}

// blockLimits blocks a decision whose results include a task the sandbox
// stopped (tasks.Result.Limit): its scanner found nothing on an input that
// exceeded a limit, so no policy may pass it. It is done here, not in Rego,
// so that a tenant's policy bundle cannot drop it.
func blockLimits(d report.Decision, results []tasks.Result) report.Decision {
	for _, r := range results {
		if r.Limit == "" {
			continue
		}
		d.Verdict = report.VerdictBlock
		d.Reasons = append(d.Reasons, report.Reason{Policy: "sandbox.limit", Verdict: report.VerdictBlock, Message: fmt.Sprintf("%s task: %s", r.Kind, r.Limit)})
	}
	return d
}

// PolicyInput builds a policy's input document from a scan and its results.
func PolicyInput(stage string, scan workflows.ScanRequest, results ...tasks.Result) policies.Input {
	in := policies.Input{
		Stage: stage,
		Scan:  policies.Scan{App: scan.App, Commit: scan.Commit, Labels: scan.Labels, Full: scan.Full, Tenant: scan.Tenant},
	}
	for _, r := range results {
		in.Add(r.Findings)
		if r.VulnDB != nil {
			in.VulnDB = *r.VulnDB
		}
	}
	return in
}

// LoadExceptions returns a tenant's exceptions that cover app and have not
// been revoked or expired by now; the policy applies those still in force
// when it evaluates. The embedded mode (no tenant, no store) has none.
func (a *Activities) LoadExceptions(ctx context.Context, tenant, app string) ([]exceptions.Exception, error) {
	if a.Exceptions == nil || tenant == "" {
		return nil, nil
	}
	ex, err := a.Exceptions.InForce(ctx, tenant, app, time.Now())
	if err != nil {
		return nil, fmt.Errorf("load exceptions of %s/%s: %w", tenant, app, err)
	}
	return ex, nil
}
