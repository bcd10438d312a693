package chaos

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/apiclient"
	"github.com/tollgate/tollgate/internal/syncbuf"
	"github.com/tollgate/tollgate/internal/testbin"
	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage/archive"
)

const scans = 50

type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncbuf.Buffer
	done chan struct{}
}

// TestFleetSurvivesChaos submits 50 scans to the fleet, SIGKILLs a deep
// worker, restarts NATS, SIGTERMs a fast worker, pauses MinIO for a few
// seconds, and SIGKILLs and restarts the orchestrator and the API during the
// run. Every scan completes exactly
// once, and its evidence is present and locked.
func TestFleetSurvivesChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts a fleet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "tollgate")
	if err := testbin.Build(ctx, bin); err != nil {
		t.Fatal(err)
	}

	natsPort := freePort(t)
	ns := startNATS(t, dir, natsPort)
	tdev, err := stack.StartTemporalDev(ctx, stack.TemporalDevOptions{DBFile: filepath.Join(dir, "temporal.db")})
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
	if out, err := exec.Command(bin, "db", "import", "--osv", filepath.Join("..", "..", "testdata", "osv"), "--db", db).CombinedOutput(); err != nil {
		t.Fatalf("db import: %v %s", err, out)
	}
	config := filepath.Join(dir, "tollgate.yaml")
	os.WriteFile(config, []byte("api:\n  rate_per_second: 1000\n  burst: 1000\n"), 0o600)
	tokens := filepath.Join(dir, "tokens.yaml")
	os.WriteFile(tokens, []byte(fmt.Sprintf("- name: ci\n  tenant: acme\n  roles: [ci]\n  sha256: %s\n", api.HashToken("s3cret"))), 0o600)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := append(os.Environ(),
		"TOLLGATE_NATS_URL=nats://127.0.0.1:"+fmt.Sprint(natsPort), "TOLLGATE_TEMPORAL_ADDRESS="+tdev.Addr,
		"TOLLGATE_MINIO_ENDPOINT="+mio.Endpoint, "TOLLGATE_MINIO_ACCESS_KEY="+mio.AccessKey, "TOLLGATE_MINIO_SECRET_KEY="+mio.SecretKey,
		"TOLLGATE_RETENTION_DAYS=1", "TOLLGATE_DB_DIR="+db, "TOLLGATE_LISTEN="+listen, "TOLLGATE_TOKENS_FILE="+tokens,
		"TOLLGATE_WORKER_CONCURRENCY=2", "TOLLGATE_SCAN_FULL=true", "TOLLGATE_LOG_LEVEL=info", "TOLLGATE_CONFIG="+config,
		"TOLLGATE_METRICS_LISTEN=127.0.0.1:0", // not the API's default 9464, which another run may hold
		"TOLLGATE_SECRET_FINGERPRINT_KEY=tollgate-chaos-test-fingerprint-key-32b",
	)
	start := func(name string, args ...string) *proc {
		p := &proc{name: name, cmd: exec.Command(bin, args...), out: &syncbuf.Buffer{}, done: make(chan struct{})}
		p.cmd.Env = env
		w := p.out
		p.cmd.Stdout, p.cmd.Stderr = w, w
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("--- %s output:\n%s", name, w.String())
			}
		})
		return p
	}
	apiProc := start("api", "serve")
	orch := start("orchestrator", "orchestrator")
	fastA := start("fast-a", "worker", "--pool", "fast")
	start("fast-b", "worker", "--pool", "fast")
	deepA := start("deep-a", "worker", "--pool", "deep")
	start("deep-b", "worker", "--pool", "deep")
	waitReady(ctx, t, "http://"+listen+"/readyz", apiProc)

	var src bytes.Buffer
	if err := archive.Pack(ctx, filepath.Join("..", "..", "examples", "node-todo"), &src); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, scans)
	var wg sync.WaitGroup
	for i := range scans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = submit(ctx, t, "http://"+listen, fmt.Sprintf("app-%02d", i), src.Bytes())
		}()
		if i == scans/3 {
			// Chaos, while scans are queued and running.
			deepA.cmd.Process.Signal(syscall.SIGKILL)
			ns.Shutdown()
			ns.WaitForShutdown()
			ns = startNATS(t, dir, natsPort)
			fastA.cmd.Process.Signal(syscall.SIGTERM)
		}
		if i == scans/2 {
			// MinIO hangs for a few seconds: evidence writes and input
			// fetches wait and are retried.
			if err := mio.Pause(); err != nil {
				t.Fatal(err)
			}
			time.AfterFunc(4*time.Second, func() { mio.Resume() })
		}
		if i == 2*scans/3 {
			// Restart the orchestrator and the API the hard way.
			orch.cmd.Process.Signal(syscall.SIGKILL)
			apiProc.cmd.Process.Signal(syscall.SIGKILL)
			<-orch.done
			<-apiProc.done
			orch = start("orchestrator-2", "orchestrator")
			apiProc = start("api-2", "serve")
			waitReady(ctx, t, "http://"+listen+"/readyz", apiProc)
		}
	}
	wg.Wait()
	select {
	case <-fastA.done:
		if code := fastA.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("SIGTERM'd worker exited %d, want 0 after draining", code)
		}
	case <-ctx.Done():
		t.Error("SIGTERM'd worker did not stop")
	}

	mc, err := minio.New(mio.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(mio.AccessKey, mio.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, id := range ids {
		if id == "" || seen[id] {
			t.Fatalf("scan %d: id %q missing or repeated", i, id)
		}
		seen[id] = true
		st := waitDone(ctx, t, "http://"+listen, id)
		if st.Status != "completed" || st.Verdict != "block" {
			t.Fatalf("scan %d (%s): %+v", i, id, st)
		}
		// Exactly once: one version of each object, and it is locked.
		for _, name := range []string{"report.json", "verdict.json", "sbom.cdx.json", "report.sarif.json"} {
			key := "scans/" + id + "/" + name
			versions := 0
			for obj := range mc.ListObjects(ctx, "tollgate-evidence", minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
				if obj.Err != nil {
					t.Fatal(obj.Err)
				}
				if obj.Key != key {
					continue
				}
				versions++
				mode, until, err := mc.GetObjectRetention(ctx, "tollgate-evidence", key, obj.VersionID)
				if err != nil || mode == nil || *mode != minio.Compliance || !until.After(time.Now()) {
					t.Fatalf("%s not locked: %v %v", key, mode, err)
				}
			}
			if versions != 1 {
				t.Fatalf("%s has %d versions, want exactly 1", key, versions)
			}
		}
	}
}

func startNATS(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	ns, err := stack.StartNATS(context.Background(), stack.NATSOptions{StoreDir: filepath.Join(dir, "js"), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

func client(t *testing.T, base string) *apiclient.Client {
	c, err := apiclient.New(base, "s3cret", http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func submit(ctx context.Context, t *testing.T, base, app string, src []byte) string {
	// A retried submit is the same scan: the app is the Idempotency-Key.
	sub := apiclient.Submission{Metadata: api.Metadata{App: app}, Archive: src, IdempotencyKey: app}
	for attempt := 0; ; attempt++ {
		st, err := client(t, base).Submit(ctx, sub)
		if err == nil {
			return st.ScanID
		}
		if attempt == 20 || ctx.Err() != nil {
			t.Errorf("submit %s: %v", app, err)
			return ""
		}
		select { // the API may be mid-reconnect to NATS: back off and resubmit
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func waitDone(ctx context.Context, t *testing.T, base, id string) api.ScanStatus {
	for {
		st, err := client(t, base).Status(ctx, id, 30*time.Second)
		if err != nil {
			t.Fatalf("status of %s: %v", id, err)
		}
		if st.Status != "running" {
			return st
		}
		if ctx.Err() != nil {
			t.Fatalf("scan %s still running", id)
		}
	}
}

// waitReady waits for the API's readiness, and fails at once if the API
// process exits instead.
func waitReady(ctx context.Context, t *testing.T, url string, api *proc) {
	t.Helper()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never ready", url)
		case <-api.done:
			t.Fatalf("the API process exited before it was ready: %v", api.cmd.ProcessState)
		case <-tick.C:
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := stack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
