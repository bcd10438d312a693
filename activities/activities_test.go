package activities

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

func request() workflows.FinalizeRequest {
	start := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	return workflows.FinalizeRequest{
		Scan:  workflows.ScanRequest{ScanID: "s1", App: "todo", Commit: "0123abc"},
		Stage: report.StageDeep,
		Decisions: []report.Decision{
			{Verdict: report.VerdictPass, Reasons: []report.Reason{}},
			{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "vulnerabilities.high", Message: "x", Verdict: report.VerdictWarn}}},
		},
		// Out of stage order on purpose.
		Results: []tasks.Result{
			{Kind: tasks.KindDeep, Findings: report.Findings{Packages: []report.Package{{Name: "lodash"}}}, VulnDB: &report.VulnDB{Available: true},
				Evidence: []report.Evidence{{Name: "sbom.cdx.json", Key: "scans/s1/sbom.cdx.json"}}, Timings: map[string]float64{"sbom": 0.04}},
			{Kind: tasks.KindSecrets, Timings: map[string]float64{"secrets": 0.005}},
		},
		Timings:   map[string]float64{"fast": 0.1, "deep": 0.2},
		StartedAt: start, FinishedAt: start.Add(500 * time.Millisecond),
	}
}

func TestBuildReport(t *testing.T) {
	r := BuildReport(request())
	if r.Verdict != report.VerdictWarn || len(r.Reasons) != 1 || r.Schema != report.Schema {
		t.Fatalf("verdict %s reasons %v", r.Verdict, r.Reasons)
	}
	if !r.VulnDB.Available || len(r.Packages) != 1 || len(r.Evidence) != 1 {
		t.Fatalf("results not merged: %+v", r)
	}
	for k, want := range map[string]float64{"fast": 0.1, "deep": 0.2, "sbom": 0.04, "secrets": 0.005, "total": 0.5} {
		if r.Timings[k] != want {
			t.Errorf("timing %s = %v, want %v", k, r.Timings[k], want)
		}
	}
	// Lists are never null in the JSON contract.
	if r.Secrets == nil || r.Vulnerabilities == nil {
		t.Fatal("nil lists")
	}
}

func TestBuildReportWithoutDeepStage(t *testing.T) {
	req := request()
	req.Results = req.Results[1:]
	r := BuildReport(req)
	if r.VulnDB.Available || !strings.Contains(r.VulnDB.Note, "deep stage did not run") {
		t.Fatalf("vulndb %+v", r.VulnDB)
	}
}

func TestFinalizeStoresReportSARIFAndVerdict(t *testing.T) {
	ctx := context.Background()
	store, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Evidence: store}
	res, err := a.Finalize(ctx, request())
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != report.VerdictWarn || res.Report.Key != "scans/s1/report.json" {
		t.Fatalf("result %+v", res)
	}
	names := map[string]bool{}
	for _, e := range res.Evidence {
		names[e.Name] = true
	}
	for _, n := range []string{"sbom.cdx.json", "report.sarif.json", "verdict.json", "report.json"} {
		if !names[n] {
			t.Errorf("no %s in %v", n, names)
		}
	}
	data, obj, err := store.Get(ctx, res.Report.Key)
	if err != nil || obj.SHA256 != res.Report.SHA256 {
		t.Fatalf("report object: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil || r.ScanID != "s1" {
		t.Fatalf("stored report: %v %+v", err, r)
	}
	// Finalize is retried by Temporal: a second run stores the same bytes and succeeds.
	if _, err := a.Finalize(ctx, request()); err != nil {
		t.Fatalf("retried finalize: %v", err)
	}
}

