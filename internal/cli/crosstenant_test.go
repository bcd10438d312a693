package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/fleet"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/vex"
	"github.com/tollgate/tollgate/workers/scanners"
	"github.com/tollgate/tollgate/workflows"
)

// The two tenants of the matrix. Alpha owns everything; bravo tries it.
const (
	tenantA = "alpha"
	tenantB = "bravo"
	appA    = "alpha-payroll"
)

// crossEnv is the whole fleet in one process (real Temporal dev server,
// NATS, workers, scanners, evidence store) behind the real API, with tokens
// for tenant alpha and, for tenant bravo, one token per role and one with
// every role.
type crossEnv struct {
	stack *embedded.Stack
	api   *httptest.Server
}

func newCrossEnv(t *testing.T) *crossEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	st, err := embedded.Start(context.Background(), embedded.Config{
		EvidenceDir: filepath.Join(dir, "evidence"), Orchestrator: fleet.Orchestrator{PolicyDir: guardPolicy(t, nil)}, Version: "test",
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	redactor, err := scanners.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	tokens := []api.Token{
		{Name: "alpha-ci", SHA256: api.HashToken("alpha-ci"), Tenant: tenantA, Roles: []string{api.RoleCI, api.RoleDeployer}},
		{Name: "alpha-security", SHA256: api.HashToken("alpha-security"), Tenant: tenantA, Roles: []string{api.RoleSecurity}},
		{Name: "alpha-oncall", SHA256: api.HashToken("alpha-oncall"), Tenant: tenantA, Roles: []string{api.RoleOncall}},
		{Name: "bravo-all", SHA256: api.HashToken("bravo-all"), Tenant: tenantB, Roles: slices.Clone(api.Roles)},
	}
	for _, role := range api.Roles {
		tokens = append(tokens, api.Token{Name: "bravo-" + role, SHA256: api.HashToken("bravo-" + role), Tenant: tenantB, Roles: []string{role}})
	}
	// The matrix sends many requests from one address: the limits are not
	// under test here.
	srv, err := api.New(api.Config{RatePerSecond: 1000, Burst: 1000, IPRatePerSecond: 1000, IPBurst: 1000, Tokens: tokens},
		api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(), Redactor: redactor,
			Releases: fleet.NewReleaseStore(st.Evidence()), Exceptions: fleet.NewExceptionStore(st.Evidence()),
			VEX: fleet.NewVEXStore(st.Evidence()), Guards: &control.Guards{Temporal: st.Client()}, Pools: tasks.Pools{JS: st.JetStream()}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &crossEnv{stack: st, api: hs}
}

// call sends a JSON (or no) body and returns the status and body.
func (e *crossEnv) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.api.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, b := do(t, req)
	return resp.StatusCode, b
}

// submitWait submits an example and waits for its scan to finish.
func (e *crossEnv) submitWait(t *testing.T, token, app, example string, header map[string]string) api.ScanStatus {
	t.Helper()
	resp, body := post(t, e.api.URL, token, `{"app":"`+app+`"}`, packed(t, example), header)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("submit %s: %d %s", app, resp.StatusCode, body)
	}
	var st api.ScanStatus
	json.Unmarshal(body, &st)
	for st.Status != "completed" {
		_, b := get(t, e.api.URL+st.StatusURL+"?wait=30s", token)
		json.Unmarshal(b, &st)
		if st.Status == "failed" {
			t.Fatalf("scan failed: %+v", st)
		}
	}
	return st
}

// alphaObjects are tenant alpha's things, made through the API.
type alphaObjects struct {
	scan      api.ScanStatus
	idemKey   string
	release   releases.Release
	exception exceptions.Exception
	vex       vex.Record
	// vexDoc is the document alpha added, which bravo sends too.
	vexDoc json.RawMessage
}

