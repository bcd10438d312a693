package storage

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/lifecycle"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// Defaults of MinIOConfig.
const (
	DefaultRegion           = "us-east-1"
	DefaultEvidenceBucket   = "tollgate-evidence"
	DefaultInputsBucket     = "tollgate-inputs"
	DefaultRetentionMode    = "COMPLIANCE"
	DefaultRetentionDays    = 365
	DefaultInputsExpiryDays = 30
)

// InputsPrefix is the key prefix of input archives: an archive is stored
// under InputsPrefix + its sha256.
const InputsPrefix = "inputs/"

// inputsRuleID names the lifecycle rule OpenMinIO keeps on the inputs bucket.
const inputsRuleID = "tollgate-inputs-expiry"

// sha256Meta is the user metadata holding an object's sha256, sent and
// returned as the header X-Amz-Meta-Sha256.
const (
	sha256Meta   = "Sha256"
	sha256Header = "X-Amz-Meta-Sha256"
)

// ErrNoObjectLock is returned by OpenMinIO when the evidence bucket exists
// without S3 Object Lock: tollgate keeps evidence only where the server
// itself refuses to delete or overwrite it.
var ErrNoObjectLock = errors.New("bucket has no object lock")

// errHidden is returned for a key whose newest version is a delete marker:
// someone deleted it without a version id. The locked versions remain.
var errHidden = fmt.Errorf("%s: %w", hiddenMsg, ErrNotFound)

const hiddenMsg = "hidden by a delete marker, its locked versions remain"

// MinIOConfig configures the MinIO (S3) evidence and inputs store. Zero
// fields take the documented defaults.
type MinIOConfig struct {
	// Endpoint is the server's host:port (required), without a scheme.
	Endpoint string
	// AccessKey and SecretKey authenticate to the server (required).
	AccessKey string
	SecretKey string
	// UseTLS connects with https.
	UseTLS bool
	// Region of the buckets (default "us-east-1", MinIO's default).
	Region string
	// EvidenceBucket keeps the write-once evidence (default "tollgate-evidence").
	// OpenMinIO creates it with Object Lock, or refuses an existing bucket
	// without it.
	EvidenceBucket string
	// InputsBucket keeps the source archives submitted for scanning (default
	// "tollgate-inputs"). It must differ from EvidenceBucket.
	InputsBucket string
	// RetentionMode is the evidence bucket's default retention:
	// "COMPLIANCE" (default), which nobody can shorten or bypass, or
	// "GOVERNANCE", which a user with s3:BypassGovernanceRetention can.
	RetentionMode string
	// RetentionDays is how long each evidence version is locked (default 365).
	RetentionDays int
	// InputsExpiryDays is how long an input archive is kept after its last
	// upload (default 30).
	InputsExpiryDays int
}

func (c MinIOConfig) withDefaults() MinIOConfig {
	c.Region = cmp.Or(c.Region, DefaultRegion)
	c.EvidenceBucket = cmp.Or(c.EvidenceBucket, DefaultEvidenceBucket)
	c.InputsBucket = cmp.Or(c.InputsBucket, DefaultInputsBucket)
	c.RetentionMode = cmp.Or(c.RetentionMode, DefaultRetentionMode)
	c.RetentionDays = cmp.Or(c.RetentionDays, DefaultRetentionDays)
	c.InputsExpiryDays = cmp.Or(c.InputsExpiryDays, DefaultInputsExpiryDays)
	return c
}

