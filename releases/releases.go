// Package releases keeps the record of what was deployed: each release of an
// app (the artifact, the scan that passed it), when it became known-good, and
// which release a rollback should go back to. Every record is write-once
// evidence; state is never updated in place, only added to.
//
// Keys, under the evidence store:
//
//	apps/<tenant>/<app>/releases/<id>/release.json
//	apps/<tenant>/<app>/releases/<id>/known-good.json
//	apps/<tenant>/<app>/rollbacks/<rollback id>/decision.json
package releases

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/health"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
)

// Schemas of the records.
const (
	ReleaseSchema   = "tollgate/release/v1"
	KnownGoodSchema = "tollgate/known-good/v1"
)

// Errors callers map to responses.
var (
	// ErrInvalid is a malformed record or name.
	ErrInvalid = errors.New("invalid release")
	// ErrBlocked is a release whose scan verdict is block.
	ErrBlocked = errors.New("scan verdict is block")
	// ErrNotFound is an unknown release or scan.
	ErrNotFound = errors.New("not found")
	// ErrNoTarget is a rollback with nothing it may go back to.
	ErrNoTarget = errors.New("no release to roll back to")
)

var (
	nameRe     = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	idRe       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)
	artifactRe = regexp.MustCompile(`^sha(256|384|512):[0-9a-f]{64,128}$`)
)

// Release is one recorded release of an app.
type Release struct {
	Schema   string `json:"schema"`
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	App      string `json:"app"`
	Artifact string `json:"artifact"`
	ScanID   string `json:"scan_id"`
	// Signature refers to the artifact's signature (e.g. a cosign bundle),
	// kept as given.
	Signature string `json:"signature,omitempty"`
	// Verdict is the scan's verdict when the release was recorded.
	Verdict report.Verdict `json:"verdict"`
	// BaselineP95 is the release's expected p95 latency for the guard's
	// latency rule; zero leaves the rule off.
	BaselineP95 time.Duration `json:"baseline_p95,omitempty"`
	RecordedAt  time.Time     `json:"recorded_at"`
	RecordedBy  string        `json:"recorded_by"`
}

// Ref is what the guard watches the release as.
func (r Release) Ref() health.ReleaseRef {
	return health.ReleaseRef{ID: r.ID, Artifact: r.Artifact, ScanID: r.ScanID, BaselineP95: r.BaselineP95}
}

// KnownGood records that a release was healthy long enough to roll back to.
type KnownGood struct {
	Schema       string               `json:"schema"`
	Tenant       string               `json:"tenant"`
	App          string               `json:"app"`
	ReleaseID    string               `json:"release_id"`
	HealthySince time.Time            `json:"healthy_since"`
	At           time.Time            `json:"at"`
	Measurements []health.Measurement `json:"measurements"`
}

// Status is a release with what is known about it since.
type Status struct {
	Release
	KnownGood *KnownGood `json:"known_good,omitempty"`
}

