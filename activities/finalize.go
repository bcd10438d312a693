package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// Finalize assembles the report from the stage results and decisions and
// stores it, its SARIF rendering and the verdict as evidence, then, when a
// Signer is set, a signed in-toto attestation over all of the scan's evidence.
func (a *Activities) Finalize(ctx context.Context, req workflows.FinalizeRequest) (workflows.ScanResult, error) {
	r := BuildReport(req)
	base, err := a.markBaseline(ctx, req.Scan.Baseline, &r.Findings)
	if err != nil {
		return workflows.ScanResult{}, fmt.Errorf("finalize scan %s: %w", r.ScanID, err)
	}
	r.Baseline = base
	sarifDoc, err := report.SARIF(r, a.Version)
	if err != nil {
		return workflows.ScanResult{}, fmt.Errorf("finalize scan %s: %w", r.ScanID, err)
	}
	sarifObj, err := a.put(ctx, r.ScanID, "report.sarif.json", "application/sarif+json", sarifDoc)
	if err != nil {
		return workflows.ScanResult{}, err
	}
	r.Evidence = append(r.Evidence, sarifObj)
	if r.Review != nil {
		// The reviewer's decision is evidence, under the signed attestation.
		doc, err := json.MarshalIndent(r.Review, "", "  ")
		if err != nil {
			return workflows.ScanResult{}, fmt.Errorf("encode review of scan %s: %w", r.ScanID, err)
		}
		obj, err := a.put(ctx, r.ScanID, "review.json", "application/json", doc)
		if err != nil {
			return workflows.ScanResult{}, err
		}
		r.Evidence = append(r.Evidence, obj)
	}

	verdict := Verdict{
		Schema: VerdictSchema, ScanID: r.ScanID, App: r.App, Commit: r.Commit,
		Verdict: r.Verdict, Stage: r.Stage, Reasons: r.Reasons, Exceptions: r.Exceptions, VEX: r.VEX, Evidence: r.Evidence, VulnDB: r.VulnDB,
		DecidedAt: r.FinishedAt,
	}
	verdictDoc, err := json.MarshalIndent(verdict, "", "  ")
	if err != nil {
		return workflows.ScanResult{}, fmt.Errorf("encode verdict of scan %s: %w", r.ScanID, err)
	}
	verdictObj, err := a.put(ctx, r.ScanID, "verdict.json", "application/json", verdictDoc)
	if err != nil {
		return workflows.ScanResult{}, err
	}
	r.Evidence = append(r.Evidence, verdictObj)

	reportDoc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return workflows.ScanResult{}, fmt.Errorf("encode report of scan %s: %w", r.ScanID, err)
	}
	reportObj, err := a.put(ctx, r.ScanID, "report.json", "application/json", reportDoc)
	if err != nil {
		return workflows.ScanResult{}, err
	}
	evidence := append(slices.Clone(r.Evidence), reportObj)

	// The attestation covers every object above, the report included. It is
	// listed in the result's evidence but not in the report's, which is
	// signed by it and so cannot name it.
	attObj, signed, err := a.storeAttestation(ctx, r, evidence)
	if err != nil {
		return workflows.ScanResult{}, err
	}
	if signed {
		evidence = append(evidence, attObj)
		// The verdict again as SLSA's Verification Summary Attestation,
		// for admission controllers and deployers that speak VSA; its
		// input attestation is the statement above.
		var archive string
		if req.Scan.Input.Archive != nil {
			archive = req.Scan.Input.Archive.SHA256
		}
		v := attest.NewVSA(r, archive, a.Version, attObj)
		v.PolicyDigest = a.PolicyDigest
		vsaObj, ok, err := a.storeVSA(ctx, v)
		if err != nil {
			return workflows.ScanResult{}, err
		}
		if ok {
			evidence = append(evidence, vsaObj)
		}
	}
	a.instruments().finished(ctx, r)
	a.logger().InfoContext(ctx, "scan finalized", "scan_id", r.ScanID, "app", r.App, "verdict", r.Verdict, "stage", r.Stage, "signed", signed)
	return workflows.ScanResult{
		ScanID: r.ScanID, Verdict: r.Verdict, Stage: r.Stage, Reasons: r.Reasons,
		Report: reportObj, Evidence: evidence, StartedAt: r.StartedAt, Timings: r.Timings,
	}, nil
}

// AttestationName is the evidence name of a scan's signed in-toto statement.
const AttestationName = attest.AttestationName

// storeAttestation signs a statement over objects and stores it. It
// reports false, and stores nothing, when no signer is configured.
func (a *Activities) storeAttestation(ctx context.Context, r report.Report, objects []report.Evidence) (report.Evidence, bool, error) {
	if a.Signer == nil {
		a.unsignedOnce.Do(func() {
			a.logger().InfoContext(ctx, "evidence is unsigned: no attestation signing key is configured")
		})
		return report.Evidence{}, false, nil
	}
	env, err := a.Signer.Sign(ctx, attest.NewStatement(r, objects))
	if err != nil {
		return report.Evidence{}, false, fmt.Errorf("sign attestation of scan %s: %w", r.ScanID, err)
	}
	obj, err := a.putEnvelope(ctx, r.ScanID, AttestationName, env)
	return obj, err == nil, err
}