// Validate reports every problem of the configuration, with zero fields
// taken as their defaults.
func (c MinIOConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	switch {
	case c.Endpoint == "":
		errs = append(errs, errors.New("minio config: no endpoint"))
	case strings.Contains(c.Endpoint, "://") || strings.Contains(c.Endpoint, "/"):
		errs = append(errs, fmt.Errorf("minio config: endpoint %q: want host:port without a scheme or path (set UseTLS for https)", c.Endpoint))
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		errs = append(errs, errors.New("minio config: access key and secret key are required"))
	}
	if err := s3utils.CheckValidBucketNameStrict(c.EvidenceBucket); err != nil {
		errs = append(errs, fmt.Errorf("minio config: evidence bucket %q: %w", c.EvidenceBucket, err))
	}
	if err := s3utils.CheckValidBucketNameStrict(c.InputsBucket); err != nil {
		errs = append(errs, fmt.Errorf("minio config: inputs bucket %q: %w", c.InputsBucket, err))
	}
	if c.EvidenceBucket == c.InputsBucket {
		errs = append(errs, fmt.Errorf("minio config: evidence and inputs share bucket %q: inputs expire, evidence must not", c.EvidenceBucket))
	}
	if m := minio.RetentionMode(c.RetentionMode); !m.IsValid() {
		errs = append(errs, fmt.Errorf("minio config: retention mode %q: want COMPLIANCE or GOVERNANCE", c.RetentionMode))
	}
	if c.RetentionDays < 1 {
		errs = append(errs, fmt.Errorf("minio config: retention days %d: want at least 1", c.RetentionDays))
	}
	if c.InputsExpiryDays < 1 {
		errs = append(errs, fmt.Errorf("minio config: inputs expiry days %d: want at least 1", c.InputsExpiryDays))
	}
	return errors.Join(errs...)
}

// MinIO is the write-once evidence store of the fleet, on S3 Object Lock, and
// the store of the input archives workers scan.
//
// Every evidence object is written once, conditionally (If-None-Match: *), and
// locked by the bucket's default retention: the server refuses to delete the
// version or shorten its lock. Each object's sha256 is recorded in its user
// metadata and checked on every read.
type MinIO struct {
	client   *minio.Client
	cfg      MinIOConfig
	readOnly bool
	logger   *slog.Logger
}

var _ Evidence = (*MinIO)(nil)

// OpenMinIO connects to the server and makes sure both buckets are fit for
// use: the evidence bucket is created with Object Lock and a default
// retention of cfg.RetentionMode for cfg.RetentionDays (an existing bucket
// must have Object Lock, else ErrNoObjectLock; its default retention is set
// to the configured one); the inputs bucket is created if needed and given a
// lifecycle rule that expires archives after cfg.InputsExpiryDays.
func OpenMinIO(ctx context.Context, cfg MinIOConfig, logger *slog.Logger) (*MinIO, error) {
	cfg, client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	m := &MinIO{client: client, cfg: cfg, logger: cmp.Or(logger, slog.New(slog.DiscardHandler))}
	if err := m.ensureEvidenceBucket(ctx); err != nil {
		return nil, err
	}
	if err := m.ensureInputsBucket(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// newClient checks the configuration and makes the S3 client.
func newClient(cfg MinIOConfig) (MinIOConfig, *minio.Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseTLS,
		Region: cfg.Region,
	})
	if err != nil {
		return cfg, nil, fmt.Errorf("open minio %q: %w", cfg.Endpoint, err)
	}
	return cfg, client, nil
}

// OpenMinIOReader opens the evidence bucket for reading only: it creates
// nothing and does not require Object Lock, so that `tollgate verify` can
// check evidence anywhere, a copy in an unlocked bucket included. Its Put
// refuses to write.
func OpenMinIOReader(ctx context.Context, cfg MinIOConfig, logger *slog.Logger) (*MinIO, error) {
	cfg, client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	ok, err := client.BucketExists(ctx, cfg.EvidenceBucket)
	if err != nil {
		return nil, fmt.Errorf("open evidence bucket %q: %w", cfg.EvidenceBucket, err)
	}
	if !ok {
		return nil, fmt.Errorf("open evidence bucket %q: %w", cfg.EvidenceBucket, ErrNotFound)
	}
	return &MinIO{client: client, cfg: cfg, readOnly: true, logger: cmp.Or(logger, slog.New(slog.DiscardHandler))}, nil
}

// Config returns the configuration in use, defaults applied.
func (m *MinIO) Config() MinIOConfig { return m.cfg }

// makeBucket creates bucket and reports whether it did; a bucket that exists
// already (also one made by a concurrent OpenMinIO) is not an error.
func (m *MinIO) makeBucket(ctx context.Context, bucket string, locking bool) (bool, error) {
	exists, err := m.client.BucketExists(ctx, bucket)
	if err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	err = m.client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: m.cfg.Region, ObjectLocking: locking})
	if s3Code(err) == "BucketAlreadyOwnedByYou" {
		return false, nil
	}
	return err == nil, err
}

