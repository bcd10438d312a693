// Package exceptions keeps accepted risks: a record that says one finding
// (a vulnerability in a package, a secret or a code weakness by its
// fingerprint, or a policy rule) is accepted for an app or a whole tenant, by whom, why, and until
// when. Policies see the exceptions in force as data and drop the findings
// they cover; an exception stops applying by itself when it expires.
//
// Every record is write-once evidence. Revoking adds a record; nothing is
// changed in place:
//
//	exceptions/<tenant>/<id>/exception.json
//	exceptions/<tenant>/<id>/revoked.json
package exceptions

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
)

// Schemas of the records.
const (
	Schema        = "tollgate/exception/v1"
	RevokedSchema = "tollgate/exception-revoked/v1"
)

// Scopes of an exception.
const (
	ScopeApp    = "app"
	ScopeTenant = "tenant"
)

// MaxLifetime is the longest an exception may last: accepted risks are
// looked at again at least once a year.
const MaxLifetime = 366 * 24 * time.Hour

// Errors callers map to responses.
var (
	ErrInvalid  = errors.New("invalid exception")
	ErrNotFound = errors.New("exception not found")
	ErrRevoked  = errors.New("exception already revoked")
)

var (
	nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	idRe   = regexp.MustCompile(`^exc-[0-9a-f]{16}$`)
	// A finding's parts: advisory ids (CVE-2021-44906, GHSA-xvch-5gv4-984h),
	// package names (lodash, @scope/pkg, github.com/x/y) and policy or
	// check names (licenses.denied, DS-0002).
	tokenRe = regexp.MustCompile(`^[A-Za-z0-9@][A-Za-z0-9@._:/+-]{0,255}$`)
	// A secret's fingerprint: the keyed hash of its value the secrets
	// scanner reports (version 1). A file:rule:line place is refused: it
	// would cover any secret later put on that line.
	fingerprintRe = regexp.MustCompile(`^tgfp1:[0-9a-f]{32}$`)
	// A code weakness's fingerprint: the SAST engine's hash of its rule and
	// normalised code span (version 1), stable when lines shift.
	weaknessFingerprintRe = regexp.MustCompile(`^tgw1:[0-9a-f]{16,64}$`)
)

// Finding says what an exception covers: exactly one of a vulnerability in a
// package, a secret by fingerprint, a code weakness by fingerprint, or a
// rule.
type Finding struct {
	// Vulnerability is an advisory id or alias; Package the package it is in.
	Vulnerability string `json:"vulnerability,omitempty"`
	Package       string `json:"package,omitempty"`
	// SecretFingerprint is the report's fingerprint of one secret value
	// ("tgfp1:" and 32 hex digits, a keyed hash of the value), wherever
	// it is in the tree.
	SecretFingerprint string `json:"secret_fingerprint,omitempty"`
	// WeaknessFingerprint is the report's fingerprint of one code weakness
	// ("tgw1:" and hex, a hash of its rule and normalised code span),
	// wherever the span moves.
	WeaknessFingerprint string `json:"weakness_fingerprint,omitempty"`
	// Rule is a policy rule ("licenses.denied"), a check id ("DS-0002") or
	// a SAST rule id ("js-sql-injection"): every finding of that rule.
	Rule string `json:"rule,omitempty"`
}

// String says what the finding is, for messages.
func (f Finding) String() string {
	switch {
	case f.Vulnerability != "":
		return f.Vulnerability + " in " + f.Package
	case f.SecretFingerprint != "":
		return "secret " + f.SecretFingerprint
	case f.WeaknessFingerprint != "":
		return "weakness " + f.WeaknessFingerprint
	default:
		return "rule " + f.Rule
	}
}