// signedRequest stores the SBOM the request names, so that every object
// Finalize attests is really in the store.
func signedRequest(t *testing.T, store storage.Evidence) workflows.FinalizeRequest {
	t.Helper()
	req := request()
	obj, err := store.Put(context.Background(), "scans/s1/sbom.cdx.json", "application/vnd.cyclonedx+json", []byte(`{"bomFormat":"CycloneDX"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Results[0].Evidence = []report.Evidence{EvidenceOf("sbom.cdx.json", obj)}
	return req
}

func TestFinalizeSignsEvidence(t *testing.T) {
	ctx := context.Background()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// ECDSA signatures differ on each run: a retry must keep the stored one.
	for name, key := range map[string]crypto.Signer{"ed25519": edKey, "ecdsa-p256": ecKey} {
		t.Run(name, func(t *testing.T) {
			store, err := storage.OpenLocal(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			signer, err := attest.NewSigner(key)
			if err != nil {
				t.Fatal(err)
			}
			a := &Activities{Evidence: store, Signer: signer}
			req := signedRequest(t, store)
			res, err := a.Finalize(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]report.Evidence{}
			for _, e := range res.Evidence {
				byName[e.Name] = e
			}
			att, ok := byName[AttestationName]
			if !ok || att.Key != "scans/s1/attestation.intoto.json" {
				t.Fatalf("no attestation in %+v", res.Evidence)
			}
			env, obj, err := store.Get(ctx, att.Key)
			if err != nil || obj.ContentType != attest.EnvelopeMediaType {
				t.Fatalf("stored attestation: %v %+v", err, obj)
			}
			v, err := attest.NewVerifier(signer.Public())
			if err != nil {
				t.Fatal(err)
			}
			st, err := attest.Verify(ctx, env, v)
			if err != nil {
				t.Fatal(err)
			}
			if st.Predicate.ScanID != "s1" || st.Predicate.Verdict != report.VerdictWarn || st.Predicate.Stage != report.StageDeep || st.Predicate.Commit != "0123abc" {
				t.Fatalf("predicate %+v", st.Predicate)
			}
			// Every object but the attestation itself is a subject, with
			// its stored digest and where it is.
			var names []string
			for _, sub := range st.Subjects {
				names = append(names, sub.Name)
				want := byName[sub.Name]
				loc, _ := st.Location(sub.Name)
				if sub.SHA256 != want.SHA256 || loc.Key != want.Key || loc.VersionID != want.VersionID || loc.Bucket != storage.LocalBucket {
					t.Errorf("subject %s: %+v at %+v, stored %+v", sub.Name, sub, loc, want)
				}
			}
			if got := strings.Join(names, ","); got != "sbom.cdx.json,report.sarif.json,verdict.json,report.json" {
				t.Fatalf("subjects %s", got)
			}
			// The report cannot name the attestation that signs it.
			data, _, err := store.Get(ctx, res.Report.Key)
			if err != nil {
				t.Fatal(err)
			}
			var r report.Report
			if err := json.Unmarshal(data, &r); err != nil {
				t.Fatal(err)
			}
			for _, e := range r.Evidence {
				if e.Name == AttestationName {
					t.Fatal("report lists its own attestation")
				}
			}

			again, err := a.Finalize(ctx, req)
			if err != nil {
				t.Fatalf("retried finalize: %v", err)
			}
			if got := again.Evidence[len(again.Evidence)-1]; got != att {
				t.Fatalf("retry stored another attestation: %+v, first %+v", got, att)
			}
		})
	}
}

func TestFinalizeRefusesAnotherStatement(t *testing.T) {
	ctx := context.Background()
	store, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := attest.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	req := signedRequest(t, store)
	// An attestation of something else is already stored for the scan.
	st := attest.NewStatement(BuildReport(req), req.Results[0].Evidence)
	st.Predicate.Verdict = report.VerdictPass
	other, err := signer.Sign(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, "scans/s1/"+AttestationName, attest.EnvelopeMediaType, other); err != nil {
		t.Fatal(err)
	}
	_, err = (&Activities{Evidence: store, Signer: signer}).Finalize(ctx, req)
	if !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("finalize over another attestation: %v, want ErrImmutable", err)
	}
}

func TestFinalizeWithoutSignerSaysSoOnce(t *testing.T) {
	ctx := context.Background()
	store, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	a := &Activities{Evidence: store, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	for range 2 {
		res, err := a.Finalize(ctx, request())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Evidence {
			if e.Name == AttestationName {
				t.Fatal("attestation without a signer")
			}
		}
	}
	if _, _, err := store.Get(ctx, "scans/s1/"+AttestationName); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("attestation stored without a signer: %v", err)
	}
	if n := strings.Count(logs.String(), "evidence is unsigned"); n != 1 {
		t.Fatalf("unsigned logged %d times:\n%s", n, logs.String())
	}
}

// TestFinalizeSignsAVSA: a scan of a submitted archive also stores its
// verdict as a signed SLSA VSA over the archive's digest, whose input
// attestation is the scan's statement; a retried Finalize keeps it.
func TestFinalizeSignsAVSA(t *testing.T) {
	ctx := context.Background()
	store, err := storage.OpenLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := attest.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	a := &Activities{Evidence: store, Signer: signer, Version: "test", PolicyDigest: strings.Repeat("0d", 32)}
	req := signedRequest(t, store)
	req.Scan.Input.Archive = &storage.Object{Key: "inputs/x.tar.gz", SHA256: strings.Repeat("ef", 32)}
	byName := func(res workflows.ScanResult) map[string]report.Evidence {
		m := map[string]report.Evidence{}
		for _, e := range res.Evidence {
			m[e.Name] = e
		}
		return m
	}
	res, err := a.Finalize(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got := byName(res)
	vsaObj, ok := got[attest.VSAName]
	if !ok {
		t.Fatalf("no VSA in %+v", res.Evidence)
	}
	env, _, err := store.Get(ctx, vsaObj.Key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := attest.NewVerifier(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	st, sum, err := attest.VerifyVSA(ctx, env, v)
	if err != nil {
		t.Fatal(err)
	}
	if st.GetSubject()[0].GetDigest()["sha256"] != strings.Repeat("ef", 32) || sum.GetVerificationResult() != attest.VSAPassed ||
		sum.GetInputAttestations()[0].GetDigest()["sha256"] != got[AttestationName].SHA256 || sum.GetPolicy().GetDigest()["sha256"] != a.PolicyDigest {
		t.Fatalf("VSA %v %v", st, sum)
	}
	again, err := a.Finalize(ctx, req)
	if err != nil {
		t.Fatalf("retried finalize: %v", err)
	}
	if byName(again)[attest.VSAName] != vsaObj {
		t.Fatalf("retry stored another VSA: %+v, first %+v", byName(again)[attest.VSAName], vsaObj)
	}
}
