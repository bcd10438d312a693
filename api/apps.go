package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/workflows"
)

// Releases records and lists releases, and a tenant's apps that have one;
// *releases.Store is one.
type Releases interface {
	Record(ctx context.Context, r releases.Release) (releases.Release, error)
	List(ctx context.Context, tenant, app string) ([]releases.Status, error)
	Apps(ctx context.Context, tenant string) ([]string, error)
	// Lifecycle is the app's idle-app TTL state (active when unmarked).
	Lifecycle(ctx context.Context, tenant, app string) (releases.Lifecycle, error)
}

// Guards acts on guards and rollbacks; *control.Guards is one.
type Guards interface {
	Watch(ctx context.Context, tenant, app string, ref workflows.ReleaseRef) error
	Push(ctx context.Context, tenant, app string, samples []workflows.HealthSample) error
	Freeze(ctx context.Context, tenant, app, reason string) error
	Unfreeze(ctx context.Context, tenant, app string) error
	Rollback(ctx context.Context, req workflows.RollbackRequest) (control.RollbackStarted, error)
	Status(ctx context.Context, tenant, app string) (control.GuardStatus, error)
	// Revive brings an idle or archived app back and waits for it.
	Revive(ctx context.Context, req workflows.ReviveRequest) (workflows.ReviveResult, error)
}

// maxJSONBody bounds the JSON bodies of the apps endpoints.
const maxJSONBody = 256 << 10

// maxSamplesPerPush bounds one health push.
const maxSamplesPerPush = 500

// ReleaseRequest is the body of POST /v1/apps/{app}/releases.
type ReleaseRequest struct {
	// ID names the release; empty makes one from the time and artifact.
	ID        string `json:"id,omitempty"`
	Artifact  string `json:"artifact"`
	ScanID    string `json:"scan_id"`
	Signature string `json:"signature,omitempty"`
	// BaselineP95Seconds turns the guard's latency rule on.
	BaselineP95Seconds float64 `json:"baseline_p95_seconds,omitempty"`
}

// HealthSampleIn is one pushed sample: the traffic of the period ending at
// At, latencies in seconds.
type HealthSampleIn struct {
	At         time.Time `json:"at"`
	Requests   int64     `json:"requests"`
	Errors     int64     `json:"errors"`
	P50Seconds float64   `json:"p50_seconds,omitempty"`
	P95Seconds float64   `json:"p95_seconds,omitempty"`
	P99Seconds float64   `json:"p99_seconds,omitempty"`
}

// HealthPush is the body of POST /v1/apps/{app}/health.
type HealthPush struct {
	Samples []HealthSampleIn `json:"samples"`
}

// RollbackIn is the body of POST /v1/apps/{app}/rollback.
type RollbackIn struct {
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
}

// ReviveIn is the body of POST /v1/apps/{app}/revive.
type ReviveIn struct {
	Reason string `json:"reason"`
}

// FreezeIn is the body of POST /v1/apps/{app}/freeze.
type FreezeIn struct {
	Reason string `json:"reason"`
}

// appRequest authorizes action on the path's app and decodes a JSON body
// into v (when not nil). It answers the request itself when it returns false.
func (s *Server) appRequest(w http.ResponseWriter, r *http.Request, action string, v any) (Principal, string, bool) {
	ctx := r.Context()
	p := principalFrom(ctx)
	app := r.PathValue("app")
	if !appRe.MatchString(app) {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("app %q: use 1-63 of a-z, 0-9, '.', '_', '-'", app))
		return p, "", false
	}
	if s.deps.Releases == nil || s.deps.Guards == nil {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", "this server does not guard releases")
		return p, "", false
	}
	if ok, reason := s.authorize(ctx, p, action, p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return p, "", false
	}
	if v == nil {
		return p, app, true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		s.bodyError(w, r, err)
		return p, "", false
	}
	if err := decodeStrict(body, v); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return p, "", false
	}
	return p, app, true
}

// requireReason trims an on-call action's reason and answers 400 itself
// (ok false) when it is empty or over 1000 characters.
func requireReason(w http.ResponseWriter, r *http.Request, reason string) (string, bool) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 1000 {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "a reason (up to 1000 characters) is required")
		return "", false
	}
	return reason, true
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// anything after the object.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the body is not the expected JSON: %w", err)
	}
	if dec.More() {
		return errors.New("the body has data after its JSON object")
	}
	return nil
}

// HealthClock is the window a pushed sample's time must fall in, around the
// server's now: at most Ahead after it (clock skew between the app and the
// server; default 2 minutes, the guard's own limit) and at most Behind
// before it (default 15 minutes; the guard drops samples older than its
// longest window anyway). A sample outside it is refused: one dated ahead
// would keep a guard's windows "healthy" and fresh.
type HealthClock struct {
	Ahead  time.Duration
	Behind time.Duration
}

func (c HealthClock) withDefaults() HealthClock {
	c.Ahead = cmp.Or(c.Ahead, workflows.PushClockSkew)
	c.Behind = cmp.Or(c.Behind, 15*time.Minute)
	return c
}

