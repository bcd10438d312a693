package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/embedded"
	"github.com/tollgate/tollgate/telemetry"
	"github.com/tollgate/tollgate/workers/scanners"
)

// receiver is an in-process OTLP/gRPC trace receiver: the spans the
// exporter really sent over the wire.
type receiver struct {
	coltrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

type span struct{ scope, name, traceID string }

func (r *receiver) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				r.spans = append(r.spans, span{ss.GetScope().GetName(), s.GetName(), hex.EncodeToString(s.GetTraceId())})
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func startReceiver(t *testing.T) (*receiver, string) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{}
	gs := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(gs, r)
	go gs.Serve(l)
	t.Cleanup(gs.Stop)
	return r, l.Addr().String()
}

// One scan is one trace: the API request, the workflow and its activities
// in the orchestrator, and, across NATS, the worker's task, its scanners and
// its evidence writes. The spans go out through the OTLP exporter the fleet
// uses, to an in-process receiver.
func TestScanIsOneTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	rcv, addr := startReceiver(t)
	tracing, err := telemetry.NewOTLPTracing(context.Background(), addr, "tollgate-test")
	if err != nil {
		t.Fatal(err)
	}
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

	// Flush: the batcher sends what it holds to the receiver.
	if err := tracing.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	rcv.mu.Lock()
	spans := slices.Clone(rcv.spans)
	rcv.mu.Unlock()
	i := slices.IndexFunc(spans, func(s span) bool { return s.name == "POST /v1/scans" })
	if i < 0 {
		t.Fatalf("no span of the API's POST /v1/scans among %d spans", len(spans))
	}
	trace := spans[i].traceID
	var names []string
	for _, s := range spans {
		if s.traceID == trace {
			names = append(names, s.scope+": "+s.name)
		}
	}
	slices.Sort(names)
	t.Logf("trace %s: %d spans\n%s", trace, len(names), strings.Join(names, "\n"))
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
