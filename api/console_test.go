package api_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/workflows"
)

// consoleScan stands in for ScanWorkflow in the console routes' tests: a
// scan labelled "review" waits for a review, shown by its progress query
// until the decision comes, then passes; one labelled "hold" runs until the
// test ends; any other passes at once. A scan that ends writes its verdict
// into its memo, as the real one does.
func consoleScan(ctx workflow.Context, req workflows.ScanRequest) (workflows.ScanResult, error) {
	p := workflows.Progress{Stage: "fast"}
	if slices.Contains(req.Labels, "review") {
		p.Stage, p.Verdict = "review", report.VerdictReview
		p.Review = &report.Review{Submitter: req.Submitter}
	}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (workflows.Progress, error) { return p, nil }); err != nil {
		return workflows.ScanResult{}, err
	}
	switch {
	case slices.Contains(req.Labels, "hold"):
		workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	case p.Review != nil:
		workflow.GetSignalChannel(ctx, workflows.SignalReview).Receive(ctx, nil)
		p.Review, p.Verdict = nil, ""
	}
	out := workflows.ScanResult{ScanID: req.ScanID, Verdict: report.VerdictPass, Stage: "deep"}
	if err := workflow.UpsertMemo(ctx, map[string]any{workflows.MemoVerdict: string(out.Verdict), workflows.MemoStage: out.Stage}); err != nil {
		return workflows.ScanResult{}, err
	}
	return out, nil
}

// guardsByApp answers each app's guard status from a table; an app not in
// it has no guard. Nothing else is asked of it by GET /v1/apps.
type guardsByApp struct {
	api.Guards
	status map[string]control.GuardStatus
}

func (g guardsByApp) Status(_ context.Context, tenant, app string) (control.GuardStatus, error) {
	if st, ok := g.status[tenant+"/"+app]; ok {
		return st, nil
	}
	return control.GuardStatus{}, control.ErrNoGuard
}

// consoleGet sends a GET as token and decodes a 200 into v; it returns the status
// and the raw body.
func consoleGet(t *testing.T, base, path, token string, v any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, b)
		}
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET %s: %d as %q, want problem+json", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}