func (m *MinIO) ensureEvidenceBucket(ctx context.Context) error {
	bucket := m.cfg.EvidenceBucket
	created, err := m.makeBucket(ctx, bucket, true)
	if err != nil {
		return fmt.Errorf("create evidence bucket %q: %w", bucket, err)
	}
	enabled, mode, validity, unit, err := m.client.GetObjectLockConfig(ctx, bucket)
	// Another process may have just created the bucket: MinIO writes its lock
	// configuration a moment after the bucket appears. Give it a few seconds
	// before concluding the bucket was made without a lock.
	for delay := 50 * time.Millisecond; !created && delay < 3*time.Second && lockMissing(enabled, err); delay *= 2 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		enabled, mode, validity, unit, err = m.client.GetObjectLockConfig(ctx, bucket)
	}
	if lockMissing(enabled, err) {
		return fmt.Errorf("open evidence bucket %q: %w: tollgate keeps evidence only in a bucket created with object lock; let tollgate create the bucket, or create it with object lock (mc mb --with-lock)", bucket, ErrNoObjectLock)
	}
	if err != nil {
		return fmt.Errorf("open evidence bucket %q: read object lock configuration: %w", bucket, err)
	}
	wantMode := minio.RetentionMode(m.cfg.RetentionMode)
	days := -1
	if mode != nil && validity != nil && unit != nil {
		days = int(*validity)
		if *unit == minio.Years {
			days *= 365
		}
	}
	if mode != nil && *mode == wantMode && days == m.cfg.RetentionDays {
		return nil
	}
	validityDays, dayUnit := uint(m.cfg.RetentionDays), minio.Days
	if err := m.client.SetObjectLockConfig(ctx, bucket, &wantMode, &validityDays, &dayUnit); err != nil {
		return fmt.Errorf("set default retention of evidence bucket %q: %w", bucket, err)
	}
	msg := "created evidence bucket with object lock"
	if !created {
		msg = "set default retention of evidence bucket"
	}
	m.logger.InfoContext(ctx, msg, "bucket", bucket, "retention_mode", wantMode, "retention_days", m.cfg.RetentionDays)
	return nil
}

func lockMissing(enabled string, err error) bool {
	return s3Code(err) == "ObjectLockConfigurationNotFoundError" || (err == nil && enabled != "Enabled")
}

func (m *MinIO) ensureInputsBucket(ctx context.Context) error {
	bucket := m.cfg.InputsBucket
	created, err := m.makeBucket(ctx, bucket, false)
	if err != nil {
		return fmt.Errorf("create inputs bucket %q: %w", bucket, err)
	}
	if created {
		m.logger.InfoContext(ctx, "created inputs bucket", "bucket", bucket)
	}
	cfg, err := m.client.GetBucketLifecycle(ctx, bucket)
	if s3Code(err) == "NoSuchLifecycleConfiguration" {
		cfg, err = lifecycle.NewConfiguration(), nil
	}
	if err != nil {
		return fmt.Errorf("read lifecycle of inputs bucket %q: %w", bucket, err)
	}
	rule := lifecycle.Rule{
		ID:         inputsRuleID,
		Status:     "Enabled",
		Expiration: lifecycle.Expiration{Days: lifecycle.ExpirationDays(m.cfg.InputsExpiryDays)},
	}
	// Keep the operator's other rules; replace ours if it changed.
	rules := cfg.Rules[:0]
	for _, r := range cfg.Rules {
		if r.ID != inputsRuleID {
			rules = append(rules, r)
		} else if r.Status == rule.Status && r.Expiration.Days == rule.Expiration.Days &&
			r.RuleFilter.IsNull() && r.Prefix == "" {
			return nil
		}
	}
	cfg.Rules = append(rules, rule)
	if err := m.client.SetBucketLifecycle(ctx, bucket, cfg); err != nil {
		return fmt.Errorf("set lifecycle of inputs bucket %q: %w", bucket, err)
	}
	m.logger.InfoContext(ctx, "set expiry of inputs bucket", "bucket", bucket, "expiry_days", m.cfg.InputsExpiryDays)
	return nil
}

