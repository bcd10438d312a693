package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// EventsSubjectPrefix is where verdict events go:
// tollgate.events.verdict.<tenant token>.<app>.
const EventsSubjectPrefix = "tollgate.events.verdict"

// VerdictEvent says a live release's verdict got worse after a re-match.
type VerdictEvent struct {
	Type      string          `json:"type"` // "verdict.worsened"
	Tenant    string          `json:"tenant"`
	App       string          `json:"app"`
	ReleaseID string          `json:"release_id"`
	ScanID    string          `json:"scan_id"`
	Previous  report.Verdict  `json:"previous"`
	Verdict   report.Verdict  `json:"verdict"`
	Reasons   []report.Reason `json:"reasons"`
	VulnDB    report.VulnDB   `json:"vulndb"`
	Evidence  report.Evidence `json:"evidence"`
	At        time.Time       `json:"at"`
}

// Rematch holds what the re-matching activities use.
type Rematch struct {
	Releases *releases.Store
	Evidence storage.Evidence
	Lister   storage.Lister
	// Publisher publishes verdict events (NATS); WebhookURL, when set,
	// also receives each event, signed like the deploy webhook
	// (deployers.SignRequest; receivers check it with
	// deployers.VerifySignature).
	Publisher     Publisher
	WebhookURL    string
	WebhookSecret []byte
	HTTP          *http.Client
	// Policy decides a release again as a scan's deep stage is decided
	// (*Activities is one).
	Policy RematchPolicy
	// Exceptions are the accepted risks a decision applies; nil: none.
	Exceptions *exceptions.Store
	Logger     *slog.Logger
}

// RematchPolicy evaluates a stage's policy; *Activities is one.
type RematchPolicy interface {
	EvaluatePolicy(ctx context.Context, req workflows.PolicyRequest) (report.Decision, error)
}

var _ RematchPolicy = (*Activities)(nil)

// Register registers the re-matching activities.
func (r *Rematch) Register(w worker.Registry) {
	w.RegisterActivityWithOptions(r.Plan, activity.RegisterOptions{Name: workflows.ActivityRematchPlan})
	w.RegisterActivityWithOptions(r.Record, activity.RegisterOptions{Name: workflows.ActivityRecordRematch})
	w.RegisterActivityWithOptions(r.Page, activity.RegisterOptions{Name: workflows.ActivityRematchPage})
	w.RegisterActivityWithOptions(r.Target, activity.RegisterOptions{Name: workflows.ActivityRematchTarget})
	w.RegisterActivityWithOptions(r.Decide, activity.RegisterOptions{Name: workflows.ActivityDecideRematch})
}

// ErrTypeBadRematch is the non-retryable error type of a re-match whose
// stored records are malformed or name an invalid tenant or app.
const ErrTypeBadRematch = "BadRematch"

// liveApps lists the apps with a recorded release, of one tenant (every
// tenant when empty), in (tenant, app) order. Names that are not valid are
// skipped: no key built from them is ever read.
func (r *Rematch) liveApps(ctx context.Context, tenantName string) ([]workflows.RematchRef, error) {
	prefix := "apps/"
	if tenantName != "" {
		if err := tenant.Validate(tenantName); err != nil {
			return nil, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRematch, err)
		}
		prefix += tenantName + "/"
	}
	keys, err := r.Lister.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list releases under %s: %w", prefix, err)
	}
	var apps []workflows.RematchRef
	for _, k := range keys {
		if ref, ok := releaseApp(k); ok {
			apps = append(apps, ref)
		}
	}
	slices.SortFunc(apps, compareRefs)
	return slices.Compact(apps), nil
}

// releaseApp is the app whose release record key is
// apps/<tenant>/<app>/releases/<id>/release.json; ok is false for any other
// key, and for names that are not a valid tenant and app.
func releaseApp(key string) (workflows.RematchRef, bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 6 || parts[0] != "apps" || parts[3] != "releases" || parts[4] == "" || parts[5] != "release.json" {
		return workflows.RematchRef{}, false
	}
	if !tenant.Valid(parts[1]) || releases.ValidName("app", parts[2]) != nil {
		return workflows.RematchRef{}, false
	}
	return workflows.RematchRef{Tenant: parts[1], App: parts[2]}, true
}

func compareRefs(a, b workflows.RematchRef) int {
	return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.App, b.App))
}

