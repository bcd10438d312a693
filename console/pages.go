package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tollgate/tollgate/api"
)

// appStates are the states GET /v1/apps filters by: the guard's, and the
// idle-app TTL's idle and archived.
var appStates = []string{api.StateWatching, api.StateBreached, api.StateFrozen, api.StateRollingBack, api.StateUnguarded, api.StateIdle, api.StateArchived}

func (c *Console) appsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	state := r.URL.Query().Get("state")
	path := "/v1/apps"
	if state != "" {
		path += "?state=" + url.QueryEscape(state)
	}
	var list api.AppList
	if !c.get(w, r, ss, path, &list) {
		return
	}
	c.render(w, r, ss, http.StatusOK, "apps", page{Title: "Apps", Nav: "apps",
		Data: struct {
			Apps   []api.AppSummary
			State  string
			States []string
		}{list.Apps, state, appStates}})
}

// appData is the app page: its releases, guard (nil: none yet), chart.
type appData struct {
	App      string
	Releases []release
	Guard    *guardStatus
	Charts   []chart
	Outcome  *rollbackView
	// Decisions are the guard's, newest first.
	Decisions []decision
}

// maxDecisions bounds the decisions the app page lists.
const maxDecisions = 20

func (c *Console) appPage(w http.ResponseWriter, r *http.Request, ss *session) {
	d, ok := c.appData(w, r, ss)
	if !ok {
		return
	}
	c.render(w, r, ss, http.StatusOK, "app", page{Title: d.App, Nav: "apps", Data: d})
}

// rollbackFragment is #rollback-outcome alone, which htmx polls while the
// rollback runs.
func (c *Console) rollbackFragment(w http.ResponseWriter, r *http.Request, ss *session) {
	d, ok := c.appData(w, r, ss)
	if !ok {
		return
	}
	c.fragment(w, r, ss, "app", "rollback-outcome", page{Data: d})
}

func (c *Console) appData(w http.ResponseWriter, r *http.Request, ss *session) (appData, bool) {
	app := r.PathValue("app")
	base := "/v1/apps/" + url.PathEscape(app)
	d := appData{App: app}
	var rels releasesList
	if !c.get(w, r, ss, base+"/releases", &rels) {
		return d, false
	}
	d.Releases = rels.Releases
	slices.SortStableFunc(d.Releases, func(a, b release) int { return strings.Compare(b.RecordedAt, a.RecordedAt) })
	a := c.call(r, ss.token, http.MethodGet, base+"/guard", nil)
	if a.status != http.StatusNotFound { // 404: no guard until a release is recorded
		var g guardStatus
		if !c.decode(w, r, ss, a, &g) {
			return d, false
		}
		d.Guard = &g
		d.Charts = healthCharts(&g)
		d.Outcome = newRollbackView(&g, d.Releases)
		d.Decisions = slices.Clone(g.Guard.Decisions)
		slices.Reverse(d.Decisions)
		d.Decisions = d.Decisions[:min(len(d.Decisions), maxDecisions)]
	}
	return d, true
}

// rollbackView is the latest rollback as #rollback-outcome shows it.
type rollbackView struct {
	ID, Status, Outcome, Phase, From, To string
	Running                              bool
	Evidence                             []evidenceLink
}

type evidenceLink struct{ Label, Href string }

func newRollbackView(g *guardStatus, rels []release) *rollbackView {
	rb := g.Rollback
	if rb == nil {
		return nil
	}
	v := &rollbackView{ID: rb.RollbackID, Outcome: rb.Outcome, Phase: rb.Phase, Running: g.RollbackRunning}
	switch {
	case g.RollbackRunning:
		v.Status = "running"
	case rb.Outcome == "recovered" || rb.Outcome == "unconfirmed":
		v.Status = "succeeded"
	default:
		v.Status = "failed"
	}
	if rb.Target != nil {
		v.To = rb.Target.Release.ID
		if rb.Target.Release.ScanID != "" {
			v.Evidence = append(v.Evidence, evidenceLink{"scan of " + v.To, "/console/scans/" + url.PathEscape(rb.Target.Release.ScanID)})
		}
	}
	// The release rolled back from: the newest recorded one that is not
	// the target.
	for _, rel := range rels {
		if rel.ID != v.To {
			v.From = rel.ID
			if rel.ScanID != "" {
				v.Evidence = append(v.Evidence, evidenceLink{"scan of " + v.From, "/console/scans/" + url.PathEscape(rel.ScanID)})
			}
			break
		}
	}
	return v
}