// Put stores data under key in the evidence bucket unless a different object
// is already there. The write is conditional (If-None-Match: *) and is the
// only request on the usual path: of two writers racing on one key exactly
// one body wins and no second version is ever written. Only when the server
// refuses the write (the key exists) is the stored object read, to return it
// if it holds the same bytes (a retried task) or fail with ErrImmutable.
//
// S3 treats a key whose newest version is a delete marker (someone deleted it
// without a version id, outside tollgate) as absent: Put then writes a new
// locked version over the marker, and Get refuses the key from then on, as
// it has more than one version. The hidden versions stay locked either way.
//
// An empty contentType is stored, and reported, as application/octet-stream.
func (m *MinIO) Put(ctx context.Context, key, contentType string, data []byte) (Object, error) {
	bucket := m.cfg.EvidenceBucket
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	if m.readOnly {
		return Object{}, fmt.Errorf("put evidence %q in bucket %q: opened read-only", key, bucket)
	}
	if err := validKey(key); err != nil {
		return Object{}, err
	}
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	contentType = cmp.Or(contentType, "application/octet-stream")

	opts := minio.PutObjectOptions{
		ContentType:      contentType,
		UserMetadata:     map[string]string{sha256Meta: digest},
		DisableMultipart: true,
	}
	opts.SetMatchETagExcept("*")
	info, err := m.client.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if s3Code(err) == "PreconditionFailed" {
		// The key is taken (an earlier attempt, or a writer that won a
		// race): the same bytes are fine.
		existing, err := m.stat(ctx, bucket, key)
		if errors.Is(err, errHidden) {
			return Object{}, fmt.Errorf("put evidence %q in bucket %q: %s: %w", key, bucket, hiddenMsg, ErrImmutable)
		}
		if err != nil {
			return Object{}, fmt.Errorf("put evidence %q in bucket %q: key exists, then: %w", key, bucket, err)
		}
		return sameObject(existing, digest)
	}
	if err != nil {
		return Object{}, fmt.Errorf("put evidence %q in bucket %q: %w", key, bucket, err)
	}
	return Object{Bucket: bucket, Key: key, VersionID: info.VersionID, SHA256: digest, Size: int64(len(data)), ContentType: contentType}, nil
}

// sameObject returns existing if it holds the bytes with the given digest,
// else ErrImmutable.
func sameObject(existing Object, digest string) (Object, error) {
	if existing.SHA256 != digest {
		return Object{}, fmt.Errorf("put evidence %q in bucket %q: version %s holds other bytes (sha256 %q): %w",
			existing.Key, existing.Bucket, existing.VersionID, existing.SHA256, ErrImmutable)
	}
	return existing, nil
}

// Get returns the evidence stored under key and checks it against its
// recorded sha256. The key must have exactly one version: tollgate writes
// each key once, so any other version was written outside tollgate, and Get
// refuses to choose between them. It lists the key's versions and reads the
// one: two requests.
func (m *MinIO) Get(ctx context.Context, key string) ([]byte, Object, error) {
	bucket := m.cfg.EvidenceBucket
	if err := ctx.Err(); err != nil {
		return nil, Object{}, err
	}
	if err := validKey(key); err != nil {
		return nil, Object{}, err
	}
	versions, err := m.versions(ctx, bucket, key)
	switch {
	case err != nil:
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: list versions: %w", key, bucket, err)
	case len(versions) == 0:
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: %w", key, bucket, ErrNotFound)
	case versions[0].deleteMarker:
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: %w", key, bucket, errHidden)
	case len(versions) != 1:
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: %d versions (oldest %s), but tollgate writes a key once: it was written outside tollgate",
			key, bucket, len(versions), versions[len(versions)-1].id)
	}
	r, obj, err := m.open(ctx, bucket, key, versions[0].id)
	if err != nil {
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: %w", key, bucket, err)
	}
	defer r.Close()
	if obj.SHA256 == "" {
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: version %s has no recorded sha256: not written by tollgate", key, bucket, obj.VersionID)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(obj.Size, 64<<20)))
	if err := copyChecked(&buf, r, obj); err != nil {
		return nil, Object{}, fmt.Errorf("get evidence %q in bucket %q: %w", key, bucket, err)
	}
	return buf.Bytes(), obj, nil
}