// Page lists up to req.Limit apps after req.After: names only, so that the
// page stays small whatever the apps hold.
func (r *Rematch) Page(ctx context.Context, req workflows.RematchPageRequest) (workflows.RematchPage, error) {
	apps, err := r.liveApps(ctx, req.Tenant)
	if err != nil {
		return workflows.RematchPage{}, err
	}
	limit := max(req.Limit, 1)
	if req.After != (workflows.RematchRef{}) {
		i, _ := slices.BinarySearchFunc(apps, req.After, compareRefs)
		for i < len(apps) && compareRefs(apps[i], req.After) <= 0 {
			i++
		}
		apps = apps[i:]
	}
	page := workflows.RematchPage{Apps: apps[:min(limit, len(apps))], More: len(apps) > limit}
	if page.Apps == nil {
		page.Apps = []workflows.RematchRef{}
	}
	return page, nil
}

// Target resolves an app's live release (its newest) to references: its
// report and SBOM, and the DB and verdict of its last match (the newest
// re-match's, else the scan's). No SBOM (the deep stage never ran) leaves
// the target's SBOM empty: nothing to match.
func (r *Rematch) Target(ctx context.Context, ref workflows.RematchRef) (workflows.RematchTarget, error) {
	out := workflows.RematchTarget{Tenant: ref.Tenant, App: ref.App}
	if err := tenant.Validate(ref.Tenant); err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRematch, err)
	}
	if err := releases.ValidName("app", ref.App); err != nil {
		return out, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRematch, err)
	}
	rels, err := r.Releases.List(ctx, ref.Tenant, ref.App)
	if err != nil || len(rels) == 0 {
		return out, err
	}
	live := rels[len(rels)-1]
	out.ReleaseID, out.ScanID, out.Verdict = live.ID, live.ScanID, live.Verdict
	rep, obj, err := r.readReport(ctx, live.ScanID, storage.Object{})
	if err != nil {
		return out, err
	}
	out.Report, out.VulnDB = obj, rep.VulnDB
	i := slices.IndexFunc(rep.Evidence, func(e report.Evidence) bool { return e.Name == "sbom.cdx.json" })
	if i < 0 {
		return out, nil
	}
	ev := rep.Evidence[i]
	out.SBOM = storage.Object{Bucket: ev.Bucket, Key: ev.Key, VersionID: ev.VersionID, SHA256: ev.SHA256}
	last, key, err := r.lastRematch(ctx, ref.Tenant, ref.App, live.ID)
	if err != nil || key == "" {
		return out, err
	}
	out.LastRematch, out.VulnDB, out.Verdict = key, last.VulnDB, last.Verdict
	return out, nil
}

// readReport reads and decodes a scan's report; want, when it has a digest,
// is the object the caller was told of, and the report must be that one.
func (r *Rematch) readReport(ctx context.Context, scanID string, want storage.Object) (report.Report, storage.Object, error) {
	key := path.Join("scans", scanID, "report.json")
	raw, obj, err := r.Evidence.Get(ctx, key)
	if err != nil {
		return report.Report{}, storage.Object{}, fmt.Errorf("read report of scan %s: %w", scanID, err)
	}
	if want.SHA256 != "" && obj.SHA256 != want.SHA256 {
		err := fmt.Errorf("report of scan %s has digest %s, not %s", scanID, obj.SHA256, want.SHA256)
		return report.Report{}, storage.Object{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRematch, err)
	}
	var rep report.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		err = fmt.Errorf("decode report of scan %s: %w", scanID, err)
		return report.Report{}, storage.Object{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRematch, err)
	}
	return rep, obj, nil
}

// lastRematch reads a release's newest re-match record, and its key ("" when
// there is none).
func (r *Rematch) lastRematch(ctx context.Context, tenant, app, release string) (workflows.RematchRecord, string, error) {
	keys, err := r.Lister.List(ctx, releases.RematchPrefix(tenant, app, release))
	if err != nil {
		return workflows.RematchRecord{}, "", fmt.Errorf("list rematches of release %s of %s: %w", release, app, err)
	}
	if len(keys) == 0 {
		return workflows.RematchRecord{}, "", nil
	}
	key := keys[len(keys)-1]
	rec, err := r.readRematch(ctx, key)
	return rec, key, err
}

func (r *Rematch) readRematch(ctx context.Context, key string) (workflows.RematchRecord, error) {
	raw, _, err := r.Evidence.Get(ctx, key)
	if err != nil {
		return workflows.RematchRecord{}, fmt.Errorf("read %s: %w", key, err)
	}
	var rec workflows.RematchRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return workflows.RematchRecord{}, fmt.Errorf("decode %s: %w", key, err)
	}
	return rec, nil
}

