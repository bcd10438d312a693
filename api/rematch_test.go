package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/workflows"
)

// POST /v1/rematch starts (or joins) a re-match run of the caller's tenant
// only, never the schedule's run over every tenant.
func TestTriggerRematchCoversOnlyTheCallersTenant(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := newTemporalEnv(ctx, t)
	tc := env.dial(t, client.Options{})
	srv, err := api.New(api.Config{Tokens: []api.Token{
		{Name: "sre-acme", SHA256: api.HashToken("sre-acme-secret"), Tenant: "acme", Roles: []string{"sre"}},
		{Name: "ci-acme", SHA256: api.HashToken("ci-acme-secret"), Tenant: "acme", Roles: []string{"ci"}},
	}}, api.Deps{Temporal: tc, Inputs: env.in, Evidence: env.ev})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	post := func(token string) (int, api.RematchTriggered) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, hs.URL+"/v1/rematch", strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out api.RematchTriggered
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	code, first := post("sre-acme-secret")
	if code != http.StatusAccepted || first.Tenant != "acme" || first.WorkflowID != workflows.RematchNowWorkflowID("acme") || first.RunID == "" {
		t.Fatalf("trigger: %d %+v", code, first)
	}
	// The run's input names the tenant: it plans only acme's apps.
	it := tc.GetWorkflowHistory(ctx, first.WorkflowID, first.RunID, false, 0)
	ev0, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	var req workflows.RematchRequest
	if err := converter.GetDefaultDataConverter().FromPayloads(ev0.GetWorkflowExecutionStartedEventAttributes().GetInput(), &req); err != nil {
		t.Fatal(err)
	}
	if req.Tenant != "acme" {
		t.Fatalf("run input %+v, want tenant acme", req)
	}
	// A second trigger while it runs joins it.
	if code, again := post("sre-acme-secret"); code != http.StatusAccepted || again.RunID != first.RunID {
		t.Fatalf("second trigger: %d %+v, want run %s joined", code, again, first.RunID)
	}
	// Without the role: refused.
	if code, _ := post("ci-acme-secret"); code != http.StatusForbidden {
		t.Fatalf("ci trigger: %d, want 403", code)
	}
	if err := tc.TerminateWorkflow(ctx, first.WorkflowID, "", "test done"); err != nil {
		t.Fatal(err)
	}
}
