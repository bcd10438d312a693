package stack

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

func TestFindMinIOExplicit(t *testing.T) {
	t.Setenv("TOLLGATE_MINIO", "")
	if _, err := FindMinIO(filepath.Join(t.TempDir(), "no-such-minio")); err == nil || !strings.Contains(err.Error(), "no-such-minio") {
		t.Fatalf("missing explicit binary: %v", err)
	}
	t.Setenv("TOLLGATE_MINIO", filepath.Join(t.TempDir(), "from-env"))
	if _, err := FindMinIO(""); err == nil || !strings.Contains(err.Error(), "from-env") {
		t.Fatalf("missing $TOLLGATE_MINIO binary: %v", err)
	}
}

func TestStartMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a MinIO server")
	}
	if _, err := FindMinIO(""); errors.Is(err, ErrNoMinIO) {
		t.Fatalf("this test runs a real MinIO server (skip it with -short): %v", err)
	}
	ctx := context.Background()
	if _, err := StartMinIO(ctx, MinIOOptions{}); err == nil || !strings.Contains(err.Error(), "no data dir") {
		t.Fatalf("start without a data dir: %v", err)
	}

	dir := filepath.Join(t.TempDir(), "data")
	m, err := StartMinIO(ctx, MinIOOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	if m.AccessKey == "" || len(m.SecretKey) < 8 {
		t.Fatalf("credentials %q %q", m.AccessKey, m.SecretKey)
	}
	c, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.MakeBucket(ctx, "kept", minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	wrong, _ := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, "not-the-secret", "")})
	if _, err := wrong.ListBuckets(ctx); err == nil {
		t.Fatal("wrong credentials accepted")
	}

	// A second server on the same port fails, and says why.
	_, err = StartMinIO(ctx, MinIOOptions{DataDir: filepath.Join(t.TempDir(), "other"), Port: m.Port})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("second server on a used port: got %v, want the server's complaint", err)
	}

	// Kill, then a restart on the same data dir and port keeps the bucket.
	m.Kill()
	if conn, err := net.Dial("tcp", m.Endpoint); err == nil {
		conn.Close()
		t.Fatal("the server still listens after Kill")
	}
	m2, err := StartMinIO(ctx, MinIOOptions{DataDir: dir, Port: m.Port, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m2.Stop)
	if ok, err := c.BucketExists(ctx, "kept"); err != nil || !ok {
		t.Fatalf("bucket after restart: %v %v", ok, err)
	}
}

// TestMinIOCountsS3Requests: a server started with PublicMetrics reports
// the S3 requests it served, the load test's MinIO requests per scan.
func TestMinIOCountsS3Requests(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that starts a MinIO server")
	}
	ctx := context.Background()
	m, err := StartMinIO(ctx, MinIOOptions{DataDir: filepath.Join(t.TempDir(), "data"), PublicMetrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	before, err := m.S3Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(m.AccessKey, m.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	for range n {
		if _, err := c.ListBuckets(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after, err := m.S3Requests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after-before < n {
		t.Errorf("S3 requests went from %g to %g over %d ListBuckets", before, after, n)
	}
	t.Logf("S3 requests: %g before, %g after %d ListBuckets", before, after, n)

	// Without PublicMetrics the metrics need a token: an error, not a zero.
	private, err := StartMinIO(ctx, MinIOOptions{DataDir: filepath.Join(t.TempDir(), "private")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(private.Stop)
	if v, err := private.S3Requests(ctx); err == nil {
		t.Errorf("metrics of a server without PublicMetrics read as %g", v)
	}
}