func (c *Console) rollback(w http.ResponseWriter, r *http.Request, ss *session) {
	app := r.PathValue("app")
	body := api.RollbackIn{To: r.PostFormValue("to"), Reason: r.PostFormValue("reason")}
	c.post(w, r, ss, "/v1/apps/"+url.PathEscape(app)+"/rollback", body, "/console/apps/"+url.PathEscape(app)+"#rollback-outcome")
}

func (c *Console) freeze(action string) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, ss *session) {
		app := r.PathValue("app")
		body := api.FreezeIn{Reason: r.PostFormValue("reason")}
		c.post(w, r, ss, "/v1/apps/"+url.PathEscape(app)+"/"+action, body, "/console/apps/"+url.PathEscape(app))
	}
}

// post sends a form's action to the API and, if it is accepted, sends the
// browser on to next (post/redirect/get); a refusal is the error page with
// the API's status.
func (c *Console) post(w http.ResponseWriter, r *http.Request, ss *session, path string, body any, next string) {
	a := c.call(r, ss.token, http.MethodPost, path, body)
	if !a.ok() {
		c.refused(w, r, ss, a)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) scansPage(w http.ResponseWriter, r *http.Request, ss *session) {
	q := url.Values{}
	for _, k := range []string{"app", "verdict", "page_token"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	var list scansList
	if !c.get(w, r, ss, "/v1/scans?"+q.Encode(), &list) {
		return
	}
	next := ""
	if list.NextPageToken != "" {
		q.Set("page_token", list.NextPageToken)
		next = "/console/scans?" + q.Encode()
	}
	c.render(w, r, ss, http.StatusOK, "scans", page{Title: "Scans", Nav: "scans",
		Data: struct {
			Scans []scanSummary
			Next  string
		}{list.Scans, next}})
}

// reportFormats are the downloads of a finished scan.
var reportFormats = []string{"json", "sarif", "cyclonedx", "spdx"}

// scanData is the scan page.
type scanData struct {
	Scan     scanStatus
	Report   *scanReport
	Touched  []string
	Verify   *verifyResult
	Formats  []string
	Reasons  []reason
	Review   *reviewView
	Findings []findingGroup
}

type reviewView struct {
	Info        *reviewInfo
	Disabled    bool
	DisabledWhy string
}

type findingGroup struct {
	Kind, Title string
	Items       []string
}

func (c *Console) scanPage(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	base := "/v1/scans/" + url.PathEscape(id)
	d := scanData{Formats: reportFormats}
	if !c.get(w, r, ss, base, &d.Scan) {
		return
	}
	d.Reasons = d.Scan.Reasons
	if d.Scan.Status == "completed" {
		var rep scanReport
		if !c.get(w, r, ss, base+"/report?format=json", &rep) {
			return
		}
		d.Report = &rep
		d.Reasons = cmpReasons(d.Reasons, rep.Reasons)
		d.Findings = findingGroups(&rep)
		d.Touched = touched(rep.Touches)
		d.Verify = c.verifyScan(r, ss, base+"/verify")
	}
	if rv := d.Scan.Review; rv != nil && d.Scan.Status == "running" && rv.Outcome == "" {
		if len(d.Reasons) == 0 {
			d.Reasons = rv.Reasons
		}
		d.Review = reviewFor(&ss.who, rv)
	}
	c.render(w, r, ss, http.StatusOK, "scan", page{Title: "Scan " + id, Nav: "scans", Data: d})
}

// verifyScan is the scan's evidence check. A refusal (a server without a
// verification key answers 501) does not hide the rest of the scan: the
// check shows as not verified, with the API's detail.
func (c *Console) verifyScan(r *http.Request, ss *session, path string) *verifyResult {
	a := c.call(r, ss.token, http.MethodGet, path, nil)
	var v verifyResult
	if !a.ok() {
		v.Unavailable = a.detail()
		return &v
	}
	if err := json.Unmarshal(a.body, &v); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: decode the evidence check", "path", path, "err", err)
		v.Unavailable = "the API's answer could not be read"
	}
	return &v
}

func cmpReasons(a, b []reason) []reason {
	if len(a) > 0 {
		return a
	}
	return b
}

// reviewFor disables the review buttons for a principal the API would
// refuse anyway: one without review.decide, or the scan's submitter.
func reviewFor(who *whoami, rv *reviewInfo) *reviewView {
	v := &reviewView{Info: rv}
	p := who.Principal
	switch {
	case !who.Can["review.decide"]:
		v.Disabled, v.DisabledWhy = true, "Your roles may not decide reviews (the reviewer role may)."
	case rv.Submitter != "" && rv.Submitter == p.Name,
		rv.SubmitterPerson != "" && rv.SubmitterPerson == p.Person:
		v.Disabled, v.DisabledWhy = true, "You submitted this scan: someone else must review it."
	case rv.Author != "" && p.Person != "" && rv.Author == p.Person:
		v.Disabled, v.DisabledWhy = true, "You wrote this change: someone else must review it."
	}
	return v
}

// touched lists each touched file once, with the sensitive areas it touches.
func touched(m map[string][]string) []string {
	areas := map[string][]string{}
	for area, files := range m {
		for _, f := range files {
			areas[f] = append(areas[f], area)
		}
	}
	var out []string
	for f, as := range areas {
		slices.Sort(as)
		out = append(out, f+" ("+strings.Join(as, ", ")+")")
	}
	slices.Sort(out)
	return out
}

func findingGroups(rep *scanReport) []findingGroup {
	var secrets, vulns, misconf, code, manifest []string
	for _, s := range rep.Secrets {
		secrets = append(secrets, s.Rule+" in "+loc(s.File, s.Line))
	}
	for _, v := range rep.Vulnerabilities {
		s := v.Severity + " " + v.ID + " in " + v.Package + " " + v.Version
		if len(v.FixedVersions) > 0 {
			s += " (fixed in " + strings.Join(v.FixedVersions, ", ") + ")"
		}
		vulns = append(vulns, s)
	}
	for _, m := range rep.Misconfigurations {
		misconf = append(misconf, m.Severity+" "+m.ID+" "+m.Title+" in "+loc(m.File, m.StartLine))
	}
	for _, wk := range rep.Weaknesses {
		s := wk.Severity + " " + wk.Rule
		if len(wk.CWE) > 0 {
			s += " (" + strings.Join(wk.CWE, ", ") + ")"
		}
		code = append(code, s+" in "+loc(wk.File, wk.Line)+": "+wk.Message)
	}
	if m := rep.Manifest; m != nil {
		switch {
		case !m.Present:
			manifest = append(manifest, "no permission manifest")
		case m.Valid:
			manifest = append(manifest, m.File+" is valid")
		}
		for _, e := range m.Errors {
			manifest = append(manifest, m.File+": "+e.Path+": "+e.Message)
		}
	}
	return []findingGroup{
		{"secrets", "Secrets", secrets},
		{"vulnerabilities", "Vulnerabilities", vulns},
		{"misconfigurations", "Misconfigurations", misconf},
		{"code", "Code weaknesses", code},
		{"manifest", "Manifest", manifest},
	}
}

func loc(file string, line int) string {
	if line > 0 {
		return file + ":" + strconv.Itoa(line)
	}
	return file
}

// download passes a report of the API through, as an attachment.
func (c *Console) download(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	format := r.URL.Query().Get("format")
	if !slices.Contains(reportFormats, format) {
		c.renderError(w, r, ss, http.StatusBadRequest, "format must be one of "+strings.Join(reportFormats, ", "))
		return
	}
	a := c.call(r, ss.token, http.MethodGet, "/v1/scans/"+url.PathEscape(id)+"/report?format="+format, nil)
	if !a.ok() {
		c.refused(w, r, ss, a)
		return
	}
	w.Header().Set("Content-Type", a.header.Get("Content-Type"))
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeName(id)+"-"+format+`.json"`)
	w.Write(a.body)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, s)
}

