package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

// rpcCounter counts the calls a Temporal client makes to the frontend, by
// method: the round trips a request of the API costs.
type rpcCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *rpcCounter) intercept(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	c.mu.Lock()
	c.n[path.Base(method)]++
	c.mu.Unlock()
	return invoker(ctx, method, req, reply, cc, opts...)
}

// take returns the calls counted since the last take, and their total.
func (c *rpcCounter) take() (map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	got, total := c.n, 0
	for _, n := range got {
		total += n
	}
	c.n = map[string]int{}
	return got, total
}

// fakeScan stands in for ScanWorkflow: its labels say what it does
// ("slow" ends after 2 s, "hold" waits for a signal, "review" waits for a
// review, "fail" fails on bad input); it answers the progress query.
func fakeScan(ctx workflow.Context, req workflows.ScanRequest) (workflows.ScanResult, error) {
	p := workflows.Progress{Stage: "fast"}
	if slices.Contains(req.Labels, "review") {
		p.Stage, p.Verdict, p.Waiting = "review", report.VerdictReview, "review: a reviewer must decide"
		p.Review = &report.Review{Submitter: req.Submitter}
	}
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (workflows.Progress, error) { return p, nil }); err != nil {
		return workflows.ScanResult{}, err
	}
	switch {
	case slices.Contains(req.Labels, "fail"):
		return workflows.ScanResult{}, temporal.NewNonRetryableApplicationError("the archive is not one", tasks.ErrTypeBadInput, nil)
	case slices.Contains(req.Labels, "slow"):
		if err := workflow.Sleep(ctx, 2*time.Second); err != nil {
			return workflows.ScanResult{}, err
		}
	case slices.Contains(req.Labels, "hold"):
		workflow.GetSignalChannel(ctx, "finish").Receive(ctx, nil)
	case slices.Contains(req.Labels, "review"):
		workflow.GetSignalChannel(ctx, workflows.SignalReview).Receive(ctx, nil)
	}
	return workflows.ScanResult{ScanID: req.ScanID, Verdict: report.VerdictPass, Stage: "deep",
		Report: report.Evidence{Name: "report.json", Key: "scans/" + req.ScanID + "/report.json"}}, nil
}

// TestStatusRoundTrips counts the Temporal round trips of each way of
// reading a scan through the API: one description of the scan, then one
// read (its result, the long poll's own answer, or its progress query).
// A scan that ends within ?wait= costs no second description and no second
// read of its result; a review costs one description, not two.
func TestStatusRoundTrips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env := newTemporalEnv(ctx, t)
	// The worker and the test's own calls use one client; the API another,
	// whose calls are counted.
	wc := env.dial(t, client.Options{})
	counter := &rpcCounter{n: map[string]int{}}
	ac := env.dial(t, client.Options{ConnectionOptions: client.ConnectionOptions{
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(counter.intercept)}}})
	w := worker.New(wc, workflows.TaskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fakeScan, workflow.RegisterOptions{Name: "ScanWorkflow"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ev := env.ev
	srv, err := api.New(api.Config{Tokens: []api.Token{
		{Name: "ci-acme", SHA256: api.HashToken("ci-secret"), Tenant: "acme", Roles: []string{api.RoleCI}},
		{Name: "rita", SHA256: api.HashToken("rita-secret"), Tenant: "acme", Roles: []string{api.RoleReviewer}, Person: "rita@example.com"},
	}}, api.Deps{Temporal: ac, Inputs: env.in, Evidence: ev})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	// start starts a scan as the API's memo names it, with the test's client.
	start := func(labels ...string) string {
		t.Helper()
		id := uuid.NewString()
		if _, err := ev.Put(ctx, "scans/"+id+"/report.json", "application/json", []byte(`{"scan_id":"`+id+`","verdict":"pass"}`)); err != nil {
			t.Fatal(err)
		}
		_, err := wc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "scan-" + id, TaskQueue: workflows.TaskQueue,
			Memo: map[string]any{workflows.MemoTenant: "acme", workflows.MemoApp: "shop", workflows.MemoSubmitter: "ci-acme"}},
			"ScanWorkflow", workflows.ScanRequest{ScanID: id, App: "shop", Tenant: "acme", Submitter: "ci-acme", Labels: labels})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// ready waits until the scan's worker answers its progress query.
	ready := func(id string) {
		t.Helper()
		for {
			if _, err := wc.QueryWorkflow(ctx, "scan-"+id, "", workflows.QueryProgress); err == nil {
				return
			} else if ctx.Err() != nil {
				t.Fatal(err)
			}
		}
	}
	ended := func(id string) { _ = wc.GetWorkflow(ctx, "scan-"+id, "").Get(ctx, nil) }
	call := func(method, ref, token, body string) (int, api.ScanStatus) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, hs.URL+ref, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st api.ScanStatus
		json.NewDecoder(resp.Body).Decode(&st)
		return resp.StatusCode, st
	}

	done, slow, hold, failed, review := start(), start("slow"), start("hold"), start("fail"), start("review")
	ended(done)
	ended(failed)
	ready(hold)
	ready(review)
	counter.take()

	for _, c := range []struct {
		name, method, ref, token, body string
		code                           int
		status                         string
		want                           int // round trips
	}{
		{name: "completed", method: http.MethodGet, ref: "/v1/scans/" + done, code: 200, status: "completed", want: 2},
		{name: "ends within the wait", method: http.MethodGet, ref: "/v1/scans/" + slow + "?wait=30s", code: 200, status: "completed", want: 2},
		{name: "running", method: http.MethodGet, ref: "/v1/scans/" + hold, code: 200, status: "running", want: 2},
		{name: "running past the wait", method: http.MethodGet, ref: "/v1/scans/" + hold + "?wait=1s", code: 200, status: "running", want: 3},
		{name: "failed", method: http.MethodGet, ref: "/v1/scans/" + failed, code: 200, status: "failed", want: 2},
		{name: "report", method: http.MethodGet, ref: "/v1/scans/" + done + "/report", code: 200, want: 2},
		{name: "review", method: http.MethodPost, ref: "/v1/scans/" + review + "/review", token: "rita-secret", body: `{"decision":"approve","reason":"looks fine"}`,
			code: 202, status: "running", want: 3},
	} {
		token := c.token
		if token == "" {
			token = "ci-secret"
		}
		code, st := call(c.method, c.ref, token, c.body)
		calls, total := counter.take()
		t.Logf("%-22s %d round trips: %v", c.name, total, calls)
		if code != c.code || st.Status != c.status {
			t.Errorf("%s: %d %+v, want %d %q", c.name, code, st, c.code, c.status)
		}
		if total != c.want {
			t.Errorf("%s: %d round trips %v, want %d", c.name, total, calls, c.want)
		}
		switch c.name {
		case "running", "running past the wait":
			if st.Stage != "fast" {
				t.Errorf("%s: stage %q, want the progress query's", c.name, st.Stage)
			}
		case "failed":
			if !st.BadInput || st.Error == "" {
				t.Errorf("failed scan: %+v, want bad input", st)
			}
		case "completed", "ends within the wait":
			if st.Verdict != report.VerdictPass || st.ReportURL == "" {
				t.Errorf("%s: %+v", c.name, st)
			}
		case "review":
			if st.Review == nil || st.Verdict != report.VerdictReview {
				t.Errorf("review answer %+v", st)
			}
		}
	}
	if err := wc.SignalWorkflow(ctx, "scan-"+hold, "", "finish", nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{slow, hold, review} {
		ended(id)
	}
}