// openVEX is trivy's own OpenVEX document (vex/testdata), a real one.
func openVEX(t *testing.T) json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "vex", "testdata", "openvex", "trivy.openvex.json"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (e *crossEnv) makeAlphaObjects(t *testing.T) alphaObjects {
	t.Helper()
	var a alphaObjects
	a.idemKey = "alpha-build-1"
	a.scan = e.submitWait(t, "alpha-ci", appA, "clean-static", map[string]string{"Idempotency-Key": a.idemKey})
	code, body := e.call(t, http.MethodPost, "/v1/apps/"+appA+"/releases", "alpha-ci",
		api.ReleaseRequest{Artifact: "sha256:" + strings.Repeat("a", 64), ScanID: a.scan.ScanID})
	if code != http.StatusCreated || json.Unmarshal(body, &a.release) != nil {
		t.Fatalf("alpha's release: %d %s", code, body)
	}
	code, body = e.call(t, http.MethodPost, "/v1/exceptions", "alpha-security", api.ExceptionRequest{
		Scope: exceptions.ScopeApp, App: appA, Finding: exceptions.Finding{Rule: "licenses.denied"},
		Reason: "alpha's accepted risk", ExpiresAt: time.Now().Add(24 * time.Hour).UTC()})
	if code != http.StatusCreated || json.Unmarshal(body, &a.exception) != nil {
		t.Fatalf("alpha's exception: %d %s", code, body)
	}
	a.vexDoc = openVEX(t)
	code, body = e.call(t, http.MethodPost, "/v1/vex", "alpha-security", a.vexDoc)
	if code != http.StatusCreated || json.Unmarshal(body, &a.vex) != nil {
		t.Fatalf("alpha's VEX document: %d %s", code, body)
	}
	// The guard of alpha's app watches the release.
	code, body = e.call(t, http.MethodGet, "/v1/apps/"+appA+"/guard", "alpha-oncall", nil)
	if code != http.StatusOK {
		t.Fatalf("alpha's guard: %d %s", code, body)
	}
	return a
}

// matrixRow is one attempt of tenant bravo on tenant alpha's things through
// one route. A row either must be refused (refused: one of the statuses in
// allow, never 2xx) or names only bravo's own namespace (own: the route
// takes the tenant from the principal, so the request cannot name alpha's
// object; a 2xx acts on bravo's things), which then must not show or
// change alpha's. No row may answer 5xx, and no answer may hold any of
// alpha's identifiers the request did not itself send.
type matrixRow struct {
	route  string // api.Route.String()
	name   string
	method string
	path   string
	body   any
	allow  []int // refused rows: the statuses allowed (all 4xx)
	own    bool
	// meta is the metadata of a POST /v1/scans row, when not the default.
	meta string
}