// Decide decides a release's verdict again and records it when there is
// something new (a new match, or a changed verdict). It loads what the
// decision needs by reference: the scan's packages and IaC findings from its
// report, the last match's findings when the worker skipped the SBOM, and
// the exceptions in force at req.At. Only the outcome goes back to the
// workflow.
func (r *Rematch) Decide(ctx context.Context, req workflows.RematchDecideRequest) (workflows.RematchOutcome, error) {
	t := req.Target
	rep, _, err := r.readReport(ctx, t.ScanID, t.Report)
	if err != nil {
		return workflows.RematchOutcome{}, err
	}
	found, db := deepFindings(rep), t.VulnDB
	switch {
	case req.Matched:
		found.Vulnerabilities = req.Vulnerabilities
		if req.VulnDB != nil {
			db = *req.VulnDB
		}
	case t.LastRematch != "":
		last, err := r.readRematch(ctx, t.LastRematch)
		if err != nil {
			return workflows.RematchOutcome{}, err
		}
		found.Vulnerabilities = last.Vulnerabilities
	}
	var excs []exceptions.Exception
	if r.Exceptions != nil {
		if excs, err = r.Exceptions.InForce(ctx, t.Tenant, t.App, req.At); err != nil {
			return workflows.RematchOutcome{}, fmt.Errorf("load exceptions of %s/%s: %w", t.Tenant, t.App, err)
		}
	}
	dec, err := r.Policy.EvaluatePolicy(ctx, workflows.PolicyRequest{
		Stage: report.StageDeep, Scan: workflows.ScanRequest{ScanID: t.ScanID, App: t.App, Tenant: t.Tenant},
		Results:    []tasks.Result{{Kind: tasks.KindDeep, Findings: found, VulnDB: &db}},
		Exceptions: excs, Now: req.At,
	})
	if err != nil {
		return workflows.RematchOutcome{}, err
	}
	rec := workflows.RematchRecord{
		Schema: workflows.RematchSchema, Tenant: t.Tenant, App: t.App, ReleaseID: t.ReleaseID, ScanID: t.ScanID,
		Matched: req.Matched, VulnDB: db, Previous: t.Verdict, Verdict: dec.Verdict,
		Worse: report.Worse(dec.Verdict, t.Verdict) != t.Verdict, Reasons: dec.Reasons, Exceptions: dec.Exceptions,
		Vulnerabilities: found.Vulnerabilities, At: req.At,
	}
	if rec.Vulnerabilities == nil {
		rec.Vulnerabilities = []report.Vulnerability{}
	}
	out := workflows.RematchOutcome{Matched: rec.Matched, Previous: rec.Previous, Verdict: rec.Verdict, Worse: rec.Worse}
	if !rec.Matched && rec.Verdict == rec.Previous {
		return out, nil // nothing new to record
	}
	if err := r.Record(ctx, rec); err != nil {
		return out, err
	}
	out.Recorded = true
	return out, nil
}

// Plan lists the live release of every app (its newest), with its stored
// SBOM, the findings and DB of its last match, and its last verdict.
func (r *Rematch) Plan(ctx context.Context) ([]workflows.RematchItem, error) {
	keys, err := r.Lister.List(ctx, "apps/")
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	apps := map[[2]string]bool{}
	for _, k := range keys {
		// apps/<tenant>/<app>/releases/<id>/release.json
		parts := strings.Split(k, "/")
		if len(parts) == 6 && parts[3] == "releases" && parts[5] == "release.json" {
			apps[[2]string{parts[1], parts[2]}] = true
		}
	}
	var out []workflows.RematchItem
	for _, ta := range slices.SortedFunc(func(yield func([2]string) bool) {
		for a := range apps {
			if !yield(a) {
				return
			}
		}
	}, func(a, b [2]string) int { return cmp.Or(strings.Compare(a[0], b[0]), strings.Compare(a[1], b[1])) }) {
		item, ok, err := r.item(ctx, ta[0], ta[1])
		if err != nil {
			activity.GetLogger(ctx).Warn("skip app in rematch", "tenant", ta[0], "app", ta[1], "error", err)
			continue
		}
		if ok {
			out = append(out, item)
		}
	}
	return out, nil
}

// deepFindings are the findings of a report that a re-match decides the
// deep policy on again: its packages, vulnerabilities and IaC
// misconfigurations.
func deepFindings(rep report.Report) report.Findings {
	return report.Findings{Packages: rep.Packages, Vulnerabilities: rep.Vulnerabilities, Misconfigurations: rep.Misconfigurations}
}

