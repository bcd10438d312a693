package storage_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tollgate/tollgate/stack"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/workers"
)

// The workers fetch input archives from the MinIO store.
var _ workers.ArchiveSource = (*storage.MinIO)(nil)

// shared is one real MinIO server for the package's tests, started by the
// first test that needs it and stopped by TestMain. Each test works in its
// own buckets.
var shared struct {
	once sync.Once
	srv  *stack.MinIO
	dir  string
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Stop()
	}
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func sharedMinIO(t *testing.T) *stack.MinIO {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: skipping a test that needs a real MinIO server")
	}
	shared.once.Do(func() {
		if _, shared.err = stack.FindMinIO(""); shared.err != nil {
			return
		}
		if shared.dir, shared.err = os.MkdirTemp("", "tollgate-minio-*"); shared.err != nil {
			return
		}
		shared.srv, shared.err = stack.StartMinIO(context.Background(), stack.MinIOOptions{DataDir: filepath.Join(shared.dir, "data")})
	})
	if errors.Is(shared.err, stack.ErrNoMinIO) {
		t.Fatalf("these tests run against a real MinIO server (skip them with -short): %v", shared.err)
	}
	if shared.err != nil {
		t.Fatalf("start minio: %v", shared.err)
	}
	return shared.srv
}

type testBundle struct {
	store *storage.MinIO
	cfg   storage.MinIOConfig
	// raw is a plain client with the root credentials, to act outside tollgate.
	raw *minio.Client
}

var bucketSeq atomic.Int64

// uniqueBucket returns a fresh bucket name that says which test made it.
func uniqueBucket(t *testing.T, role string) string {
	name := strings.ToLower(strings.TrimPrefix(t.Name(), "Test"))
	name = regexp.MustCompile(`[^a-z0-9]+`).ReplaceAllString(name, "-")
	if len(name) > 30 {
		name = name[:30]
	}
	return strings.Trim(fmt.Sprintf("%s-%s-%d", role, name, bucketSeq.Add(1)), "-")
}

func config(srv *stack.MinIO, t *testing.T) storage.MinIOConfig {
	return storage.MinIOConfig{
		Endpoint:       srv.Endpoint,
		AccessKey:      srv.AccessKey,
		SecretKey:      srv.SecretKey,
		EvidenceBucket: uniqueBucket(t, "ev"),
		InputsBucket:   uniqueBucket(t, "in"),
	}
}