// decodeHealth decodes and checks a health push received at now: the
// samples the guard gets, or why none are accepted.
func decodeHealth(body []byte, now time.Time, clock HealthClock) ([]workflows.HealthSample, error) {
	var in HealthPush
	if err := decodeStrict(body, &in); err != nil {
		return nil, err
	}
	return in.check(now, clock)
}

// check validates a decoded push received at now and converts its samples.
func (in HealthPush) check(now time.Time, clock HealthClock) ([]workflows.HealthSample, error) {
	if len(in.Samples) == 0 || len(in.Samples) > maxSamplesPerPush {
		return nil, fmt.Errorf("send 1 to %d samples", maxSamplesPerPush)
	}
	clock = clock.withDefaults()
	samples := make([]workflows.HealthSample, 0, len(in.Samples))
	for i, x := range in.Samples {
		hs, err := x.sample(now, clock)
		if err != nil {
			return nil, fmt.Errorf("sample %d: %w", i, err)
		}
		samples = append(samples, hs)
	}
	return samples, nil
}

func (s *Server) createRelease(w http.ResponseWriter, r *http.Request) {
	var in ReleaseRequest
	p, app, ok := s.appRequest(w, r, "release.create", &in)
	if !ok {
		return
	}
	ctx := r.Context()
	if math.IsNaN(in.BaselineP95Seconds) || in.BaselineP95Seconds < 0 || in.BaselineP95Seconds > 3600 {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", "baseline_p95_seconds must be between 0 and 3600")
		return
	}
	// The scan must be this tenant's: otherwise it is unknown here.
	if sc, err := s.scans.Describe(ctx, in.ScanID); err != nil && !errors.Is(err, control.ErrNoScan) {
		s.internal(w, r, "describe scan", err)
		return
	} else if err != nil || sc.Tenant != p.Tenant {
		writeProblem(w, r, http.StatusUnprocessableEntity, "unknown-scan", fmt.Sprintf("no finished scan %q of this tenant", in.ScanID))
		return
	}
	rel, err := s.deps.Releases.Record(ctx, releases.Release{
		ID: in.ID, Tenant: p.Tenant, App: app, Artifact: in.Artifact, ScanID: in.ScanID, Signature: in.Signature,
		BaselineP95: time.Duration(in.BaselineP95Seconds * float64(time.Second)), RecordedBy: p.Name,
	})
	switch {
	case errors.Is(err, releases.ErrBlocked):
		writeProblem(w, r, http.StatusConflict, "scan-blocked", fmt.Sprintf("scan %s blocked this code: it cannot be released", in.ScanID))
		return
	case errors.Is(err, releases.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	case errors.Is(err, releases.ErrNotFound):
		writeProblem(w, r, http.StatusUnprocessableEntity, "unknown-scan", err.Error())
		return
	case err != nil:
		s.internal(w, r, "record release", err)
		return
	}
	if err := s.deps.Guards.Watch(ctx, p.Tenant, app, rel.Ref()); err != nil {
		// The release is recorded; the guard is not watching it yet.
		s.internal(w, r, "start the guard", err)
		return
	}
	s.deps.Logger.InfoContext(ctx, "release recorded", "tenant", p.Tenant, "app", app, "release", rel.ID, "scan", rel.ScanID, "by", p.Name)
	writeJSON(w, http.StatusCreated, rel)
}

func (s *Server) listReleases(w http.ResponseWriter, r *http.Request) {
	p, app, ok := s.appRequest(w, r, "app.read", nil)
	if !ok {
		return
	}
	list, err := s.deps.Releases.List(r.Context(), p.Tenant, app)
	if err != nil {
		s.internal(w, r, "list releases", err)
		return
	}
	if list == nil {
		list = []releases.Status{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"app": app, "releases": list})
}

func (s *Server) pushHealth(w http.ResponseWriter, r *http.Request) {
	var in HealthPush
	p, app, ok := s.appRequest(w, r, "health.push", &in)
	if !ok {
		return
	}
	samples, err := in.check(time.Now().UTC(), s.cfg.HealthClock)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	}
	if err := s.deps.Guards.Push(r.Context(), p.Tenant, app, samples); errors.Is(err, control.ErrNoGuard) {
		writeProblem(w, r, http.StatusNotFound, "no-guard", fmt.Sprintf("app %s has no guard: record a release first", app))
		return
	} else if err != nil {
		s.internal(w, r, "push health", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"app": app, "accepted": len(samples)})
}

