package activities

import (
	"bytes"
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

	"github.com/nats-io/nats.go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
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
	Logger        *slog.Logger
}

// Register registers the re-matching activities.
func (r *Rematch) Register(w worker.Registry) {
	w.RegisterActivityWithOptions(r.Plan, activity.RegisterOptions{Name: workflows.ActivityRematchPlan})
	w.RegisterActivityWithOptions(r.Record, activity.RegisterOptions{Name: workflows.ActivityRecordRematch})
}

func rematchPrefix(tenant, app, release string) string {
	return path.Join("apps", tenant, app, "releases", release, "rematch") + "/"
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
		VulnDB: rep.VulnDB, Packages: rep.Packages, Vulnerabilities: rep.Vulnerabilities, Misconfigurations: rep.Misconfigurations,
		Verdict: live.Verdict,
	}
	// The last re-match, if any, is what the release stands on now.
	keys, err := r.Lister.List(ctx, rematchPrefix(tenant, app, live.ID))
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
	key := rematchPrefix(rec.Tenant, rec.App, rec.ReleaseID) + rec.At.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(sum[:4]) + ".json"
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
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(nats.MsgIdHdr, "verdict/"+key)
	pctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if _, err := r.Publisher.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publish verdict event to %s: %w", subject, err)
	}
	activity.GetLogger(ctx).Info("verdict worsened", "tenant", rec.Tenant, "app", rec.App, "release", rec.ReleaseID, "previous", rec.Previous, "verdict", rec.Verdict)
	if r.WebhookURL != "" {
		if err := r.postWebhook(ctx, body); err != nil {
			return err
		}
	}
	return nil
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

// webhookClient is r.HTTP (or a default client) that never follows a
// redirect: the signed event goes to the configured URL or nowhere, and a
// 3xx answer is a failed delivery.
func (r *Rematch) webhookClient() *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	if r.HTTP != nil {
		c2 := *r.HTTP
		c = &c2
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// postWebhook sends an event to the events webhook, signed; a non-2xx
// answer (a redirect too) fails the activity, which Temporal retries. The
// URL appears in errors and logs only redacted.
func (r *Rematch) postWebhook(ctx context.Context, body []byte) error {
	where := redactURL(r.WebhookURL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("events webhook %s: build request: %w", where, unwrapURLError(err))
	}
	req.Header.Set("Content-Type", "application/json")
	deployers.SignRequest(req.Header, r.WebhookSecret, body, time.Now())
	resp, err := r.webhookClient().Do(req)
	if err != nil {
		err = fmt.Errorf("events webhook %s: %w", where, unwrapURLError(err))
		orDiscard(r.Logger).WarnContext(ctx, "events webhook delivery failed", "url", where, "error", err)
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		err := fmt.Errorf("events webhook %s: %s", where, resp.Status)
		orDiscard(r.Logger).WarnContext(ctx, "events webhook refused the event", "url", where, "status", resp.StatusCode)
		return err
	}
	return nil
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