// crossTenantRows are the attempts, refused rows first: own-namespace rows
// (freeze) make bravo objects that would change later answers.
func crossTenantRows(a alphaObjects) []matrixRow {
	notFound := []int{http.StatusForbidden, http.StatusNotFound}
	now := time.Now().UTC()
	return []matrixRow{
		{route: "POST /v1/scans", name: "submit into alpha's tenant", method: http.MethodPost, path: "/v1/scans",
			allow: []int{http.StatusBadRequest, http.StatusForbidden}},
		{route: "GET /v1/scans/{id}", name: "read alpha's scan", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID, allow: notFound},
		{route: "GET /v1/scans/{id}", name: "wait on alpha's scan", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID + "?wait=1s", allow: notFound},
		{route: "GET /v1/scans/{id}/report", name: "read alpha's report", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID + "/report", allow: notFound},
		{route: "POST /v1/scans", name: "submit against alpha's scan as baseline", method: http.MethodPost, path: "/v1/scans",
			meta: `{"app":"` + appA + `","baseline":"` + a.scan.ScanID + `"}`, allow: []int{http.StatusBadRequest, http.StatusForbidden}},
		{route: "GET /v1/scans/{id}/diff/{other}", name: "diff alpha's scans", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID + "/diff/" + a.scan.ScanID, allow: notFound},
		{route: "GET /v1/scans/{id}/diff/{other}", name: "diff alpha's releases", method: http.MethodGet,
			path: "/v1/scans/" + a.release.ID + "/diff/" + a.release.ID + "?app=" + appA, allow: notFound},
		{route: "GET /v1/scans/{id}/verify", name: "verify alpha's scan", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID + "/verify", allow: notFound},
		{route: "GET /v1/scans/{id}/report", name: "read alpha's SBOM", method: http.MethodGet, path: "/v1/scans/" + a.scan.ScanID + "/report?format=cyclonedx", allow: notFound},
		{route: "POST /v1/scans/{id}/review", name: "decide alpha's scan", method: http.MethodPost, path: "/v1/scans/" + a.scan.ScanID + "/review",
			body: map[string]string{"decision": workflows.ReviewApprove, "reason": "looks fine to bravo"}, allow: notFound},
		{route: "POST /v1/apps/{app}/releases", name: "release alpha's scan", method: http.MethodPost, path: "/v1/apps/" + appA + "/releases",
			body:  api.ReleaseRequest{Artifact: "sha256:" + strings.Repeat("b", 64), ScanID: a.scan.ScanID},
			allow: []int{http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity}},
		{route: "POST /v1/apps/{app}/health", name: "push health to alpha's guard", method: http.MethodPost, path: "/v1/apps/" + appA + "/health",
			body: api.HealthPush{Samples: []api.HealthSampleIn{{At: now, Requests: 1000, Errors: 0}}}, allow: notFound},
		{route: "POST /v1/apps/{app}/unfreeze", name: "unfreeze alpha's guard", method: http.MethodPost, path: "/v1/apps/" + appA + "/unfreeze", allow: notFound},
		{route: "GET /v1/apps/{app}/guard", name: "read alpha's guard", method: http.MethodGet, path: "/v1/apps/" + appA + "/guard", allow: notFound},
		{route: "POST /v1/apps/{app}/revive", name: "revive alpha's app", method: http.MethodPost, path: "/v1/apps/" + appA + "/revive",
			body: api.ReviveIn{Reason: "bravo wants it"}, allow: []int{http.StatusForbidden, http.StatusNotFound}},
		{route: "POST /v1/exceptions/{id}/revoke", name: "revoke alpha's exception", method: http.MethodPost, path: "/v1/exceptions/" + a.exception.ID + "/revoke",
			body: map[string]string{"reason": "bravo says so"}, allow: notFound},

		{route: "POST /v1/scans", name: "reuse alpha's Idempotency-Key", method: http.MethodPost, path: "/v1/scans", own: true},
		{route: "GET /v1/scans", name: "list scans", method: http.MethodGet, path: "/v1/scans?limit=500", own: true},
		{route: "GET /v1/scans", name: "list scans of alpha's app", method: http.MethodGet, path: "/v1/scans?app=" + appA, own: true},
		{route: "GET /v1/scans", name: "list scans waiting for review", method: http.MethodGet, path: "/v1/scans?review=pending&order=oldest", own: true},
		{route: "GET /v1/apps", name: "list apps", method: http.MethodGet, path: "/v1/apps", own: true},
		{route: "GET /v1/apps", name: "list watching apps", method: http.MethodGet, path: "/v1/apps?state=watching", own: true},
		{route: "GET /v1/apps", name: "list idle apps", method: http.MethodGet, path: "/v1/apps?state=idle", own: true},
		{route: "GET /v1/whoami", name: "who am I", method: http.MethodGet, path: "/v1/whoami", own: true},
		{route: "GET /v1/apps/{app}/releases", name: "list alpha's app's releases", method: http.MethodGet, path: "/v1/apps/" + appA + "/releases", own: true},
		{route: "GET /v1/pools", name: "read the pools", method: http.MethodGet, path: "/v1/pools", own: true},
		{route: "POST /v1/rematch", name: "re-match", method: http.MethodPost, path: "/v1/rematch", own: true},
		{route: "GET /v1/exceptions", name: "list exceptions", method: http.MethodGet, path: "/v1/exceptions", own: true},
		{route: "GET /v1/vex", name: "list VEX documents", method: http.MethodGet, path: "/v1/vex", own: true},
		{route: "POST /v1/vex", name: "add a VEX document", method: http.MethodPost, path: "/v1/vex", own: true, body: a.vexDoc},
		{route: "GET /v1/exceptions", name: "list exceptions of alpha's app", method: http.MethodGet, path: "/v1/exceptions?app=" + appA, own: true},
		{route: "POST /v1/exceptions", name: "accept a risk for alpha's app", method: http.MethodPost, path: "/v1/exceptions", own: true,
			body: api.ExceptionRequest{Scope: exceptions.ScopeApp, App: appA, Finding: exceptions.Finding{Rule: "licenses.denied"},
				Reason: "bravo", ExpiresAt: now.Add(time.Hour)}},
		{route: "POST /v1/apps/{app}/rollback", name: "roll back alpha's app", method: http.MethodPost, path: "/v1/apps/" + appA + "/rollback", own: true,
			body: api.RollbackIn{To: a.release.ID, Reason: "bravo wants it"}},
		{route: "POST /v1/apps/{app}/freeze", name: "freeze alpha's app", method: http.MethodPost, path: "/v1/apps/" + appA + "/freeze", own: true,
			body: api.FreezeIn{Reason: "bravo wants it"}},
	}
}