// sample checks a pushed sample received at now and converts it.
func (x HealthSampleIn) sample(now time.Time, clock HealthClock) (workflows.HealthSample, error) {
	var d [3]time.Duration
	for i, v := range []float64{x.P50Seconds, x.P95Seconds, x.P99Seconds} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 3600 {
			return workflows.HealthSample{}, fmt.Errorf("latency %g s is not between 0 and 3600", v)
		}
		d[i] = time.Duration(v * float64(time.Second))
	}
	hs := workflows.HealthSample{At: x.At.UTC(), Requests: x.Requests, Errors: x.Errors, P50: d[0], P95: d[1], P99: d[2]}
	if err := hs.Validate(); err != nil {
		return workflows.HealthSample{}, err
	}
	if hs.At.After(now.Add(clock.Ahead)) || hs.At.Before(now.Add(-clock.Behind)) {
		return workflows.HealthSample{}, fmt.Errorf("time %s is outside the accepted window (%s before to %s after the server's %s)",
			hs.At.Format(time.RFC3339), clock.Behind, clock.Ahead, now.Format(time.RFC3339))
	}
	return hs, nil
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	var in RollbackIn
	p, app, ok := s.appRequest(w, r, "rollback.create", &in)
	if !ok {
		return
	}
	if in.Reason, ok = requireReason(w, r, in.Reason); !ok {
		return
	}
	ctx := r.Context()
	req := workflows.RollbackRequest{
		Tenant: p.Tenant, App: app, ToRelease: in.To, Reason: in.Reason, Trigger: p.Name, RequestedAt: time.Now().UTC(),
	}
	// The release being left is the one the guard watches, when there is one.
	if st, err := s.deps.Guards.Status(ctx, p.Tenant, app); err == nil {
		req.FromRelease = st.Guard.Release.ID
	} else if !errors.Is(err, control.ErrNoGuard) {
		s.internal(w, r, "read guard status", err)
		return
	}
	started, err := s.deps.Guards.Rollback(ctx, req)
	if errors.Is(err, control.ErrRollbackConflict) {
		writeProblem(w, r, http.StatusConflict, "rollback-running", err.Error())
		return
	} else if err != nil {
		s.internal(w, r, "start rollback", err)
		return
	}
	s.deps.Logger.InfoContext(ctx, "rollback requested", "tenant", p.Tenant, "app", app, "by", p.Name, "to", in.To, "joined", started.Joined)
	writeJSON(w, http.StatusAccepted, started)
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request) {
	var in FreezeIn
	p, app, ok := s.appRequest(w, r, "guard.freeze", &in)
	if !ok {
		return
	}
	if in.Reason, ok = requireReason(w, r, in.Reason); !ok {
		return
	}
	if err := s.deps.Guards.Freeze(r.Context(), p.Tenant, app, in.Reason+" (by "+p.Name+")"); err != nil {
		s.internal(w, r, "freeze", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"app": app, "frozen": true})
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request) {
	p, app, ok := s.appRequest(w, r, "guard.freeze", nil)
	if !ok {
		return
	}
	if err := s.deps.Guards.Unfreeze(r.Context(), p.Tenant, app); errors.Is(err, control.ErrNoGuard) {
		writeProblem(w, r, http.StatusNotFound, "no-guard", fmt.Sprintf("app %s has no guard", app))
		return
	} else if err != nil {
		s.internal(w, r, "unfreeze", err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"app": app, "frozen": false})
}

func (s *Server) guardStatus(w http.ResponseWriter, r *http.Request) {
	p, app, ok := s.appRequest(w, r, "app.read", nil)
	if !ok {
		return
	}
	st, err := s.deps.Guards.Status(r.Context(), p.Tenant, app)
	if errors.Is(err, control.ErrNoGuard) {
		writeProblem(w, r, http.StatusNotFound, "no-guard", fmt.Sprintf("app %s has no guard: record a release first", app))
		return
	} else if err != nil {
		s.internal(w, r, "read guard status", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// revive answers POST /v1/apps/{app}/revive (role oncall): an idle or
// archived app of the caller's tenant is brought back (an archived one
// deployed again on its live release, its guard restarted) and the revive
// recorded as evidence. An app of no release here is 404; an active one
// 409.
func (s *Server) revive(w http.ResponseWriter, r *http.Request) {
	var in ReviveIn
	p, app, ok := s.appRequest(w, r, "app.revive", &in)
	if !ok {
		return
	}
	if in.Reason, ok = requireReason(w, r, in.Reason); !ok {
		return
	}
	ctx := r.Context()
	list, err := s.deps.Releases.List(ctx, p.Tenant, app)
	if err != nil {
		s.internal(w, r, "list releases", err)
		return
	}
	if len(list) == 0 {
		writeProblem(w, r, http.StatusNotFound, "no-app", fmt.Sprintf("app %s has no recorded release", app))
		return
	}
	lc, err := s.deps.Releases.Lifecycle(ctx, p.Tenant, app)
	if err != nil {
		s.internal(w, r, "read lifecycle", err)
		return
	}
	if lc.State != releases.StateIdle && lc.State != releases.StateArchived {
		writeProblem(w, r, http.StatusConflict, "not-idle", fmt.Sprintf("app %s is %s: only an idle or archived app is revived", app, lc.State))
		return
	}
	res, err := s.deps.Guards.Revive(ctx, workflows.ReviveRequest{Tenant: p.Tenant, App: app, By: p.Name, Reason: in.Reason, RequestedAt: time.Now().UTC()})
	if err != nil {
		s.internal(w, r, "revive", err)
		return
	}
	s.deps.Logger.InfoContext(ctx, "app revived", "tenant", p.Tenant, "app", app, "by", p.Name, "previous", res.Previous)
	writeJSON(w, http.StatusOK, res)
}