func rawClient(t *testing.T, srv *stack.MinIO) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// setup opens a store on the shared server, in buckets of its own; change
// modifies the configuration first.
func setup(t *testing.T, change ...func(*storage.MinIOConfig)) *testBundle {
	t.Helper()
	srv := sharedMinIO(t)
	cfg := config(srv, t)
	for _, f := range change {
		f(&cfg)
	}
	store, err := storage.OpenMinIO(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &testBundle{store: store, cfg: store.Config(), raw: rawClient(t, srv)}
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// versionIDs lists every version of key, delete markers included.
func (tb *testBundle) versionIDs(t *testing.T, bucket, key string) []string {
	t.Helper()
	var ids []string
	for info := range tb.raw.ListObjectsIter(context.Background(), bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true, Recursive: true}) {
		if info.Err != nil {
			t.Fatal(info.Err)
		}
		if info.Key == key {
			ids = append(ids, info.VersionID)
		}
	}
	return ids
}

// requireWORM fails unless err is MinIO refusing to touch a locked version.
func requireWORM(t *testing.T, what string, err error) {
	t.Helper()
	var resp minio.ErrorResponse
	if !errors.As(err, &resp) || !strings.Contains(resp.Message, "WORM") {
		t.Fatalf("%s: got %v, want MinIO's WORM protection error", what, err)
	}
}

func TestMinIOPutGet(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	data := []byte(`{"v":1}`)
	obj, err := tb.store.Put(ctx, "scans/a/report.json", "application/json", data)
	if err != nil {
		t.Fatal(err)
	}
	if obj.Bucket != tb.cfg.EvidenceBucket || obj.Key != "scans/a/report.json" || obj.SHA256 != digest(data) ||
		obj.Size != int64(len(data)) || obj.ContentType != "application/json" || obj.VersionID == "" || obj.VersionID == "null" {
		t.Fatalf("put returned %+v", obj)
	}
	got, gobj, err := tb.store.Get(ctx, "scans/a/report.json")
	if err != nil || !bytes.Equal(got, data) || gobj != obj {
		t.Fatalf("get: %v %q %+v, want %+v", err, got, gobj, obj)
	}
	// The digest is in the object's user metadata, and the version is locked
	// by the bucket's default retention.
	info, err := tb.raw.StatObject(ctx, obj.Bucket, obj.Key, minio.StatObjectOptions{VersionID: obj.VersionID})
	if err != nil || info.Metadata.Get("X-Amz-Meta-Sha256") != obj.SHA256 {
		t.Fatalf("stat: %v %v", err, info.Metadata)
	}
	mode, until, err := tb.raw.GetObjectRetention(ctx, obj.Bucket, obj.Key, obj.VersionID)
	if err != nil || mode == nil || *mode != minio.Compliance {
		t.Fatalf("retention: %v %v", err, mode)
	}
	if d := time.Until(*until); d < 364*24*time.Hour || d > 366*24*time.Hour {
		t.Fatalf("retained until %v, want in about 365 days", until)
	}
	// Empty data and an empty content type work too.
	empty, err := tb.store.Put(ctx, "empty", "", nil)
	if err != nil || empty.Size != 0 || empty.ContentType != "application/octet-stream" {
		t.Fatalf("put empty: %v %+v", err, empty)
	}
	if got, _, err := tb.store.Get(ctx, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("get empty: %v %q", err, got)
	}
}

func TestMinIOPutIsIdempotent(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	obj, err := tb.store.Put(ctx, "k", "text/plain", []byte("same"))
	if err != nil {
		t.Fatal(err)
	}
	// The same bytes again: the existing object, no error (a retried task).
	again, err := tb.store.Put(ctx, "k", "text/plain", []byte("same"))
	if err != nil || again != obj {
		t.Fatalf("idempotent put: %v %+v, want %+v", err, again, obj)
	}
	if ids := tb.versionIDs(t, obj.Bucket, "k"); len(ids) != 1 {
		t.Fatalf("versions %v, want one", ids)
	}
}

func TestMinIORefusesOverwrite(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	obj, err := tb.store.Put(ctx, "k", "text/plain", []byte("original"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tb.store.Put(ctx, "k", "text/plain", []byte("changed")); !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("overwrite: got %v, want ErrImmutable", err)
	}
	if ids := tb.versionIDs(t, obj.Bucket, "k"); len(ids) != 1 || ids[0] != obj.VersionID {
		t.Fatalf("versions %v, want only %s", ids, obj.VersionID)
	}
	if data, _, err := tb.store.Get(ctx, "k"); err != nil || string(data) != "original" {
		t.Fatalf("get: %v %q", err, data)
	}
}

// Writers racing on one key: of different bodies exactly one wins, the same
// body succeeds for all, and the key has one version either way.
func TestMinIOConcurrentPuts(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	var won atomic.Int32
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = tb.store.Put(ctx, "different", "", fmt.Appendf(nil, "body %d", i))
			if errs[i] == nil {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil && !errors.Is(err, storage.ErrImmutable) {
			t.Fatalf("racing put: %v", err)
		}
	}
	if won.Load() != 1 {
		t.Fatalf("%d writers of different bodies won, want 1: %v", won.Load(), errs)
	}
	objs := make([]storage.Object, n)
	for i := range n {
		wg.Go(func() { objs[i], errs[i] = tb.store.Put(ctx, "same", "", []byte("one body")) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || objs[i] != objs[0] {
			t.Fatalf("racing put of the same body: %v %+v, want %+v", errs[i], objs[i], objs[0])
		}
	}
	for _, key := range []string{"different", "same"} {
		if ids := tb.versionIDs(t, tb.cfg.EvidenceBucket, key); len(ids) != 1 {
			t.Fatalf("%s: versions %v, want one", key, ids)
		}
	}
}

func TestMinIODeleteRefused(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	if _, err := tb.store.Put(ctx, "k", "", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := tb.store.Delete(ctx, "k"); !errors.Is(err, storage.ErrImmutable) {
		t.Fatalf("delete: got %v, want ErrImmutable", err)
	}
	if data, _, err := tb.store.Get(ctx, "k"); err != nil || string(data) != "x" {
		t.Fatalf("get: %v %q", err, data)
	}
}

// Object Lock is enforced by the server, not by tollgate: with the root
// credentials and a plain S3 client, a locked version can be neither deleted
// (not even with the governance bypass) nor have its retention shortened.
func TestMinIOObjectLockIsReal(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	obj, err := tb.store.Put(ctx, "scans/a/verdict.json", "application/json", []byte(`{"verdict":"block"}`))
	if err != nil {
		t.Fatal(err)
	}
	b, k, v := obj.Bucket, obj.Key, obj.VersionID

	requireWORM(t, "delete the locked version",
		tb.raw.RemoveObject(ctx, b, k, minio.RemoveObjectOptions{VersionID: v}))
	requireWORM(t, "delete the locked version with governance bypass",
		tb.raw.RemoveObject(ctx, b, k, minio.RemoveObjectOptions{VersionID: v, GovernanceBypass: true}))

	compliance, governance := minio.Compliance, minio.Governance
	sooner := time.Now().Add(time.Hour)
	requireWORM(t, "shorten the retention",
		tb.raw.PutObjectRetention(ctx, b, k, minio.PutObjectRetentionOptions{VersionID: v, Mode: &compliance, RetainUntilDate: &sooner}))
	requireWORM(t, "shorten the retention with governance bypass",
		tb.raw.PutObjectRetention(ctx, b, k, minio.PutObjectRetentionOptions{VersionID: v, Mode: &compliance, RetainUntilDate: &sooner, GovernanceBypass: true}))
	later := time.Now().Add(400 * 24 * time.Hour)
	requireWORM(t, "weaken the mode to GOVERNANCE",
		tb.raw.PutObjectRetention(ctx, b, k, minio.PutObjectRetentionOptions{VersionID: v, Mode: &governance, RetainUntilDate: &later, GovernanceBypass: true}))

	// MinIO's force delete (of a prefix, or of a whole bucket) is refused on
	// a bucket with object lock.
	err = tb.raw.RemoveObject(ctx, b, k, minio.RemoveObjectOptions{ForceDelete: true})
	if err == nil || !strings.Contains(err.Error(), "forbidden on Object Locking enabled buckets") {
		t.Fatalf("force delete of the object: got %v, want it forbidden", err)
	}
	err = tb.raw.RemoveBucketWithOptions(ctx, b, minio.RemoveBucketOptions{ForceDelete: true})
	if minio.ToErrorResponse(err).Code != "MethodNotAllowed" {
		t.Fatalf("force delete of the bucket: got %v, want MethodNotAllowed", err)
	}

	// The version is untouched.
	if data, got, err := tb.store.Get(ctx, k); err != nil || got != obj || string(data) != `{"verdict":"block"}` {
		t.Fatalf("get after the attempts: %v %+v %q", err, got, data)
	}
	mode, until, err := tb.raw.GetObjectRetention(ctx, b, k, v)
	if err != nil || *mode != minio.Compliance || time.Until(*until) < 364*24*time.Hour {
		t.Fatalf("retention after the attempts: %v %v %v", err, mode, until)
	}
}

// S3 lets anyone with write access add versions and delete markers to a locked
// bucket; the locked version stays, and the store notices.
func TestMinIOWritesOutsideTollgate(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	obj, err := tb.store.Put(ctx, "forged", "text/plain", []byte("original"))
	if err != nil {
		t.Fatal(err)
	}
	// A second version, with a digest that matches it: Get refuses to choose.
	forged := []byte("forged")
	if _, err := tb.raw.PutObject(ctx, obj.Bucket, "forged", bytes.NewReader(forged), int64(len(forged)),
		minio.PutObjectOptions{UserMetadata: map[string]string{"Sha256": digest(forged)}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tb.store.Get(ctx, "forged"); err == nil || !strings.Contains(err.Error(), "written outside tollgate") {
		t.Fatalf("get of a key with a second version: %v", err)
	}

	// A delete without a version id only adds a delete marker.
	hidden, err := tb.store.Put(ctx, "hidden", "text/plain", []byte("evidence"))
	if err != nil {
		t.Fatal(err)
	}
	if err := tb.raw.RemoveObject(ctx, hidden.Bucket, "hidden", minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("add a delete marker: %v", err)
	}
	if _, _, err := tb.store.Get(ctx, "hidden"); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "delete marker") {
		t.Fatalf("get under a delete marker: %v", err)
	}
	// Put writes with If-None-Match: *, which S3 lets through over a delete
	// marker (the key counts as absent): a new version lands on top, and Get
	// refuses the key from then on. Put sends no HEAD first to find the
	// marker: that would double its requests for a case only a writer
	// outside tollgate can cause.
	if _, err := tb.store.Put(ctx, "hidden", "text/plain", []byte("evidence")); err != nil {
		t.Fatalf("put under a delete marker: %v", err)
	}
	if ids := tb.versionIDs(t, hidden.Bucket, "hidden"); len(ids) != 3 || ids[2] != hidden.VersionID {
		t.Fatalf("versions after a put over a delete marker: %v, want a new one, the marker and %s", ids, hidden.VersionID)
	}
	if _, _, err := tb.store.Get(ctx, "hidden"); err == nil || !strings.Contains(err.Error(), "written outside tollgate") {
		t.Fatalf("get of a key written over a delete marker: %v", err)
	}
	r, err := tb.raw.GetObject(ctx, hidden.Bucket, "hidden", minio.GetObjectOptions{VersionID: hidden.VersionID})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if data, err := io.ReadAll(r); err != nil || string(data) != "evidence" {
		t.Fatalf("locked version under the delete marker: %v %q", err, data)
	}
}

// GOVERNANCE retention, unlike COMPLIANCE, yields to a user allowed to
// bypass it; the mode reaches the server.
func TestMinIOGovernanceMode(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *storage.MinIOConfig) { c.RetentionMode = "GOVERNANCE"; c.RetentionDays = 1 })
	ctx := context.Background()
	obj, err := tb.store.Put(ctx, "k", "", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	requireWORM(t, "delete without bypass", tb.raw.RemoveObject(ctx, obj.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID}))
	if err := tb.raw.RemoveObject(ctx, obj.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID, GovernanceBypass: true}); err != nil {
		t.Fatalf("delete with governance bypass: %v", err)
	}
}

func TestOpenMinIORefusesBucketWithoutObjectLock(t *testing.T) {
	t.Parallel()
	srv := sharedMinIO(t)
	ctx := context.Background()
	cfg := config(srv, t)
	if err := rawClient(t, srv).MakeBucket(ctx, cfg.EvidenceBucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := storage.OpenMinIO(ctx, cfg, nil)
	if !errors.Is(err, storage.ErrNoObjectLock) || !strings.Contains(err.Error(), cfg.EvidenceBucket) {
		t.Fatalf("open on a bucket without object lock: got %v, want ErrNoObjectLock", err)
	}
}

// Opening again on existing buckets works and applies a changed retention
// and expiry.
func TestOpenMinIOExistingBuckets(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	checkRules := func(wantDays, wantExpiry int) {
		t.Helper()
		enabled, mode, validity, unit, err := tb.raw.GetObjectLockConfig(ctx, tb.cfg.EvidenceBucket)
		if err != nil || enabled != "Enabled" || *mode != minio.Compliance || int(*validity) != wantDays || *unit != minio.Days {
			t.Fatalf("object lock config: %v %q %v %v %v", err, enabled, mode, validity, unit)
		}
		lc, err := tb.raw.GetBucketLifecycle(ctx, tb.cfg.InputsBucket)
		if err != nil || len(lc.Rules) != 1 || int(lc.Rules[0].Expiration.Days) != wantExpiry || lc.Rules[0].Status != "Enabled" {
			t.Fatalf("inputs lifecycle: %v %+v", err, lc)
		}
	}
	checkRules(storage.DefaultRetentionDays, storage.DefaultInputsExpiryDays)
	if _, err := storage.OpenMinIO(ctx, tb.cfg, nil); err != nil {
		t.Fatalf("open again: %v", err)
	}
	checkRules(storage.DefaultRetentionDays, storage.DefaultInputsExpiryDays)
	cfg := tb.cfg
	cfg.RetentionDays, cfg.InputsExpiryDays = 400, 7
	if _, err := storage.OpenMinIO(ctx, cfg, nil); err != nil {
		t.Fatalf("open with new rules: %v", err)
	}
	checkRules(400, 7)
}

func TestMinIONotFound(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	if _, _, err := tb.store.Get(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get missing: got %v, want ErrNotFound", err)
	}
	path := filepath.Join(t.TempDir(), "input")
	if err := tb.store.FetchTo(ctx, storage.InputsPrefix+digest(nil), path); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("fetch missing: got %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fetch of a missing input left a file: %v", err)
	}
	for _, k := range []string{"", "/abs", "../up", "a/../../up", `a\b`} {
		if _, err := tb.store.Put(ctx, k, "", []byte("x")); err == nil {
			t.Errorf("key %q accepted", k)
		}
	}
}

// onlyReader hides every method but Read, so PutInput has to spool.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestMinIOInputs(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	archive := make([]byte, 1<<20+17)
	rand.Read(archive)
	for name, r := range map[string]io.Reader{
		"seeker":  bytes.NewReader(archive),
		"spooled": onlyReader{bytes.NewReader(archive)},
	} {
		t.Run(name, func(t *testing.T) {
			size := int64(len(archive))
			if name == "spooled" {
				size = -1 // unknown
			}
			obj, err := tb.store.PutInput(ctx, r, size)
			if err != nil {
				t.Fatal(err)
			}
			if obj.Bucket != tb.cfg.InputsBucket || obj.Key != "inputs/"+digest(archive) || obj.SHA256 != digest(archive) || obj.Size != int64(len(archive)) {
				t.Fatalf("put input returned %+v", obj)
			}
			path := filepath.Join(t.TempDir(), "input.archive")
			if err := tb.store.FetchTo(ctx, obj.Key, path); err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, archive) {
				t.Fatalf("fetched %d bytes, %v", len(got), err)
			}
		})
	}
	if _, err := tb.store.PutInput(ctx, bytes.NewReader(archive), 10); err == nil {
		t.Fatal("put input with a wrong size accepted")
	}
	// An archive whose bytes do not match its key is not handed to a worker.
	wrong := "inputs/" + digest([]byte("something else"))
	if _, err := tb.raw.PutObject(ctx, tb.cfg.InputsBucket, wrong, bytes.NewReader(archive), int64(len(archive)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wrong.archive")
	if err := tb.store.FetchTo(ctx, wrong, path); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Fatalf("fetch of a mismatched archive: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fetch of a mismatched archive left a file: %v", err)
	}
}

// Evidence and its lock survive a restart of the server on the same data dir.
func TestMinIOSurvivesRestart(t *testing.T) {
	t.Parallel()
	sharedMinIO(t) // for the -short skip and the missing-binary message
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	srv, err := stack.StartMinIO(ctx, stack.MinIOOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	cfg := config(srv, t)
	store, err := storage.OpenMinIO(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := store.Put(ctx, "k", "text/plain", []byte("kept"))
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if c, err := net.Dial("tcp", srv.Endpoint); err == nil {
		c.Close()
		t.Fatal("the server still listens after Stop")
	}
	srv2, err := stack.StartMinIO(ctx, stack.MinIOOptions{DataDir: dir, Port: srv.Port, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv2.Stop() })
	// The store connected before the restart works again.
	data, got, err := store.Get(ctx, "k")
	if err != nil || string(data) != "kept" || got != obj {
		t.Fatalf("get after restart: %v %q %+v", err, data, got)
	}
	if _, err := storage.OpenMinIO(ctx, cfg, nil); err != nil {
		t.Fatalf("open after restart: %v", err)
	}
	requireWORM(t, "delete after restart",
		rawClient(t, srv2).RemoveObject(ctx, obj.Bucket, obj.Key, minio.RemoveObjectOptions{VersionID: obj.VersionID, GovernanceBypass: true}))
}

func TestMinIOConfigValidate(t *testing.T) {
	t.Parallel()
	good := storage.MinIOConfig{Endpoint: "127.0.0.1:9000", AccessKey: "a", SecretKey: "s"}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*storage.MinIOConfig)
		want   string
	}{
		{"no endpoint", func(c *storage.MinIOConfig) { c.Endpoint = "" }, "no endpoint"},
		{"scheme", func(c *storage.MinIOConfig) { c.Endpoint = "https://minio:9000" }, "without a scheme"},
		{"no keys", func(c *storage.MinIOConfig) { c.SecretKey = "" }, "secret key are required"},
		{"bad bucket", func(c *storage.MinIOConfig) { c.EvidenceBucket = "Bad_Bucket" }, `evidence bucket "Bad_Bucket"`},
		{"shared bucket", func(c *storage.MinIOConfig) { c.InputsBucket = storage.DefaultEvidenceBucket }, "share bucket"},
		{"mode", func(c *storage.MinIOConfig) { c.RetentionMode = "compliance" }, `retention mode "compliance"`},
		{"retention", func(c *storage.MinIOConfig) { c.RetentionDays = -1 }, "retention days -1"},
		{"expiry", func(c *storage.MinIOConfig) { c.InputsExpiryDays = -5 }, "inputs expiry days -5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			if _, oerr := storage.OpenMinIO(context.Background(), c, nil); oerr == nil {
				t.Fatal("OpenMinIO accepted the config")
			}
		})
	}
	// Every problem is reported at once.
	err := storage.MinIOConfig{RetentionDays: -1}.Validate()
	for _, want := range []string{"no endpoint", "required", "retention days"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("zero config: %v, want %q", err, want)
		}
	}
}

