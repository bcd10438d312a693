package stack

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// MinIOVersion is the MinIO server the project pins and scripts/tools.sh
// installs. MinIO is AGPL-3.0: tollgate only runs it as a separate process.
const MinIOVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

// ErrNoMinIO is returned when no MinIO server binary can be found.
var ErrNoMinIO = errors.New("minio server not found: run `scripts/tools.sh minio`, or set TOLLGATE_MINIO")

// MinIOOptions configure the MinIO server child process.
type MinIOOptions struct {
	// Binary is the minio server (default: $TOLLGATE_MINIO, then `minio` on
	// PATH, then the project's tool cache).
	Binary string
	// DataDir holds the objects (required); a restart on the same directory
	// keeps them.
	DataDir string
	// Drives, when more than one, erasure-codes the objects over that many
	// drives, the folders DataDir/d1 ... DataDir/dN (see MinIO.Drive): with
	// four, MinIO's default parity EC:2 keeps reads and writes going with
	// one drive lost.
	Drives int
	// Port for the S3 API on 127.0.0.1 (default: a free port).
	Port int
	// ConsolePort for the web console on 127.0.0.1 (default: a free port).
	ConsolePort int
	// AccessKey and SecretKey are the root credentials (default: random ones,
	// readable from the returned MinIO).
	AccessKey string
	SecretKey string
	// PublicMetrics serves the server's Prometheus metrics without a token
	// (MINIO_PROMETHEUS_AUTH_TYPE=public), for S3Requests: for the load
	// test, never a deployment.
	PublicMetrics bool
	// StartTimeout bounds the wait for the server to be healthy (default 30s).
	StartTimeout time.Duration
	Logger       *slog.Logger
}

// MinIO is a running MinIO server.
type MinIO struct {
	// Endpoint is the S3 API's host:port.
	Endpoint string
	// Port is the S3 API's port, to start the server again on the same one.
	Port      int
	AccessKey string
	SecretKey string
	drives    []string
	child
}

// FindMinIO returns the path of the minio server to run: explicit, else
// $TOLLGATE_MINIO, else `minio` on PATH, else the tool cache.
func FindMinIO(explicit string) (string, error) {
	return findTool(explicit, "TOLLGATE_MINIO", "minio", MinIOVersion, ErrNoMinIO)
}

// StartMinIO starts `minio server` on loopback with one data directory and
// waits until it is ready and accepts the root credentials.
func StartMinIO(ctx context.Context, opts MinIOOptions) (*MinIO, error) {
	bin, err := FindMinIO(opts.Binary)
	if err != nil {
		return nil, err
	}
	if opts.DataDir == "" {
		return nil, fmt.Errorf("start minio: no data dir")
	}
	logger := cmp.Or(opts.Logger, slog.New(slog.DiscardHandler))
	port, consolePort := opts.Port, opts.ConsolePort
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, fmt.Errorf("start minio: %w", err)
		}
	}
	if consolePort == 0 {
		if consolePort, err = FreePort(); err != nil {
			return nil, fmt.Errorf("start minio: %w", err)
		}
	}
	m := &MinIO{
		Endpoint:  net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Port:      port,
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
	}
	if m.AccessKey == "" {
		m.AccessKey = "tollgate-" + randomHex(6)
	}
	if m.SecretKey == "" {
		m.SecretKey = randomHex(20)
	}
	data, err := m.makeDrives(opts.DataDir, opts.Drives)
	if err != nil {
		return nil, err
	}

	cmd := exec.Command(bin, "server", data,
		"--address", m.Endpoint,
		"--console-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(consolePort)),
		"--json", "--quiet")
	cmd.Env = minioEnv(m.AccessKey, m.SecretKey)
	if opts.PublicMetrics {
		cmd.Env = append(cmd.Env, "MINIO_PROMETHEUS_AUTH_TYPE=public")
	}
	if len(m.drives) > 0 {
		cmd.Env = append(cmd.Env, minioDrivesEnv...)
	}
	var tail lastLines
	if err := m.startLogged(cmd, logger, "minio", &tail); err != nil {
		return nil, fmt.Errorf("start minio %q: %w", bin, err)
	}

	timeout := cmp.Or(opts.StartTimeout, 30*time.Second)
	if err := m.waitHealthy(ctx, timeout); err != nil {
		m.Kill()
		return nil, fmt.Errorf("start minio on %s with data dir %q: %w%s", m.Endpoint, opts.DataDir, err, tail.String())
	}
	logger.DebugContext(ctx, "minio ready", "endpoint", m.Endpoint, "data_dir", opts.DataDir, "pid", cmd.Process.Pid)
	return m, nil
}

// S3Requests is how many S3 requests the server has served since it
// started: the sum of minio_api_requests_total over every API. It reads the
// v3 endpoint, which counts now; the v2 cluster endpoint
// (minio_s3_requests_total) serves a copy up to 10 s old. The server must
// have been started with PublicMetrics.
func (m *MinIO) S3Requests(ctx context.Context) (float64, error) {
	url := "http://" + m.Endpoint + "/minio/metrics/v3/api/requests"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, fmt.Errorf("read minio metrics %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read minio metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("read minio metrics %s: %s (started without PublicMetrics?)", url, resp.Status)
	}
	var total float64
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 64<<20))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// minio_api_requests_total{name="PutObject",server="...",type="s3"} 12
		line := sc.Text()
		name, rest, _ := strings.Cut(line, "{")
		if name != "minio_api_requests_total" {
			continue
		}
		i := strings.LastIndexByte(rest, ' ')
		v, err := strconv.ParseFloat(rest[i+1:], 64)
		if i < 0 || err != nil {
			return 0, fmt.Errorf("read minio metrics %s: bad sample %q", url, line)
		}
		total += v
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read minio metrics %s: %w", url, err)
	}
	return total, nil
}

// minioEnv is this process's environment without MINIO_ settings, which
// would otherwise reconfigure the server, plus the root credentials.
func minioEnv(user, password string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+password,
		"MINIO_UPDATE=off",
	)
}

// waitHealthy waits for /minio/health/ready and then for a ListBuckets with
// the root credentials: the IAM subsystem can come up after the health check.
func (m *MinIO) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	client, err := minio.New(m.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	url := "http://" + m.Endpoint + "/minio/health/ready"
	delay := 20 * time.Millisecond
	for {
		err = probeReady(ctx, hc, url)
		if err == nil {
			_, err = client.ListBuckets(ctx)
			if err == nil {
				return nil
			}
		}
		select {
		case <-m.exited:
			return m.exitErr()
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 500*time.Millisecond)
	}
}

func probeReady(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health check: %s", resp.Status)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}