func (c *Console) review(w http.ResponseWriter, r *http.Request, ss *session) {
	id := r.PathValue("id")
	body := api.ReviewRequest{Decision: r.PostFormValue("decision"), Reason: r.PostFormValue("reason")}
	c.post(w, r, ss, "/v1/scans/"+url.PathEscape(id)+"/review", body, "/console/scans/"+url.PathEscape(id))
}

func (c *Console) reviewPage(w http.ResponseWriter, r *http.Request, ss *session) {
	var list scansList
	if !c.get(w, r, ss, "/v1/scans?review=pending&order=oldest", &list) {
		return
	}
	c.reviewDetails(r, ss, list.Scans)
	c.render(w, r, ss, http.StatusOK, "review", page{Title: "Review queue", Nav: "review", Data: list.Scans})
}

// reviewDetailRows bounds the queue's rows whose review is read, and
// reviewReads the reads at once.
const (
	reviewDetailRows = 50
	reviewReads      = 4
)

// reviewDetails fills each waiting scan's touched files and finding counts
// from its status (GET /v1/scans/{id}): a scan waiting for review has no
// report yet, so they are its review's reasons (each names the sensitive
// area and the files touching it) and their count per policy. A row whose
// status cannot be read keeps its dashes.
func (c *Console) reviewDetails(r *http.Request, ss *session, rows []scanSummary) {
	var g errgroup.Group
	g.SetLimit(reviewReads)
	for i := range rows[:min(len(rows), reviewDetailRows)] {
		g.Go(func() error {
			a := c.call(r, ss.token, http.MethodGet, "/v1/scans/"+url.PathEscape(rows[i].ScanID), nil)
			var st scanStatus
			if !a.ok() || json.Unmarshal(a.body, &st) != nil || st.Review == nil {
				return nil
			}
			rows[i].Findings = map[string]int{}
			for _, rs := range st.Review.Reasons {
				rows[i].Touched = append(rows[i].Touched, rs.Message)
				rows[i].Findings[rs.Policy]++
			}
			return nil
		})
	}
	g.Wait()
}