// List returns the keys under prefix in the evidence bucket, sorted.
func (m *MinIO) List(ctx context.Context, prefix string) ([]string, error) {
	bucket := m.cfg.EvidenceBucket
	var keys []string
	for o := range m.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list evidence under %q in bucket %q: %w", prefix, bucket, o.Err)
		}
		keys = append(keys, o.Key)
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete always refuses: evidence is never deleted by tollgate (and the
// server would refuse to delete a locked version anyway).
func (m *MinIO) Delete(_ context.Context, key string) error {
	return fmt.Errorf("delete evidence %q in bucket %q: %w", key, m.cfg.EvidenceBucket, ErrImmutable)
}

// PutInput stores an input archive in the inputs bucket under
// InputsPrefix + its sha256 and returns it. size is the archive's length, or
// -1 if unknown. The digest is computed first: an io.ReadSeeker is read twice,
// any other reader is spooled to a temporary file. Storing an archive again
// uploads it again, which restarts its expiry clock.
func (m *MinIO) PutInput(ctx context.Context, r io.Reader, size int64) (Object, error) {
	bucket := m.cfg.InputsBucket
	body, n, digest, cleanup, err := digestInput(r)
	if err != nil {
		return Object{}, fmt.Errorf("put input in bucket %q: %w", bucket, err)
	}
	defer cleanup()
	if size >= 0 && n != size {
		return Object{}, fmt.Errorf("put input in bucket %q: read %d bytes, want %d", bucket, n, size)
	}
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	key := InputsPrefix + digest
	const contentType = "application/octet-stream"
	info, err := m.client.PutObject(ctx, bucket, key, body, n, minio.PutObjectOptions{
		ContentType:  contentType,
		UserMetadata: map[string]string{sha256Meta: digest},
	})
	if err != nil {
		return Object{}, fmt.Errorf("put input %q in bucket %q: %w", key, bucket, err)
	}
	return Object{Bucket: bucket, Key: key, VersionID: info.VersionID, SHA256: digest, Size: n, ContentType: contentType}, nil
}

// digestInput hashes r and returns a reader of the same bytes from the start.
func digestInput(r io.Reader) (body io.Reader, n int64, digest string, cleanup func(), err error) {
	h := sha256.New()
	if rs, ok := r.(io.ReadSeeker); ok {
		start, err := rs.Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, 0, "", nil, fmt.Errorf("hash input: %w", err)
		}
		if n, err = io.Copy(h, rs); err != nil {
			return nil, 0, "", nil, fmt.Errorf("hash input: %w", err)
		}
		if _, err := rs.Seek(start, io.SeekStart); err != nil {
			return nil, 0, "", nil, fmt.Errorf("rewind input: %w", err)
		}
		return io.LimitReader(rs, n), n, hex.EncodeToString(h.Sum(nil)), func() {}, nil
	}
	f, err := os.CreateTemp("", "tollgate-input-*")
	if err != nil {
		return nil, 0, "", nil, fmt.Errorf("spool input: %w", err)
	}
	cleanup = func() { f.Close(); os.Remove(f.Name()) }
	if n, err = io.Copy(io.MultiWriter(f, h), r); err != nil {
		cleanup()
		return nil, 0, "", nil, fmt.Errorf("spool input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, "", nil, fmt.Errorf("spool input: %w", err)
	}
	return f, n, hex.EncodeToString(h.Sum(nil)), cleanup, nil
}

// FetchTo writes the input archive stored under key to path, checking its
// bytes against its recorded sha256 and, for a key InputsPrefix + sha256,
// against its key. It is one GET: the object's size and digest come with
// its body. On an error path is removed. It satisfies the workers'
// ArchiveSource.
func (m *MinIO) FetchTo(ctx context.Context, key, path string) (err error) {
	bucket := m.cfg.InputsBucket
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validKey(key); err != nil {
		return err
	}
	r, obj, err := m.open(ctx, bucket, key, "")
	if err != nil {
		return fmt.Errorf("fetch input %q from bucket %q: %w", key, bucket, err)
	}
	defer r.Close()
	if d, ok := strings.CutPrefix(key, InputsPrefix); ok && len(d) == sha256.Size*2 {
		if obj.SHA256 != "" && obj.SHA256 != d {
			return fmt.Errorf("fetch input %q from bucket %q: recorded sha256 %s does not match its key", key, bucket, obj.SHA256)
		}
		obj.SHA256 = d
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("fetch input %q from bucket %q: %w", key, bucket, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("fetch input %q from bucket %q: %w", key, bucket, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	if err := copyChecked(f, r, obj); err != nil {
		return fmt.Errorf("fetch input %q from bucket %q: %w", key, bucket, err)
	}
	return nil
}

// stat returns the newest version of key, or ErrNotFound (errHidden under a
// delete marker).
func (m *MinIO) stat(ctx context.Context, bucket, key string) (Object, error) {
	info, err := m.client.StatObject(ctx, bucket, key, minio.StatObjectOptions{})
	if err != nil {
		if info.IsDeleteMarker {
			return Object{}, errHidden
		}
		if s3Code(err) == "NoSuchKey" {
			return Object{}, ErrNotFound
		}
		return Object{}, fmt.Errorf("stat: %w", err)
	}
	return objectOf(bucket, key, info), nil
}

func objectOf(bucket, key string, info minio.ObjectInfo) Object {
	return Object{
		Bucket:      bucket,
		Key:         key,
		VersionID:   info.VersionID,
		SHA256:      info.Metadata.Get(sha256Header),
		Size:        info.Size,
		ContentType: info.ContentType,
	}
}

// open starts reading a version of key (the newest if versionID is empty)
// with one GET, whose headers describe the object: no HEAD first. A missing
// key is ErrNotFound.
func (m *MinIO) open(ctx context.Context, bucket, key, versionID string) (io.ReadCloser, Object, error) {
	var opts minio.GetObjectOptions
	if versionID != "" && versionID != "null" {
		opts.VersionID = versionID
	}
	r, info, _, err := minio.Core{Client: m.client}.GetObject(ctx, bucket, key, opts)
	if err != nil {
		if s3Code(err) == "NoSuchKey" {
			return nil, Object{}, ErrNotFound
		}
		return nil, Object{}, fmt.Errorf("read: %w", err)
	}
	return r, objectOf(bucket, key, info), nil
}

// copyChecked copies exactly obj.Size bytes of r to w and checks them
// against obj.SHA256.
func copyChecked(w io.Writer, r io.Reader, obj Object) error {
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, obj.Size+1))
	if err != nil {
		return fmt.Errorf("version %s: %w", obj.VersionID, err)
	}
	if n != obj.Size {
		return fmt.Errorf("version %s: read %d bytes, want %d", obj.VersionID, n, obj.Size)
	}
	if err := checkSum(h, obj.SHA256); err != nil {
		return fmt.Errorf("version %s: %w", obj.VersionID, err)
	}
	return nil
}

func checkSum(h hash.Hash, want string) error {
	if want == "" {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("content has sha256 %s, does not match its recorded sha256 %s", got, want)
	}
	return nil
}

// version is one version of a key: its id, and whether it is a delete marker.
type version struct {
	id           string
	deleteMarker bool
}

// versions lists the versions of exactly key, delete markers included,
// newest first.
func (m *MinIO) versions(ctx context.Context, bucket, key string) ([]version, error) {
	var vs []version
	for info := range m.client.ListObjectsIter(ctx, bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true, Recursive: true}) {
		if info.Err != nil {
			return nil, info.Err
		}
		if info.Key != key {
			// Keys come in order and key sorts before every longer one.
			break
		}
		vs = append(vs, version{id: info.VersionID, deleteMarker: info.IsDeleteMarker})
	}
	return vs, nil
}

// s3Code is the S3 error code of err, or "".
func s3Code(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}
