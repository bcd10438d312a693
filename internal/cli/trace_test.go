package cli

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/workers/scanners"
)

// One scan is one trace: the API request, the workflow and its activities
// in the orchestrator, and, across NATS, the worker's task, its scanners and
// its evidence writes.
func TestScanIsOneTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	exp := tracetest.NewInMemoryExporter()
	tracing := &telemetry.Tracing{Provider: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))}
	dir := t.TempDir()
	st, err := embedded.Start(context.Background(), embedded.Config{EvidenceDir: filepath.Join(dir, "evidence"), Version: "test", Tracing: tracing,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	redactor, err := scanners.NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Tokens: []api.Token{{Name: "ci", SHA256: api.HashToken("t"), Tenant: "a", Roles: []string{api.RoleCI}}}},
		api.Deps{Temporal: st.Client(), Inputs: st.Inputs(), Evidence: st.Evidence(), Redactor: redactor, TracerProvider: tracing.Provider})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)

	resp, body := post(t, hs.URL, "t", `{"app":"web"}`, packed(t, "clean-static"), nil)
	var sub api.ScanStatus
	if resp.StatusCode != 202 || json.Unmarshal(body, &sub) != nil {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		_, body := get(t, hs.URL+"/v1/scans/"+sub.ScanID+"?wait=30s", "t")
		var s api.ScanStatus
		json.Unmarshal(body, &s)
		if s.Status == "completed" {
			break
		}
		if s.Status == "failed" || time.Now().After(deadline) {
			t.Fatalf("scan: %s", body)
		}
	}

	// The spans of the submission's trace.
	spans := exp.GetSpans()
	var submit sdktrace.ReadOnlySpan
	for _, s := range spans.Snapshots() {
		if s.Name() == "POST /v1/scans" {
			submit = s
		}
	}
	if submit == nil {
		t.Fatalf("no span of the API's POST /v1/scans among %d spans", len(spans))
	}
	var names []string
	for _, s := range spans.Snapshots() {
		if s.SpanContext().TraceID() == submit.SpanContext().TraceID() {
			names = append(names, s.InstrumentationScope().Name+": "+s.Name())
		}
	}
	slices.Sort(names)
	t.Logf("trace %s: %d spans\n%s", submit.SpanContext().TraceID(), len(names), strings.Join(names, "\n"))
	for _, want := range []string{
		"otelhttp: POST /v1/scans", "StartWorkflow:ScanWorkflow", "RunWorkflow:ScanWorkflow", "RunActivity:Dispatch", "RunActivity:Finalize",
		"tollgate/worker: task secrets", "tollgate/worker: task deep", "tollgate/scanners: gitleaks", "tollgate/scanners: syft",
		"tollgate/scanners: trivy", "tollgate/worker: evidence put sbom.cdx.json",
	} {
		if !slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, want) || strings.Contains(n, want) }) {
			t.Errorf("the scan's trace has no %q span", want)
		}
	}
}