// item describes an app's live release for a re-match; ok is false when
// there is nothing to match (no SBOM: the deep stage never ran).
func (r *Rematch) item(ctx context.Context, tenant, app string) (workflows.RematchItem, bool, error) {
	rels, err := r.Releases.List(ctx, tenant, app)
	if err != nil || len(rels) == 0 {
		return workflows.RematchItem{}, false, err
	}
	live := rels[len(rels)-1]
	raw, _, err := r.Evidence.Get(ctx, path.Join("scans", live.ScanID, "report.json"))
	if err != nil {
		return workflows.RematchItem{}, false, fmt.Errorf("read report of scan %s: %w", live.ScanID, err)
	}
	var rep report.Report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return workflows.RematchItem{}, false, fmt.Errorf("decode report of scan %s: %w", live.ScanID, err)
	}
	i := slices.IndexFunc(rep.Evidence, func(e report.Evidence) bool { return e.Name == "sbom.cdx.json" })
	if i < 0 {
		return workflows.RematchItem{}, false, nil
	}
	ev := rep.Evidence[i]
	it := workflows.RematchItem{
		Tenant: tenant, App: app, ReleaseID: live.ID, ScanID: live.ScanID,
		SBOM:   storage.Object{Bucket: ev.Bucket, Key: ev.Key, VersionID: ev.VersionID, SHA256: ev.SHA256},
		VulnDB: rep.VulnDB, Findings: deepFindings(rep), Verdict: live.Verdict,
	}
	// The last re-match, if any, is what the release stands on now.
	keys, err := r.Lister.List(ctx, releases.RematchPrefix(tenant, app, live.ID))
	if err != nil {
		return workflows.RematchItem{}, false, fmt.Errorf("list rematches of release %s of %s: %w", live.ID, app, err)
	}
	if len(keys) > 0 {
		raw, _, err := r.Evidence.Get(ctx, keys[len(keys)-1])
		if err != nil {
			return workflows.RematchItem{}, false, fmt.Errorf("read %s: %w", keys[len(keys)-1], err)
		}
		var last workflows.RematchRecord
		if err := json.Unmarshal(raw, &last); err != nil {
			return workflows.RematchItem{}, false, fmt.Errorf("decode %s: %w", keys[len(keys)-1], err)
		}
		it.VulnDB, it.Vulnerabilities, it.Verdict = last.VulnDB, last.Vulnerabilities, last.Verdict
	}
	return it, true, nil
}

// Record stores a re-match as evidence and, when the verdict got worse,
// emits the event.
func (r *Rematch) Record(ctx context.Context, rec workflows.RematchRecord) error {
	doc, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode rematch of release %s: %w", rec.ReleaseID, err)
	}
	// Keys sort by time; the digest keeps a retried activity idempotent.
	sum := sha256.Sum256(doc)
	key := releases.RematchPrefix(rec.Tenant, rec.App, rec.ReleaseID) + rec.At.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(sum[:4]) + ".json"
	obj, err := r.Evidence.Put(ctx, key, "application/json", doc)
	if err != nil && !errors.Is(err, storage.ErrImmutable) {
		return fmt.Errorf("store rematch of release %s: %w", rec.ReleaseID, err)
	}
	if !rec.Worse {
		return nil
	}
	ev := VerdictEvent{
		Type: "verdict.worsened", Tenant: rec.Tenant, App: rec.App, ReleaseID: rec.ReleaseID, ScanID: rec.ScanID,
		Previous: rec.Previous, Verdict: rec.Verdict, Reasons: rec.Reasons, VulnDB: rec.VulnDB, At: rec.At,
		Evidence: report.Evidence{Name: "rematch.json", Bucket: obj.Bucket, Key: key, VersionID: obj.VersionID, SHA256: hex.EncodeToString(sha256Of(doc))},
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode verdict event: %w", err)
	}
	subject := EventsSubjectPrefix + "." + tasks.TenantToken(rec.Tenant) + "." + rec.App
	activity.GetLogger(ctx).Info("verdict worsened", "tenant", rec.Tenant, "app", rec.App, "release", rec.ReleaseID, "previous", rec.Previous, "verdict", rec.Verdict)
	return r.events().Emit(ctx, subject, "verdict/"+key, body)
}

// events is where the re-match's events go.
func (r *Rematch) events() *Events {
	return &Events{Publisher: r.Publisher, WebhookURL: r.WebhookURL, WebhookSecret: r.WebhookSecret, HTTP: r.HTTP, Logger: r.Logger}
}

func sha256Of(b []byte) []byte { s := sha256.Sum256(b); return s[:] }

// ValidateEventsWebhook checks the events webhook's configuration: an
// absolute http(s) URL and a signing secret of at least
// deployers.MinSecretLen bytes (a short secret is guessable offline from one
// signed event). An empty URL (no webhook) is valid.
func ValidateEventsWebhook(raw string, secret []byte) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("events webhook url %s: want an absolute http(s) url", redactURL(raw))
	}
	if len(secret) < deployers.MinSecretLen {
		return fmt.Errorf("events webhook %s: secret is %d bytes, want at least %d", redactURL(raw), len(secret), deployers.MinSecretLen)
	}
	return nil
}

// redactURL drops user info, query and fragment, which may carry
// credentials, so that a URL can go into errors and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// unwrapURLError drops the *url.Error wrapper the HTTP client adds, which
// prints the full URL (query included); the caller names the redacted one.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