// Store reads and writes release records.
type Store struct {
	Evidence storage.Evidence
	Lister   storage.Lister
	// Verifier checks scan attestations; without one, a scan's verdict and
	// report must only read back intact (the store checks their digests).
	Verifier *attest.Verifier
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// ValidName checks an app name (kind "app"), or a tenant name (kind
// "tenant": tenant.Validate's grammar). Errors wrap ErrInvalid, and
// tenant.ErrInvalid for a tenant.
func ValidName(kind, name string) error {
	if kind == "tenant" {
		if err := tenant.Validate(name); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return nil
	}
	if !nameRe.MatchString(name) {
		return fmt.Errorf("%w: %s %q: use 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", ErrInvalid, kind, name)
	}
	return nil
}

// appPrefix is "apps/<tenant>/<app>/", from checked names only: keys are
// concatenated, never path.Join'ed, so no name can climb to another
// tenant's keys.
func appPrefix(tenantName, app string) (string, error) {
	if err := ValidName("tenant", tenantName); err != nil {
		return "", err
	}
	if err := ValidName("app", app); err != nil {
		return "", err
	}
	return "apps/" + tenantName + "/" + app + "/", nil
}

// idKey is "<app prefix><dir>/<id>/<name>" with id checked.
func idKey(tenantName, app, dir, id, name string) (string, error) {
	prefix, err := appPrefix(tenantName, app)
	if err != nil {
		return "", err
	}
	if !idRe.MatchString(id) {
		return "", fmt.Errorf("%w: %s id %q", ErrInvalid, strings.TrimSuffix(dir, "s"), id)
	}
	return prefix + dir + "/" + id + "/" + name, nil
}

func releaseKey(tenantName, app, id string) (string, error) {
	return idKey(tenantName, app, "releases", id, "release.json")
}

func knownGoodKey(tenantName, app, id string) (string, error) {
	return idKey(tenantName, app, "releases", id, "known-good.json")
}

// RollbackKey is where a rollback's decision record is stored. Errors wrap
// ErrInvalid (and tenant.ErrInvalid for the tenant).
func RollbackKey(tenantName, app, rollbackID string) (string, error) {
	return idKey(tenantName, app, "rollbacks", rollbackID, "decision.json")
}

// Record checks a release and stores it. The scan must exist, be about the
// same app, and not be blocked. ID, RecordedAt and Verdict are filled in;
// an ID is made from the time and the artifact digest when none is given.
// Recording the same release again within the same second returns it.
func (s *Store) Record(ctx context.Context, r Release) (Release, error) {
	if _, err := appPrefix(r.Tenant, r.App); err != nil {
		return Release{}, err
	}
	if !artifactRe.MatchString(r.Artifact) {
		return Release{}, fmt.Errorf("%w: artifact %q is not a digest like sha256:<hex>", ErrInvalid, r.Artifact)
	}
	if r.ScanID == "" || !idRe.MatchString(r.ScanID) {
		return Release{}, fmt.Errorf("%w: scan id %q", ErrInvalid, r.ScanID)
	}
	if r.BaselineP95 < 0 {
		return Release{}, fmt.Errorf("%w: negative baseline p95", ErrInvalid)
	}
	if len(r.Signature) > 4096 {
		return Release{}, fmt.Errorf("%w: signature longer than 4096 bytes", ErrInvalid)
	}
	verdict, err := s.ScanVerdict(ctx, r.ScanID, r.App)
	if err != nil {
		return Release{}, err
	}
	if verdict == report.VerdictBlock {
		return Release{}, fmt.Errorf("record release of %s: scan %s: %w", r.App, r.ScanID, ErrBlocked)
	}
	r.Schema, r.Verdict = ReleaseSchema, verdict
	r.RecordedAt = s.now().UTC().Truncate(time.Second)
	if r.ID == "" {
		digest := r.Artifact[strings.IndexByte(r.Artifact, ':')+1:]
		r.ID = r.RecordedAt.Format("20060102T150405Z") + "-" + digest[:12]
	} else if !idRe.MatchString(r.ID) {
		return Release{}, fmt.Errorf("%w: release id %q", ErrInvalid, r.ID)
	}
	key, err := releaseKey(r.Tenant, r.App, r.ID)
	if err != nil {
		return Release{}, err
	}
	doc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Release{}, fmt.Errorf("encode release %s of %s: %w", r.ID, r.App, err)
	}
	if _, err := s.Evidence.Put(ctx, key, "application/json", doc); err != nil {
		if errors.Is(err, storage.ErrImmutable) {
			return Release{}, fmt.Errorf("%w: release %s of %s already exists with other contents", ErrInvalid, r.ID, r.App)
		}
		return Release{}, fmt.Errorf("store release %s of %s: %w", r.ID, r.App, err)
	}
	return r, nil
}