// storeVSA signs the scan's VSA and stores it. It reports false, and
// stores nothing, when the scan has no subject to name (a directory scan
// without a full commit id).
func (a *Activities) storeVSA(ctx context.Context, v attest.VSA) (report.Evidence, bool, error) {
	env, err := a.Signer.SignVSA(ctx, v)
	if errors.Is(err, attest.ErrNoVSASubject) {
		a.logger().InfoContext(ctx, "no VSA: nothing to name as its subject", "scan_id", v.ScanID)
		return report.Evidence{}, false, nil
	} else if err != nil {
		return report.Evidence{}, false, err
	}
	obj, err := a.putEnvelope(ctx, v.ScanID, attest.VSAName, env)
	return obj, err == nil, err
}

// putEnvelope stores a signed envelope as the scan's evidence called name.
func (a *Activities) putEnvelope(ctx context.Context, scanID, name string, env []byte) (report.Evidence, error) {
	key := fmt.Sprintf("scans/%s/%s", scanID, name)
	beat(ctx, name)
	obj, err := a.Evidence.Put(ctx, key, attest.EnvelopeMediaType, env)
	if errors.Is(err, storage.ErrImmutable) {
		// A retried Finalize signs the same statement again, but an ECDSA
		// signature (or one by a rotated key) differs from the stored one:
		// the stored envelope stands when it carries the same statement.
		stored, storedObj, getErr := a.Evidence.Get(ctx, key)
		if getErr == nil && attest.SamePayload(stored, env) {
			obj, err = storedObj, nil
		}
	}
	if err != nil {
		return report.Evidence{}, fmt.Errorf("store %s of scan %s: %w", name, scanID, err)
	}
	return EvidenceOf(name, obj), nil
}

func (a *Activities) put(ctx context.Context, scanID, name, contentType string, data []byte) (report.Evidence, error) {
	beat(ctx, name)
	obj, err := a.Evidence.Put(ctx, fmt.Sprintf("scans/%s/%s", scanID, name), contentType, data)
	if err != nil {
		return report.Evidence{}, fmt.Errorf("store %s of scan %s: %w", name, scanID, err)
	}
	return EvidenceOf(name, obj), nil
}

// beat heartbeats the running activity before each evidence write: Finalize
// has a heartbeat timeout (workflows' finalize options), so that one whose
// orchestrator died is retried in seconds, not after its start-to-close.
// Outside an activity (tests call Finalize directly) it does nothing.
func beat(ctx context.Context, storing string) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, storing)
	}
}

// EvidenceOf names a stored object in the report's terms.
func EvidenceOf(name string, obj storage.Object) report.Evidence {
	return report.Evidence{Name: name, Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}
}

// VerdictSchema is the schema of the stored verdict document.
const VerdictSchema = "tollgate/verdict/v1"

// Verdict is the stored verdict document: the decision and what it rests on.
type Verdict struct {
	Schema  string          `json:"schema"`
	ScanID  string          `json:"scan_id"`
	App     string          `json:"app"`
	Commit  string          `json:"commit,omitempty"`
	Verdict report.Verdict  `json:"verdict"`
	Stage   string          `json:"stage"`
	Reasons []report.Reason `json:"reasons"`
	// Exceptions are the accepted risks the verdict applied.
	Exceptions []report.AppliedException `json:"exceptions,omitempty"`
	// VEX are the VEX statements the verdict applied.
	VEX       []report.AppliedVEX `json:"vex,omitempty"`
	Evidence  []report.Evidence   `json:"evidence"`
	VulnDB    report.VulnDB       `json:"vulndb"`
	DecidedAt time.Time           `json:"decided_at"`
}

// BuildReport assembles a report (without the objects Finalize stores) from
// the workflow's results. It is deterministic for the same request.
func BuildReport(req workflows.FinalizeRequest) report.Report {
	dec := workflows.Combine(req.Decisions)
	r := report.Report{
		Schema: report.Schema, ScanID: req.Scan.ScanID, App: req.Scan.App, Commit: req.Scan.Commit,
		Labels: req.Scan.Labels, Verdict: dec.Verdict, Stage: req.Stage, Reasons: dec.Reasons, Exceptions: dec.Exceptions, VEX: dec.VEX,
		Evidence: []report.Evidence{}, Timings: map[string]float64{},
		VulnDB:    report.VulnDB{Available: false, Note: "the deep stage did not run: the fast stage blocked (use --full for every finding)"},
		StartedAt: req.StartedAt, FinishedAt: req.FinishedAt,
	}
	for k, v := range req.Timings {
		r.Timings[k] = v
	}
	for _, res := range orderedResults(req.Results) {
		r.Add(res.Findings)
		r.Evidence = append(r.Evidence, res.Evidence...)
		if res.VulnDB != nil {
			r.VulnDB = *res.VulnDB
		}
		for k, v := range res.Timings {
			r.Timings[k] = v
		}
	}
	r.Normalize()
	r.Review = req.Review
	if req.Scan.Provenance != nil {
		r.Evidence = append(r.Evidence, *req.Scan.Provenance)
	}
	r.Timings["total"] = req.FinishedAt.Sub(req.StartedAt).Seconds()
	return r
}

// orderedResults puts results in stage order, whatever order they came in.
func orderedResults(in []tasks.Result) []tasks.Result {
	out := slices.Clone(in)
	rank := func(k string) int { return slices.Index([]string{tasks.KindSecrets, tasks.KindDeep}, k) }
	slices.SortStableFunc(out, func(a, b tasks.Result) int {
		if c := rank(a.Kind) - rank(b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}