// expiringWithin is how soon an exception's end makes it "expiring".
const expiringWithin = 7 * 24 * time.Hour

func (c *Console) exceptionsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	var list exceptionsList
	if !c.get(w, r, ss, "/v1/exceptions", &list) {
		return
	}
	now := c.cfg.Now()
	var d struct {
		Active, Expiring, Expired, Revoked []exception
		MinDate, MaxDate                   string
	}
	for _, e := range list.Exceptions {
		switch {
		case e.Revoked != nil:
			d.Revoked = append(d.Revoked, e)
		case !e.ExpiresAt.After(now):
			d.Expired = append(d.Expired, e)
		case e.ExpiresAt.Before(now.Add(expiringWithin)):
			d.Expiring = append(d.Expiring, e)
		default:
			d.Active = append(d.Active, e)
		}
	}
	d.MinDate, d.MaxDate = now.AddDate(0, 0, 1).Format(time.DateOnly), now.AddDate(1, 0, 0).Format(time.DateOnly)
	c.render(w, r, ss, http.StatusOK, "exceptions", page{Title: "Exceptions", Nav: "exceptions", Data: d})
}

func (c *Console) createException(w http.ResponseWriter, r *http.Request, ss *session) {
	f := r.PostFormValue
	day, err := time.Parse(time.DateOnly, f("expires"))
	if err != nil {
		c.renderError(w, r, ss, http.StatusBadRequest, "expires must be a date (YYYY-MM-DD)")
		return
	}
	finding := map[string]string{}
	switch kind, value := f("kind"), strings.TrimSpace(f("value")); kind {
	case "vulnerability":
		finding["vulnerability"], finding["package"] = value, strings.TrimSpace(f("package"))
	case "secret_fingerprint", "weakness_fingerprint", "rule":
		finding[kind] = value
	default:
		c.renderError(w, r, ss, http.StatusBadRequest, "kind must be vulnerability, secret_fingerprint, weakness_fingerprint or rule")
		return
	}
	body := struct {
		Scope     string            `json:"scope"`
		App       string            `json:"app,omitempty"`
		Finding   map[string]string `json:"finding"`
		Reason    string            `json:"reason"`
		ExpiresAt time.Time         `json:"expires_at"`
	}{f("scope"), strings.TrimSpace(f("app")), finding, f("reason"), day.Add(24*time.Hour - time.Second).UTC()}
	c.post(w, r, ss, "/v1/exceptions", body, "/console/exceptions")
}

func (c *Console) revokeException(w http.ResponseWriter, r *http.Request, ss *session) {
	body := struct {
		Reason string `json:"reason"`
	}{r.PostFormValue("reason")}
	c.post(w, r, ss, "/v1/exceptions/"+url.PathEscape(r.PathValue("id"))+"/revoke", body, "/console/exceptions")
}

func (c *Console) poolsPage(w http.ResponseWriter, r *http.Request, ss *session) {
	var p poolsStatus
	if !c.get(w, r, ss, "/v1/pools", &p) {
		return
	}
	c.render(w, r, ss, http.StatusOK, "pools", page{Title: "Pools", Nav: "pools", Data: p})
}

// poolsFragment is the pools table alone, which htmx polls.
func (c *Console) poolsFragment(w http.ResponseWriter, r *http.Request, ss *session) {
	var p poolsStatus
	if !c.get(w, r, ss, "/v1/pools", &p) {
		return
	}
	c.fragment(w, r, ss, "pools", "pools-table", page{Data: p})
}