// ScanVerdict reads a scan's stored verdict and checks it is about app.
func (s *Store) ScanVerdict(ctx context.Context, scanID, app string) (report.Verdict, error) {
	if !idRe.MatchString(scanID) {
		return "", fmt.Errorf("%w: scan id %q", ErrInvalid, scanID)
	}
	raw, _, err := s.Evidence.Get(ctx, "scans/"+scanID+"/verdict.json")
	if errors.Is(err, storage.ErrNotFound) {
		return "", fmt.Errorf("scan %s: no stored verdict (unknown or unfinished scan): %w", scanID, ErrNotFound)
	} else if err != nil {
		return "", fmt.Errorf("read verdict of scan %s: %w", scanID, err)
	}
	var v struct {
		App     string         `json:"app"`
		Verdict report.Verdict `json:"verdict"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("decode verdict of scan %s: %w", scanID, err)
	}
	if v.App != app {
		return "", fmt.Errorf("%w: scan %s is of app %q, not %q", ErrInvalid, scanID, v.App, app)
	}
	return v.Verdict, nil
}

// Get returns one release and whether it is known-good.
func (s *Store) Get(ctx context.Context, tenantName, app, id string) (Status, error) {
	key, err := releaseKey(tenantName, app, id)
	if err != nil {
		return Status{}, err
	}
	kgKey, err := knownGoodKey(tenantName, app, id)
	if err != nil {
		return Status{}, err
	}
	raw, _, err := s.Evidence.Get(ctx, key)
	if errors.Is(err, storage.ErrNotFound) {
		return Status{}, fmt.Errorf("release %s of %s: %w", id, app, ErrNotFound)
	} else if err != nil {
		return Status{}, fmt.Errorf("read release %s of %s: %w", id, app, err)
	}
	var st Status
	if err := json.Unmarshal(raw, &st.Release); err != nil {
		return Status{}, fmt.Errorf("decode release %s of %s: %w", id, app, err)
	}
	raw, _, err = s.Evidence.Get(ctx, kgKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return Status{}, fmt.Errorf("read known-good mark of release %s of %s: %w", id, app, err)
	default:
		var kg KnownGood
		if err := json.Unmarshal(raw, &kg); err != nil {
			return Status{}, fmt.Errorf("decode known-good mark of release %s of %s: %w", id, app, err)
		}
		st.KnownGood = &kg
	}
	return st, nil
}

// List returns an app's releases, oldest first.
func (s *Store) List(ctx context.Context, tenantName, app string) ([]Status, error) {
	prefix, err := appPrefix(tenantName, app)
	if err != nil {
		return nil, err
	}
	keys, err := s.Lister.List(ctx, prefix+"releases/")
	if err != nil {
		return nil, fmt.Errorf("list releases of %s: %w", app, err)
	}
	var out []Status
	for _, k := range keys {
		if path.Base(k) != "release.json" {
			continue
		}
		st, err := s.Get(ctx, tenantName, app, path.Base(path.Dir(k)))
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b Status) int {
		return cmp.Or(a.RecordedAt.Compare(b.RecordedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// Apps returns the names of a tenant's apps that have a recorded release,
// sorted. Only keys under the tenant's own prefix are read.
func (s *Store) Apps(ctx context.Context, tenantName string) ([]string, error) {
	if err := ValidName("tenant", tenantName); err != nil {
		return nil, err
	}
	prefix := "apps/" + tenantName + "/"
	keys, err := s.Lister.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list apps of tenant %s: %w", tenantName, err)
	}
	var out []string
	for _, k := range keys {
		// <app>/releases/<id>/release.json
		parts := strings.Split(strings.TrimPrefix(k, prefix), "/")
		if len(parts) != 4 || parts[1] != "releases" || parts[3] != "release.json" || ValidName("app", parts[0]) != nil {
			continue
		}
		out = append(out, parts[0])
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// MarkKnownGood records that a release has been healthy long enough. Marking
// it again returns the first mark.
func (s *Store) MarkKnownGood(ctx context.Context, kg KnownGood) (KnownGood, error) {
	st, err := s.Get(ctx, kg.Tenant, kg.App, kg.ReleaseID)
	if err != nil {
		return KnownGood{}, err
	}
	if st.KnownGood != nil {
		return *st.KnownGood, nil
	}
	kg.Schema = KnownGoodSchema
	key, err := knownGoodKey(kg.Tenant, kg.App, kg.ReleaseID)
	if err != nil {
		return KnownGood{}, err
	}
	doc, err := json.MarshalIndent(kg, "", "  ")
	if err != nil {
		return KnownGood{}, fmt.Errorf("encode known-good mark of release %s: %w", kg.ReleaseID, err)
	}
	if _, err := s.Evidence.Put(ctx, key, "application/json", doc); err != nil {
		if errors.Is(err, storage.ErrImmutable) {
			// Another evaluation marked it first: keep that one.
			if st, gerr := s.Get(ctx, kg.Tenant, kg.App, kg.ReleaseID); gerr == nil && st.KnownGood != nil {
				return *st.KnownGood, nil
			}
		}
		return KnownGood{}, fmt.Errorf("store known-good mark of release %s of %s: %w", kg.ReleaseID, kg.App, err)
	}
	return kg, nil
}