func TestMinIOList(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	for _, k := range []string{"apps/t/a/releases/2/release.json", "apps/t/a/releases/1/release.json", "apps/t/ab/x.json"} {
		if _, err := tb.store.Put(ctx, k, "application/json", []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := tb.store.List(ctx, "apps/t/a/")
	if want := []string{"apps/t/a/releases/1/release.json", "apps/t/a/releases/2/release.json"}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("list: %v %q, want %q", err, got, want)
	}
}

// requestCounter counts the requests a store sends, by kind.
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *requestCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	kind := r.Method
	if q := r.URL.Query(); r.Method == http.MethodGet && (q.Has("list-type") || q.Has("versions")) {
		kind = "LIST"
	}
	c.mu.Lock()
	c.counts[kind]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *requestCounter) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.counts
	c.counts = map[string]int{}
	return got
}

// TestMinIORequestsPerScan counts the requests one passing scan sends to
// MinIO, made as the fleet makes them: the API stores the archive, the fast
// and the deep worker each fetch it, the deep worker stores two SBOMs,
// Finalize stores the SARIF, the verdict and the report, and LoadExceptions
// lists the exceptions. Each write is one conditional PUT and each fetch
// one GET: no HEAD. A retried write of the same bytes costs the refused PUT
// and one HEAD.
func TestMinIORequestsPerScan(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	counter := &requestCounter{counts: map[string]int{}}
	if err := storage.SetTransport(tb.store, counter); err != nil {
		t.Fatal(err)
	}
	archive := make([]byte, 64<<10)
	rand.Read(archive)
	in, err := tb.store.PutInput(ctx, bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	for _, pool := range []string{"fast", "deep"} {
		if err := tb.store.FetchTo(ctx, in.Key, filepath.Join(t.TempDir(), pool)); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"sbom.cdx.json", "sbom.spdx.json", "report.sarif", "verdict.json", "report.json"} {
		if _, err := tb.store.Put(ctx, "scans/t/s1/"+name, "application/json", []byte(name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tb.store.List(ctx, "exceptions/t/"); err != nil {
		t.Fatal(err)
	}
	got := counter.take()
	t.Logf("requests per passing scan: %v", got)
	if want := map[string]int{"PUT": 6, "GET": 2, "LIST": 1}; !maps.Equal(got, want) {
		t.Errorf("requests per passing scan %v, want %v", got, want)
	}
	if _, err := tb.store.Put(ctx, "scans/t/s1/report.json", "application/json", []byte("report.json")); err != nil {
		t.Fatal(err)
	}
	if got, want := counter.take(), map[string]int{"PUT": 1, "HEAD": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of a retried write %v, want %v", got, want)
	}
}
