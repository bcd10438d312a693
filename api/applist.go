package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tollgate/tollgate/control"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tenant"
)

// Guard states of an app in GET /v1/apps.
const (
	StateWatching    = "watching"
	StateBreached    = "breached"
	StateFrozen      = "frozen"
	StateRollingBack = "rolling_back"
	StateUnguarded   = "unguarded"
	// StateIdle and StateArchived are the idle-app TTL's: they come before
	// the guard's state.
	StateIdle     = "idle"
	StateArchived = "archived"
)

// appStates are the values of GET /v1/apps?state=.
var appStates = []string{StateWatching, StateBreached, StateFrozen, StateRollingBack, StateUnguarded, StateIdle, StateArchived}

// appReads bounds the apps GET /v1/apps reads at once (each costs a guard
// query and a visibility listing).
const appReads = 8

// AppList is the body of GET /v1/apps.
type AppList struct {
	Apps []AppSummary `json:"apps"`
}

// AppSummary is one app of GET /v1/apps.
type AppSummary struct {
	App string `json:"app"`
	// Release is the release the guard watches (the newest recorded one
	// when the guard watches none); null when none is known.
	Release *AppRelease `json:"release"`
	// KnownGood is the newest release marked known-good, or "".
	KnownGood string `json:"known_good"`
	// State is idle or archived when the idle-app TTL marked the app so,
	// else the guard's: watching, breached, frozen, rolling_back or
	// unguarded (no guard).
	State string `json:"state"`
	// Since is when the app became idle or archived; absent otherwise.
	Since *time.Time `json:"since,omitempty"`
	// LastScan is the app's newest completed scan; null when none.
	LastScan *AppScan `json:"last_scan"`
}

// AppRelease is a release as GET /v1/apps shows it.
type AppRelease struct {
	ID         string         `json:"id"`
	Artifact   string         `json:"artifact"`
	ScanID     string         `json:"scan_id"`
	Verdict    report.Verdict `json:"verdict"`
	RecordedAt time.Time      `json:"recorded_at"`
}

// AppScan is an app's newest completed scan: its verdict came at At.
type AppScan struct {
	ScanID  string         `json:"scan_id"`
	Verdict report.Verdict `json:"verdict"`
	At      time.Time      `json:"at"`
}

// listApps answers GET /v1/apps: the principal's own tenant's apps (those
// with a recorded release), sorted by name, each with its current release,
// known-good mark, guard state and last verdict; ?state= keeps the apps in
// that state.
func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	if err := tenant.Validate(p.Tenant); err != nil {
		writeProblem(w, r, http.StatusForbidden, "forbidden", "the principal's tenant is not a valid name")
		return
	}
	state := r.URL.Query().Get("state")
	if state != "" && !slices.Contains(appStates, state) {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", fmt.Sprintf("state %q: want one of %v", state, appStates))
		return
	}
	if s.deps.Releases == nil || s.deps.Guards == nil {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", "this server does not guard releases")
		return
	}
	if ok, reason := s.authorize(ctx, p, "app.read", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	names, err := s.deps.Releases.Apps(ctx, p.Tenant)
	if err != nil {
		s.internal(w, r, "list apps", err)
		return
	}
	apps := make([]AppSummary, len(names))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(appReads)
	for i, name := range names {
		g.Go(func() error {
			a, err := s.appSummary(gctx, p.Tenant, name)
			apps[i] = a
			return err
		})
	}
	if err := g.Wait(); err != nil {
		s.internal(w, r, "list apps", err)
		return
	}
	out := AppList{Apps: []AppSummary{}}
	for _, a := range apps {
		if state == "" || a.State == state {
			out.Apps = append(out.Apps, a)
		}
	}
	slices.SortFunc(out.Apps, func(a, b AppSummary) int { return strings.Compare(a.App, b.App) })
	writeJSON(w, http.StatusOK, out)
}

// appSummary reads one app of a tenant: its releases, its guard and its
// newest completed scan.
func (s *Server) appSummary(ctx context.Context, tenantName, app string) (AppSummary, error) {
	out := AppSummary{App: app, State: StateUnguarded}
	list, err := s.deps.Releases.List(ctx, tenantName, app)
	if err != nil {
		return out, fmt.Errorf("list releases of %s: %w", app, err)
	}
	st, err := s.deps.Guards.Status(ctx, tenantName, app)
	switch {
	case errors.Is(err, control.ErrNoGuard):
	case err != nil:
		return out, fmt.Errorf("read guard of %s: %w", app, err)
	default:
		out.State = guardState(st)
	}
	lc, err := s.deps.Releases.Lifecycle(ctx, tenantName, app)
	if err != nil {
		return out, fmt.Errorf("read lifecycle of %s: %w", app, err)
	}
	if lc.State == releases.StateIdle || lc.State == releases.StateArchived {
		since := lc.At
		out.State, out.Since = lc.State, &since
	}
	if cur := currentRelease(list, st.Guard.Release.ID); cur != nil {
		out.Release = &AppRelease{ID: cur.ID, Artifact: cur.Artifact, ScanID: cur.ScanID, Verdict: cur.Verdict, RecordedAt: cur.RecordedAt}
	}
	for _, rel := range slices.Backward(list) {
		if rel.KnownGood != nil {
			out.KnownGood = rel.ID
			break
		}
	}
	if out.LastScan, err = s.lastScan(ctx, tenantName, app); err != nil {
		return out, err
	}
	return out, nil
}

// guardState names where a guard stands: a rollback running (or the guard
// awaiting the release rolled back to) first, then frozen, then breached
// (breaches found and not yet cleared), else watching.
func guardState(st control.GuardStatus) string {
	switch {
	case st.RollbackRunning || st.Guard.AwaitingRelease:
		return StateRollingBack
	case st.Guard.Frozen:
		return StateFrozen
	case st.Guard.Breaches > 0:
		return StateBreached
	default:
		return StateWatching
	}
}

// currentRelease is the release the guard watches, else the newest
// recorded one (list is oldest first); nil for none.
func currentRelease(list []releases.Status, watched string) *releases.Status {
	for i := range list {
		if watched != "" && list[i].ID == watched {
			return &list[i]
		}
	}
	if len(list) == 0 {
		return nil
	}
	return &list[len(list)-1]
}

// lastScan is the app's newest completed scan (control.Scans.Last).
func (s *Server) lastScan(ctx context.Context, tenantName, app string) (*AppScan, error) {
	last, err := s.scans.Last(ctx, tenantName, app)
	if err != nil || last == nil {
		return nil, err
	}
	return &AppScan{ScanID: last.ScanID, Verdict: report.Verdict(last.Verdict), At: last.At}, nil
}
