package activities

import (
	"context"
	"fmt"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// EvaluatePolicy decides one stage from its scanner results.
func (a *Activities) EvaluatePolicy(ctx context.Context, req workflows.PolicyRequest) (report.Decision, error) {
	in := PolicyInput(req.Stage, req.Scan, req.Results...)
	d, err := a.Policies.Evaluate(ctx, req.Stage, in)
	if err != nil {
		return report.Decision{}, fmt.Errorf("policy for scan %s: %w", req.Scan.ScanID, err)
	}
	return d, nil
}

// PolicyInput builds a policy's input document from a scan and its results.
func PolicyInput(stage string, scan workflows.ScanRequest, results ...tasks.Result) policies.Input {
	in := policies.Input{
		Stage: stage,
		Scan:  policies.Scan{App: scan.App, Commit: scan.Commit, Labels: scan.Labels, Full: scan.Full, Tenant: scan.Tenant},
	}
	for _, r := range results {
		in.Secrets = append(in.Secrets, r.Secrets...)
		in.Packages = append(in.Packages, r.Packages...)
		in.Vulnerabilities = append(in.Vulnerabilities, r.Vulnerabilities...)
		in.Misconfigurations = append(in.Misconfigurations, r.Misconfigurations...)
		if r.VulnDB != nil {
			in.VulnDB = *r.VulnDB
		}
	}
	return in
}