// TestCrossTenantMatrix is the acceptance test of tenant isolation: for
// every authenticated route, tenant bravo, with each role alone and with
// every role at once, tries tenant alpha's scan, release, guard and
// exception. It never gets a 2xx on alpha's things, never sees them in an
// answer, and alpha's things are unchanged afterwards. A route without a row
// fails the test, and so does a route the OpenAPI document does not list.
func TestCrossTenantMatrix(t *testing.T) {
	e := newCrossEnv(t)
	a := e.makeAlphaObjects(t)
	// Alpha has work waiting in a pool (on a priority no worker reads, so
	// it stays): its tenant name must not reach bravo's /v1/pools.
	parked := tasks.StreamConfig{}.Subject(tasks.Task{Pool: tasks.PoolFast, Priority: "parked", Tenant: tenantA, Kind: tasks.KindSecrets})
	if _, err := e.stack.JetStream().Publish(context.Background(), parked, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	rows := crossTenantRows(a)
	checkRowsCoverRoutes(t, rows)

	// What alpha has that bravo must never be shown (unless bravo's own
	// request named it).
	secrets := []string{a.scan.ScanID, a.release.ID, a.exception.ID, a.vex.ID, a.idemKey, appA, tenantA, "alpha's accepted risk", a.release.Artifact}
	bravoTokens := []string{"bravo-all"}
	for _, role := range api.Roles {
		bravoTokens = append(bravoTokens, "bravo-"+role)
	}
	for _, row := range rows {
		for _, token := range bravoTokens {
			t.Run(row.name+"/"+token, func(t *testing.T) {
				code, body, sent := e.attempt(t, row, token, a)
				if code >= 500 {
					t.Fatalf("%s: %d %s", row.route, code, body)
				}
				if !row.own && (code < 400 || !slices.Contains(row.allow, code)) {
					t.Fatalf("%s: %d, want one of %v: %s", row.route, code, row.allow, body)
				}
				for _, s := range secrets {
					if !strings.Contains(sent, s) && strings.Contains(string(body), s) {
						t.Fatalf("%s: the answer (%d) shows alpha's %q:\n%s", row.route, code, s, body)
					}
				}
			})
		}
	}

	t.Run("alpha's things are unchanged", func(t *testing.T) {
		code, body := e.call(t, http.MethodGet, "/v1/apps/"+appA+"/guard", "alpha-oncall", nil)
		var gs control.GuardStatus
		if code != http.StatusOK || json.Unmarshal(body, &gs) != nil {
			t.Fatalf("alpha's guard: %d %s", code, body)
		}
		if gs.Guard.Frozen || gs.Rollback != nil || gs.RollbackRunning || gs.Guard.Release.ID != a.release.ID {
			t.Fatalf("alpha's guard changed: %s", body)
		}
		code, body = e.call(t, http.MethodGet, "/v1/exceptions", "alpha-security", nil)
		var el api.ExceptionList
		if code != http.StatusOK || json.Unmarshal(body, &el) != nil || len(el.Exceptions) != 1 || el.Exceptions[0].Revoked != nil {
			t.Fatalf("alpha's exceptions changed: %d %s", code, body)
		}
		code, body = e.call(t, http.MethodGet, "/v1/apps/"+appA+"/releases", "alpha-ci", nil)
		if code != http.StatusOK || strings.Count(string(body), `"scan_id"`) != 1 {
			t.Fatalf("alpha's releases changed: %d %s", code, body)
		}
		code, body = e.call(t, http.MethodGet, "/v1/scans/"+a.scan.ScanID, "alpha-ci", nil)
		var st api.ScanStatus
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || st.Verdict != a.scan.Verdict || st.Review != nil {
			t.Fatalf("alpha's scan changed: %d %s", code, body)
		}
	})
}

// attempt sends a row's request as token; it returns what was sent, for the
// leak check.
func (e *crossEnv) attempt(t *testing.T, row matrixRow, token string, a alphaObjects) (int, []byte, string) {
	t.Helper()
	if row.method == http.MethodPost && row.path == "/v1/scans" {
		meta := `{"app":"` + appA + `","tenant":"` + tenantA + `"}`
		var header map[string]string
		if row.own {
			meta = `{"app":"bravo-shop"}`
			header = map[string]string{"Idempotency-Key": a.idemKey}
		}
		if row.meta != "" {
			meta = row.meta
		}
		resp, body := post(t, e.api.URL, token, meta, packed(t, "clean-static"), header)
		return resp.StatusCode, body, row.path + meta + fmt.Sprint(header)
	}
	code, body := e.call(t, row.method, row.path, token, row.body)
	sent, _ := json.Marshal(row.body)
	return code, body, row.path + string(sent)
}

// checkRowsCoverRoutes fails when an authenticated route has no row, a row
// names a route that does not exist, or the OpenAPI document and the route
// table disagree.
func checkRowsCoverRoutes(t *testing.T, rows []matrixRow) {
	t.Helper()
	served := map[string]bool{}
	for _, r := range api.Routes() {
		served[r.String()] = true
		if r.Public {
			continue
		}
		if !slices.ContainsFunc(rows, func(row matrixRow) bool { return row.route == r.String() }) {
			t.Errorf("route %s has no row in the cross-tenant matrix", r)
		}
	}
	for _, row := range rows {
		if !served[row.route] {
			t.Errorf("row %q names route %s, which the API does not serve", row.name, row.route)
		}
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "api", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			if m := strings.ToUpper(method); slices.Contains([]string{"GET", "POST", "PUT", "PATCH", "DELETE"}, m) {
				documented[m+" "+path] = true
			}
		}
	}
	for r := range served {
		if !documented[r] {
			t.Errorf("route %s is not in api/openapi.json", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("api/openapi.json documents %s, which the API does not serve", r)
		}
	}
}

// TestScanListIsScopedInTheQuery: a tenant's listing asks Temporal for its
// own scans only (the TollgateTenant search attribute), so its first page
// holds its scan even when another tenant's scans are newer; before, the
// page was all tenants' newest scans, filtered afterwards, and came back
// empty. A reused Idempotency-Key with other content is 409, and labels are
// part of what makes two submissions the same scan.
func TestScanListIsScopedInTheQuery(t *testing.T) {
	e := newCrossEnv(t)
	mine := e.submitWait(t, "alpha-ci", appA, "clean-static", nil)
	theirs := e.submitWait(t, "bravo-all", "bravo-shop", "clean-static", nil)
	desc, err := e.stack.Client().DescribeWorkflowExecution(context.Background(), "scan-"+mine.ScanID, "")
	if err != nil {
		t.Fatal(err)
	}
	if f := desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(); f[workflows.SearchTenant.GetName()] == nil || f[workflows.SearchApp.GetName()] == nil {
		t.Fatalf("the scan has no tenant and app search attributes: %v", f)
	}
	list := func(token string) api.ScanList {
		code, body := e.call(t, http.MethodGet, "/v1/scans?limit=1", token, nil)
		var l api.ScanList
		if code != http.StatusOK || json.Unmarshal(body, &l) != nil {
			t.Fatalf("list: %d %s", code, body)
		}
		return l
	}
	// Visibility is updated shortly after a workflow starts: wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for l := list("bravo-all"); len(l.Scans) == 0 || l.Scans[0].ScanID != theirs.ScanID; l = list("bravo-all") {
		if time.Now().After(deadline) {
			t.Fatalf("bravo's scan never reached the listing: %+v", l)
		}
	}
	if l := list("alpha-ci"); len(l.Scans) != 1 || l.Scans[0].ScanID != mine.ScanID {
		t.Fatalf("alpha's first page of one: %+v, want its scan %s", l, mine.ScanID)
	}

	t.Run("idempotency key binds the content", func(t *testing.T) {
		key := map[string]string{"Idempotency-Key": "build-7"}
		src := packed(t, "clean-static")
		submit := func(meta string, archive []byte, h map[string]string) (int, string) {
			resp, body := post(t, e.api.URL, "alpha-ci", meta, archive, h)
			var st api.ScanStatus
			json.Unmarshal(body, &st)
			return resp.StatusCode, st.ScanID
		}
		code, first := submit(`{"app":"shop","commit":"0123abc"}`, src, key)
		if code != http.StatusAccepted {
			t.Fatalf("first submission: %d", code)
		}
		if code, again := submit(`{"app":"shop","labels":["b","a"],"commit":"0123abc"}`, src, key); code != http.StatusConflict {
			t.Fatalf("same key, other labels: %d %s", code, again)
		}
		for name, c := range map[string]struct {
			meta    string
			archive []byte
		}{
			"other archive":      {`{"app":"shop","commit":"0123abc"}`, packed(t, "node-todo")},
			"other app":          {`{"app":"other","commit":"0123abc"}`, src},
			"other commit":       {`{"app":"shop","commit":"4567def"}`, src},
			"do-not-ship label":  {`{"app":"shop","commit":"0123abc","labels":["do-not-ship"]}`, src},
			"ai-generated label": {`{"app":"shop","commit":"0123abc","labels":["ai-generated"]}`, src},
			"bulk priority":      {`{"app":"shop","commit":"0123abc","priority":"bulk"}`, src},
		} {
			resp, body := post(t, e.api.URL, "alpha-ci", c.meta, c.archive, key)
			if resp.StatusCode != http.StatusConflict {
				t.Errorf("%s under a used key: %d, want 409: %s", name, resp.StatusCode, body)
			} else {
				wantProblem(t, resp, body, http.StatusConflict, "idempotency-conflict")
			}
		}
		if code, again := submit(`{"app":"shop","commit":"0123abc"}`, src, key); code != http.StatusAccepted || again != first {
			t.Fatalf("same key, same content: %d %s, want the scan %s", code, again, first)
		}
		// Without a key, the dedupe window: labels make another scan.
		_, plain := submit(`{"app":"shop","commit":"89abcde"}`, src, nil)
		_, plainAgain := submit(`{"app":"shop","commit":"89abcde"}`, src, nil)
		_, labelled := submit(`{"app":"shop","commit":"89abcde","labels":["do-not-ship"]}`, src, nil)
		if plain == "" || plain != plainAgain || labelled == plain {
			t.Fatalf("dedupe: %s %s %s; want the first two the same and the labelled one another", plain, plainAgain, labelled)
		}
	})
}