// TestConsoleRoutesOnTemporal: the routes the console reads, on a real
// Temporal dev server and evidence store: the scans waiting for review
// (oldest first, decided ones gone, another tenant's never), the apps with
// their guard state and last verdict, and the evidence check of a scan.
func TestConsoleRoutesOnTemporal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTemporalEnv(ctx, t)
	wc := env.dial(t, client.Options{})
	w := worker.New(wc, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(consoleScan, workflow.RegisterOptions{Name: workflows.ScanWorkflowName})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	signer, err := attest.NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := attest.NewVerifier(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	store := &releases.Store{Evidence: env.ev, Lister: env.ev}
	guards := guardsByApp{status: map[string]control.GuardStatus{}}
	tokens := []api.Token{
		{Name: "ci-acme", SHA256: api.HashToken("ci-acme"), Tenant: "acme", Roles: []string{api.RoleCI}},
		{Name: "ci-other", SHA256: api.HashToken("ci-other"), Tenant: "other", Roles: []string{api.RoleCI}},
		{Name: "nobody", SHA256: api.HashToken("nobody"), Tenant: "acme"},
	}
	deps := api.Deps{Temporal: wc, Inputs: env.in, Evidence: env.ev, Releases: store, Guards: guards, Verifier: verifier}
	srv, err := api.New(api.Config{Tokens: tokens, RatePerSecond: 1000, Burst: 1000}, deps)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	deps.Verifier = nil
	unsigned, err := api.New(api.Config{Tokens: tokens}, deps)
	if err != nil {
		t.Fatal(err)
	}
	hsUnsigned := httptest.NewServer(unsigned.Handler())
	defer hsUnsigned.Close()

	scans := &control.Scans{Temporal: wc}
	start := func(tenant, app string, labels ...string) string {
		t.Helper()
		id := uuid.NewString()
		if _, err := scans.Start(ctx, workflows.ScanRequest{ScanID: id, App: app, Tenant: tenant, Submitter: "ci-" + tenant, Labels: labels},
			control.StartOptions{Content: id}); err != nil {
			t.Fatal(err)
		}
		return id
	}
	ready := func(id string) {
		t.Helper()
		for {
			if _, err := wc.QueryWorkflow(ctx, control.WorkflowID(id), "", workflows.QueryProgress); err == nil {
				return
			} else if ctx.Err() != nil {
				t.Fatal(err)
			}
		}
	}
	ended := func(id string) {
		t.Helper()
		if err := wc.GetWorkflow(ctx, control.WorkflowID(id), "").Get(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Started one after another: StartTime orders them.
	first := start("acme", "shop", "review")
	ready(first)
	decided := start("acme", "shop", "review")
	ready(decided)
	second := start("acme", "cart", "review")
	ready(second)
	held := start("acme", "shop", "hold")
	ready(held)
	theirs := start("other", "shop", "review")
	ready(theirs)
	done := start("acme", "shop")
	ended(done)
	if err := scans.Review(ctx, decided, workflows.ReviewSignal{Decision: workflows.ReviewApprove, Reviewer: "rita", Person: "rita@example.com"}); err != nil {
		t.Fatal(err)
	}
	ended(decided)

	pending := func(query, token string) []string {
		t.Helper()
		var l api.ScanList
		if code, body := consoleGet(t, hs.URL, "/v1/scans?"+query, token, &l); code != http.StatusOK {
			t.Fatalf("%s: %d %s", query, code, body)
		}
		var ids []string
		for _, s := range l.Scans {
			if s.Verdict != report.VerdictReview || s.Status != "running" {
				t.Errorf("%s: row %+v is not a scan waiting for review", query, s)
			}
			ids = append(ids, s.ScanID)
		}
		return ids
	}

	t.Run("review pending", func(t *testing.T) {
		// Visibility follows the starts and ends shortly after: wait for it.
		want := []string{first, second}
		got := pending("review=pending&order=oldest", "ci-acme")
		for deadline := time.Now().Add(20 * time.Second); !slices.Equal(got, want); got = pending("review=pending&order=oldest", "ci-acme") {
			if time.Now().After(deadline) {
				t.Fatalf("pending oldest first: %v, want %v (decided %s, held %s)", got, want, decided, held)
			}
		}
		if got := pending("review=pending", "ci-acme"); !slices.Equal(got, []string{second, first}) {
			t.Errorf("pending newest first: %v", got)
		}
		if got := pending("review=pending&order=oldest&limit=1", "ci-acme"); !slices.Equal(got, []string{first}) {
			t.Errorf("pending, limit 1: %v", got)
		}
		if got := pending("review=pending&app=cart", "ci-acme"); !slices.Equal(got, []string{second}) {
			t.Errorf("pending of app cart: %v", got)
		}
		if got := pending("review=pending&order=oldest", "ci-other"); !slices.Equal(got, []string{theirs}) {
			t.Errorf("the other tenant's pending: %v, want only its own %s", got, theirs)
		}
		for _, q := range []string{"review=all", "review=pending&order=random", "order=oldest", "review=pending&verdict=pass", "review=pending&page_token=AA"} {
			if code, body := consoleGet(t, hs.URL, "/v1/scans?"+q, "ci-acme", nil); code != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, code, body)
			}
		}
	})

	t.Run("apps", func(t *testing.T) {
		var list api.AppList
		if code, body := consoleGet(t, hs.URL, "/v1/apps", "ci-acme", &list); code != http.StatusOK || len(list.Apps) != 0 {
			t.Fatalf("no releases yet: %d %s", code, body)
		}
		for _, app := range []string{"shop", "cart"} {
			if _, err := env.ev.Put(ctx, "scans/"+done+"-"+app+"/verdict.json", "application/json", []byte(`{"app":"`+app+`","verdict":"pass"}`)); err != nil {
				t.Fatal(err)
			}
		}
		var shop []releases.Release
		for i := range 2 {
			rel, err := store.Record(ctx, releases.Release{ID: "shop-" + string(rune('1'+i)), Tenant: "acme", App: "shop",
				Artifact: "sha256:" + strings.Repeat("a", 64), ScanID: done + "-shop", RecordedBy: "ci"})
			if err != nil {
				t.Fatal(err)
			}
			shop = append(shop, rel)
		}
		if _, err := store.MarkKnownGood(ctx, releases.KnownGood{Tenant: "acme", App: "shop", ReleaseID: shop[0].ID, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := store.Record(ctx, releases.Release{ID: "cart-1", Tenant: "acme", App: "cart", Artifact: "sha256:" + strings.Repeat("c", 64),
			ScanID: done + "-cart", RecordedBy: "ci"}); err != nil {
			t.Fatal(err)
		}
		// The guard watches shop's first release again: a rollback went back to it.
		var st control.GuardStatus
		st.Guard.Release.ID, st.Guard.Breaches = shop[0].ID, 2
		guards.status["acme/shop"] = st

		if code, body := consoleGet(t, hs.URL, "/v1/apps", "ci-acme", &list); code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		if len(list.Apps) != 2 || list.Apps[0].App != "cart" || list.Apps[1].App != "shop" {
			t.Fatalf("apps %+v, want cart and shop in that order", list.Apps)
		}
		cart, shopRow := list.Apps[0], list.Apps[1]
		if cart.State != api.StateUnguarded || cart.Release == nil || cart.Release.ID != "cart-1" || cart.KnownGood != "" || cart.LastScan != nil {
			t.Errorf("cart %+v", cart)
		}
		if shopRow.State != api.StateBreached || shopRow.Release == nil || shopRow.Release.ID != shop[0].ID || shopRow.KnownGood != shop[0].ID {
			t.Errorf("shop %+v", shopRow)
		}
		// The last scan is the newest completed one: the decided review.
		if ls := shopRow.LastScan; ls == nil || (ls.ScanID != decided && ls.ScanID != done) || ls.Verdict != report.VerdictPass || ls.At.IsZero() {
			t.Errorf("shop's last scan %+v, want a completed one with its verdict", shopRow.LastScan)
		}
		if code, body := consoleGet(t, hs.URL, "/v1/apps?state=breached", "ci-acme", &list); code != http.StatusOK || len(list.Apps) != 1 || list.Apps[0].App != "shop" {
			t.Errorf("state=breached: %d %s", code, body)
		}
		if code, body := consoleGet(t, hs.URL, "/v1/apps?state=asleep", "ci-acme", nil); code != http.StatusBadRequest {
			t.Errorf("state=asleep: %d %s, want 400", code, body)
		}
		if code, body := consoleGet(t, hs.URL, "/v1/apps", "ci-other", &list); code != http.StatusOK || len(list.Apps) != 0 {
			t.Errorf("the other tenant: %d %s, want no apps", code, body)
		}
		if code, body := consoleGet(t, hs.URL, "/v1/apps", "nobody", nil); code != http.StatusForbidden {
			t.Errorf("a principal without app.read: %d %s, want 403", code, body)
		}
	})

	t.Run("verify", func(t *testing.T) {
		sign := func(id string, objs []report.Evidence) {
			t.Helper()
			env2, err := signer.Sign(ctx, attest.NewStatement(report.Report{ScanID: id, App: "shop", Verdict: report.VerdictPass, Stage: "deep"}, objs))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.ev.Put(ctx, attest.AttestationKey(id), attest.EnvelopeMediaType, env2); err != nil {
				t.Fatal(err)
			}
		}
		obj, err := env.ev.Put(ctx, "scans/"+done+"/report.json", "application/json", []byte(`{"verdict":"pass"}`))
		if err != nil {
			t.Fatal(err)
		}
		sign(done, []report.Evidence{{Name: "report.json", Bucket: obj.Bucket, Key: obj.Key, VersionID: obj.VersionID, SHA256: obj.SHA256}})
		var v attest.Verification
		if code, body := consoleGet(t, hs.URL, "/v1/scans/"+done+"/verify", "ci-acme", &v); code != http.StatusOK || !v.OK || len(v.Checked) != 2 || len(v.Problems) != 0 {
			t.Fatalf("a signed scan: %d %s", code, body)
		}
		// An attested object that is not stored: 200, not ok, the problem named.
		sign(decided, []report.Evidence{{Name: "sbom.cdx.json", Key: "scans/" + decided + "/sbom.cdx.json", SHA256: strings.Repeat("0", 64)}})
		if code, body := consoleGet(t, hs.URL, "/v1/scans/"+decided+"/verify", "ci-acme", &v); code != http.StatusOK || v.OK || len(v.Problems) != 1 ||
			!strings.Contains(v.Problems[0], "sbom.cdx.json (MISSING)") {
			t.Fatalf("a missing object: %d %s", code, body)
		}
		// No attestation at all (a scan still running): not ok.
		if code, body := consoleGet(t, hs.URL, "/v1/scans/"+held+"/verify", "ci-acme", &v); code != http.StatusOK || v.OK || len(v.Checked) != 0 ||
			!strings.Contains(strings.Join(v.Problems, ""), "no attestation") {
			t.Fatalf("an unsigned scan: %d %s", code, body)
		}
		for _, c := range []struct {
			name, base, path, token string
			code                    int
		}{
			{"another tenant's scan", hs.URL, "/v1/scans/" + done + "/verify", "ci-other", http.StatusNotFound},
			{"no roles", hs.URL, "/v1/scans/" + done + "/verify", "nobody", http.StatusNotFound},
			{"not a scan id", hs.URL, "/v1/scans/nope/verify", "ci-acme", http.StatusNotFound},
			{"no key", hsUnsigned.URL, "/v1/scans/" + done + "/verify", "ci-acme", http.StatusNotImplemented},
		} {
			if code, body := consoleGet(t, c.base, c.path, c.token, nil); code != c.code {
				t.Errorf("%s: %d %s, want %d", c.name, code, body, c.code)
			}
		}
	})
}