func (f Finding) validate() error {
	set := 0
	for _, v := range []string{f.Vulnerability + f.Package, f.SecretFingerprint, f.WeaknessFingerprint, f.Rule} {
		if v != "" {
			set++
		}
	}
	if set != 1 {
		return fmt.Errorf("%w: a finding is one of vulnerability and package, secret_fingerprint, weakness_fingerprint, or rule", ErrInvalid)
	}
	if (f.Vulnerability == "") != (f.Package == "") {
		return fmt.Errorf("%w: a vulnerability exception names both the vulnerability and its package", ErrInvalid)
	}
	for _, v := range []string{f.Vulnerability, f.Package, f.Rule} {
		if v != "" && !tokenRe.MatchString(v) {
			return fmt.Errorf("%w: %q is not an advisory id, package or rule name", ErrInvalid, v)
		}
	}
	if f.SecretFingerprint != "" && !fingerprintRe.MatchString(f.SecretFingerprint) {
		return fmt.Errorf("%w: secret fingerprint %q is not a report's fingerprint (tgfp1: and 32 hex digits)", ErrInvalid, f.SecretFingerprint)
	}
	if f.WeaknessFingerprint != "" && !weaknessFingerprintRe.MatchString(f.WeaknessFingerprint) {
		return fmt.Errorf("%w: weakness fingerprint %q is not a report's fingerprint (tgw1: and 16 to 64 hex digits)", ErrInvalid, f.WeaknessFingerprint)
	}
	return nil
}

