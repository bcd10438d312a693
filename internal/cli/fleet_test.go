package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/stack"
)

// TestFleetCommands runs the fleet's processes — serve, orchestrator, one
// worker per pool — from the command line, configured only through the
// environment, against a real nats-server, Temporal dev server and MinIO, and
// submits an example through them. The report matches the scan's, and the
// evidence is in MinIO under Object Lock.
func TestFleetCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	ns, err := stack.StartNATS(ctx, stack.NATSOptions{StoreDir: filepath.Join(dir, "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tdev.Stop()
	mio, err := stack.StartMinIO(ctx, stack.MinIOOptions{DataDir: filepath.Join(dir, "minio")})
	if err != nil {
		t.Fatal(err)
	}
	defer mio.Stop()
	db := filepath.Join(dir, "db")
	if code, _, stderr := run(t, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db); code != 0 {
		t.Fatalf("db import: %s", stderr)
	}
	key := filepath.Join(dir, "signing.pem")
	if _, err := attest.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens.yaml")
	os.WriteFile(tokens, []byte(fmt.Sprintf("- name: ci\n  tenant: acme\n  roles: [ci]\n  sha256: %s\n", api.HashToken("s3cret"))), 0o600)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	listen := l.Addr().String()
	l.Close()
	for k, v := range map[string]string{
		"TOLLGATE_NATS_URL": ns.ClientURL(), "TOLLGATE_TEMPORAL_ADDRESS": tdev.Addr,
		"TOLLGATE_MINIO_ENDPOINT": mio.Endpoint, "TOLLGATE_MINIO_ACCESS_KEY": mio.AccessKey, "TOLLGATE_MINIO_SECRET_KEY": mio.SecretKey,
		"TOLLGATE_EVIDENCE_BUCKET": "fleet-evidence", "TOLLGATE_INPUTS_BUCKET": "fleet-inputs", "TOLLGATE_RETENTION_DAYS": "1",
		"TOLLGATE_DB_DIR": db, "TOLLGATE_LISTEN": listen, "TOLLGATE_TOKENS_FILE": tokens, "TOLLGATE_WORKER_CONCURRENCY": "2", "TOLLGATE_SCAN_FULL": "true", "TOLLGATE_SIGNING_KEY": key,
		// Each process serves its metrics on a port of its own choosing.
		"TOLLGATE_METRICS_LISTEN":         "127.0.0.1:0",
		"TOLLGATE_SECRET_FINGERPRINT_KEY": "tollgate-fleet-test-fingerprint-key-32b",
	} {
		t.Setenv(k, v)
	}

	var wg sync.WaitGroup
	procs := map[string][]string{
		"serve": {"serve"}, "orchestrator": {"orchestrator"},
		"worker-fast": {"worker", "--pool", "fast"}, "worker-deep": {"worker", "--pool", "deep"},
	}
	for name, args := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out, errb syncBuffer
			if code := Main(ctx, args, &out, &errb); code != 0 && ctx.Err() == nil {
				t.Errorf("%s exited %d: %s", name, code, errb.String())
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()
	waitReady(t, "http://"+listen+"/readyz")

	out := filepath.Join(dir, "report.json")
	code, _, stderr := run(t, "submit", "--server", "http://"+listen, "--token", "s3cret", "--app", "node-todo", "--wait",
		"--format", "json", "--output", out, filepath.Join("..", "..", "examples", "node-todo"))
	if code != ExitBlocked {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	var r report.Report
	raw, _ := os.ReadFile(out)
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	if r.Verdict != report.VerdictBlock || len(r.Secrets) != 1 || len(r.Vulnerabilities) != 12 || len(r.Packages) != 81 {
		t.Fatalf("report: %s secrets %d vulns %d packages %d", r.Verdict, len(r.Secrets), len(r.Vulnerabilities), len(r.Packages))
	}
	mc, err := minio.New(mio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(mio.AccessKey, mio.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	// The signed attestation verifies against the locked bucket.
	pub := key + attest.PublicKeySuffix
	if code, out, stderr := run(t, "verify", r.ScanID, "--key", pub); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	// A copy in a bucket without Object Lock verifies too, until someone
	// rewrites an object there.
	if err := mc.MakeBucket(ctx, "mirror", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	prefix := "scans/" + r.ScanID + "/"
	for obj := range mc.ListObjects(ctx, "fleet-evidence", minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: "mirror", Object: obj.Key}, minio.CopySrcOptions{Bucket: "fleet-evidence", Object: obj.Key}); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("TOLLGATE_EVIDENCE_BUCKET", "mirror")
	if code, out, stderr := run(t, "verify", r.ScanID, "--key", pub); code != 0 {
		t.Fatalf("verify of the copy: exit %d\n%s%s", code, out, stderr)
	}
	tampered := []byte(`{"verdict":"pass"}`)
	sum := sha256.Sum256(tampered)
	if _, err := mc.PutObject(ctx, "mirror", prefix+"report.json", bytes.NewReader(tampered), int64(len(tampered)),
		minio.PutObjectOptions{UserMetadata: map[string]string{"Sha256": hex.EncodeToString(sum[:])}}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := run(t, "verify", r.ScanID, "--key", pub); code != ExitUnverified || !strings.Contains(out, "report.json") {
		t.Fatalf("verify after tampering: exit %d, want %d naming report.json\n%s", code, ExitUnverified, out)
	}

	for _, e := range r.Evidence {
		if e.Bucket != "fleet-evidence" || e.VersionID == "" {
			t.Fatalf("evidence %s in bucket %q version %q", e.Name, e.Bucket, e.VersionID)
		}
		mode, until, err := mc.GetObjectRetention(ctx, e.Bucket, e.Key, e.VersionID)
		if err != nil || mode == nil || *mode != minio.Compliance || until == nil || !until.After(time.Now()) {
			t.Fatalf("evidence %s is not locked: %v %v %v", e.Name, mode, until, err)
		}
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready: %v", url, err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the goroutines that write logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return string(b.buf) }

// TestDevUsesMinIOWhenConfigured: `tollgate dev` runs the whole stack in one
// process and keeps evidence in MinIO when TOLLGATE_MINIO_* is set.
func TestDevUsesMinIOWhenConfigured(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	mio, err := stack.StartMinIO(ctx, stack.MinIOOptions{DataDir: filepath.Join(dir, "minio")})
	if err != nil {
		t.Fatal(err)
	}
	defer mio.Stop()
	for k, v := range map[string]string{"TOLLGATE_MINIO_ENDPOINT": mio.Endpoint, "TOLLGATE_MINIO_ACCESS_KEY": mio.AccessKey,
		"TOLLGATE_MINIO_SECRET_KEY": mio.SecretKey, "TOLLGATE_RETENTION_DAYS": "1"} {
		t.Setenv(k, v)
	}
	var addrs []string
	for range 2 {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	listen, metricsListen := addrs[0], addrs[1]
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		var errb syncBuffer
		done <- Main(ctx, []string{"dev", "--listen", listen, "--metrics-listen", metricsListen, "--token", "dev-token", "--full", "--db", filepath.Join(dir, "no-db"), "--state", filepath.Join(dir, "state")}, &out, &errb)
	}()
	waitReady(t, "http://"+listen+"/readyz")
	report := filepath.Join(dir, "report.json")
	code, _, stderr := run(t, "submit", "--server", "http://"+listen, "--token", "dev-token", "--app", "clean-static", "--wait",
		"--format", "json", "--output", report, filepath.Join("..", "..", "examples", "clean-static"))
	if code != ExitPass {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	raw, _ := os.ReadFile(report)
	if !strings.Contains(string(raw), `"bucket": "tollgate-evidence"`) {
		t.Fatalf("evidence is not in MinIO:\n%s", raw)
	}
	if !strings.Contains(out.String(), "minio://"+mio.Endpoint) {
		t.Errorf("dev did not say it uses MinIO: %s", out.String())
	}
	// The metrics name tenants: they are on their own listener, not the API's.
	if resp, body := get(t, "http://"+listen+"/metrics", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("the API listener serves /metrics: %d %.200s", resp.StatusCode, body)
	}
	if resp, body := get(t, "http://"+metricsListen+"/metrics", ""); resp.StatusCode != http.StatusOK ||
		!strings.Contains(string(body), `tollgate_scans_submitted_total{tenant="dev"} 1`) {
		t.Errorf("the metrics listener: %d, no tollgate_scans_submitted_total for dev", resp.StatusCode)
	}
	// tollgate scan finds the running dev by its link in the state folder
	// and submits to it, starting no stack of its own.
	t.Setenv("TOLLGATE_DEV_STATE_DIR", filepath.Join(dir, "state"))
	scanned := filepath.Join(dir, "scan.json")
	code, _, stderr = run(t, "scan", "--format", "json", "--output", scanned, "--app", "clean-static-local", filepath.Join("..", "..", "examples", "clean-static"))
	if code != ExitPass || !strings.Contains(stderr, "on the tollgate dev at http://"+listen) || strings.Contains(stderr, "embedded stack up") {
		t.Fatalf("scan with a dev running: exit %d, stderr:\n%s", code, stderr)
	}
	if raw, _ := os.ReadFile(scanned); !strings.Contains(string(raw), `"app": "clean-static-local"`) {
		t.Fatalf("scan on the dev wrote no report:\n%.400s", raw)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("dev exited %d", code)
	}
	// A dev that stopped leaves no link behind for scan to find.
	if _, err := os.Stat(filepath.Join(dir, "state", devLinkFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dev link after dev stopped: %v", err)
	}
}