// Exception is one accepted risk.
type Exception struct {
	Schema string `json:"schema"`
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Scope is ScopeApp (App names the app) or ScopeTenant.
	Scope     string    `json:"scope"`
	App       string    `json:"app,omitempty"`
	Finding   Finding   `json:"finding"`
	Reason    string    `json:"reason"`
	Approver  string    `json:"approver"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// Revoked is set when a revocation record exists (never stored here).
	Revoked *Revocation `json:"revoked,omitempty"`
}

// Revocation ends an exception before its expiry.
type Revocation struct {
	Schema string    `json:"schema"`
	ID     string    `json:"id"`
	By     string    `json:"by"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Active says whether the exception applies at t.
func (e Exception) Active(t time.Time) bool {
	return e.Revoked == nil && !t.Before(e.CreatedAt) && t.Before(e.ExpiresAt)
}

// Covers says whether the exception applies to a scan of app.
func (e Exception) Covers(app string) bool {
	return e.Scope == ScopeTenant || e.App == app
}

// Store reads and writes exception records.
type Store struct {
	Evidence storage.Evidence
	Lister   storage.Lister
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// tenantPrefix is "exceptions/<tenant>/" for a tenant in the grammar: keys
// are concatenated from checked segments, never path.Join'ed, so no name
// climbs to another tenant's records. Errors wrap ErrInvalid and
// tenant.ErrInvalid.
func tenantPrefix(tenantName string) (string, error) {
	if err := tenant.Validate(tenantName); err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return "exceptions/" + tenantName + "/", nil
}

// key is "exceptions/<tenant>/<id>/<name>" with the tenant and id checked.
func key(tenantName, id, name string) (string, error) {
	prefix, err := tenantPrefix(tenantName)
	if err != nil {
		return "", err
	}
	if !idRe.MatchString(id) {
		return "", fmt.Errorf("%w: id %q", ErrInvalid, id)
	}
	return prefix + id + "/" + name, nil
}

// Add checks an exception and stores it. ID, Schema and CreatedAt are
// filled in.
func (s *Store) Add(ctx context.Context, e Exception) (Exception, error) {
	now := s.now().UTC().Truncate(time.Second)
	if err := e.validate(now); err != nil {
		return Exception{}, err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Exception{}, fmt.Errorf("make exception id: %w", err)
	}
	e.Schema, e.ID, e.CreatedAt, e.Revoked = Schema, "exc-"+hex.EncodeToString(b[:]), now, nil
	e.ExpiresAt = e.ExpiresAt.UTC()
	k, err := key(e.Tenant, e.ID, "exception.json")
	if err != nil {
		return Exception{}, err
	}
	doc, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return Exception{}, fmt.Errorf("encode exception for %s: %w", e.Finding, err)
	}
	if _, err := s.Evidence.Put(ctx, k, "application/json", doc); err != nil {
		return Exception{}, fmt.Errorf("store exception %s: %w", e.ID, err)
	}
	return e, nil
}

func (e Exception) validate(now time.Time) error {
	if _, err := tenantPrefix(e.Tenant); err != nil {
		return err
	}
	switch e.Scope {
	case ScopeApp:
		if !nameRe.MatchString(e.App) {
			return fmt.Errorf("%w: app %q: use 1-63 of a-z, 0-9, '.', '_', '-'", ErrInvalid, e.App)
		}
	case ScopeTenant:
		if e.App != "" {
			return fmt.Errorf("%w: a tenant-wide exception names no app", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: scope %q (want %q or %q)", ErrInvalid, e.Scope, ScopeApp, ScopeTenant)
	}
	if err := e.Finding.validate(); err != nil {
		return err
	}
	if r := strings.TrimSpace(e.Reason); r == "" || len(r) > 2000 {
		return fmt.Errorf("%w: a reason of 1-2000 characters is required", ErrInvalid)
	}
	if e.Approver == "" || len(e.Approver) > 256 {
		return fmt.Errorf("%w: approver %q", ErrInvalid, e.Approver)
	}
	switch {
	case !e.ExpiresAt.After(now):
		return fmt.Errorf("%w: expiry %s is not in the future", ErrInvalid, e.ExpiresAt.Format(time.RFC3339))
	case e.ExpiresAt.Sub(now) > MaxLifetime:
		return fmt.Errorf("%w: expiry %s is more than a year away", ErrInvalid, e.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// Get reads one exception, with its revocation if there is one.
func (s *Store) Get(ctx context.Context, tenantName, id string) (Exception, error) {
	k, err := key(tenantName, id, "exception.json")
	if err != nil {
		return Exception{}, err
	}
	revokedKey, err := key(tenantName, id, "revoked.json")
	if err != nil {
		return Exception{}, err
	}
	raw, _, err := s.Evidence.Get(ctx, k)
	if errors.Is(err, storage.ErrNotFound) {
		return Exception{}, fmt.Errorf("exception %s: %w", id, ErrNotFound)
	} else if err != nil {
		return Exception{}, fmt.Errorf("read exception %s: %w", id, err)
	}
	var e Exception
	if err := json.Unmarshal(raw, &e); err != nil {
		return Exception{}, fmt.Errorf("decode exception %s: %w", id, err)
	}
	raw, _, err = s.Evidence.Get(ctx, revokedKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return Exception{}, fmt.Errorf("read revocation of exception %s: %w", id, err)
	default:
		var r Revocation
		if err := json.Unmarshal(raw, &r); err != nil {
			return Exception{}, fmt.Errorf("decode revocation of exception %s: %w", id, err)
		}
		e.Revoked = &r
	}
	return e, nil
}

// List returns a tenant's exceptions, expired and revoked ones too, oldest
// first.
func (s *Store) List(ctx context.Context, tenantName string) ([]Exception, error) {
	prefix, err := tenantPrefix(tenantName)
	if err != nil {
		return nil, err
	}
	keys, err := s.Lister.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list exceptions of tenant %s: %w", tenantName, err)
	}
	var out []Exception
	for _, k := range keys {
		if path.Base(k) != "exception.json" {
			continue
		}
		e, err := s.Get(ctx, tenantName, path.Base(path.Dir(k)))
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b Exception) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// InForce returns the exceptions that apply to a scan of app at t.
func (s *Store) InForce(ctx context.Context, tenantName, app string, t time.Time) ([]Exception, error) {
	all, err := s.List(ctx, tenantName)
	if err != nil {
		return nil, err
	}
	out := []Exception{}
	for _, e := range all {
		if e.Active(t) && e.Covers(app) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Revoke ends an exception now.
func (s *Store) Revoke(ctx context.Context, tenantName, id, by, reason string) (Exception, error) {
	k, err := key(tenantName, id, "revoked.json")
	if err != nil {
		return Exception{}, err
	}
	e, err := s.Get(ctx, tenantName, id)
	if err != nil {
		return Exception{}, err
	}
	if e.Revoked != nil {
		return Exception{}, fmt.Errorf("exception %s: %w", id, ErrRevoked)
	}
	if r := strings.TrimSpace(reason); r == "" || len(r) > 2000 {
		return Exception{}, fmt.Errorf("%w: a reason of 1-2000 characters is required", ErrInvalid)
	}
	r := Revocation{Schema: RevokedSchema, ID: id, By: by, Reason: reason, At: s.now().UTC().Truncate(time.Second)}
	doc, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return Exception{}, fmt.Errorf("encode revocation of %s: %w", id, err)
	}
	if _, err := s.Evidence.Put(ctx, k, "application/json", doc); err != nil {
		if errors.Is(err, storage.ErrImmutable) {
			return Exception{}, fmt.Errorf("exception %s: %w", id, ErrRevoked)
		}
		return Exception{}, fmt.Errorf("store revocation of %s: %w", id, err)
	}
	e.Revoked = &r
	return e, nil
}
