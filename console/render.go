package console

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

// page is what every template gets.
type page struct {
	Title  string
	Nav    string // the nav link of the current page
	Who    *whoami
	CSRF   string
	Status int
	Error  string
	Data   any
}

// Can reports whether the signed-in principal may do action (GET /v1/whoami's can).
func (p page) Can(action string) bool { return p.Who != nil && p.Who.Can[action] }

// pageNames are the templates under templates/, each a "content" block in
// the layout.
var pageNames = []string{"signin", "error", "apps", "app", "scans", "scan", "review", "exceptions", "pools"}

var templateFuncs = template.FuncMap{
	"ago":   ago,
	"when":  when,
	"pct":   func(f float64) string { return fmt.Sprintf("%.2f%%", f*100) },
	"join":  strings.Join,
	"list":  func(v ...any) []any { return v },
	"short": func(s string) string { return s[:min(len(s), 12)] },
	"measure": func(m measurement) string {
		if m.Signal == "error_rate" {
			return fmt.Sprintf("error rate %.2f%% (threshold %.2f%%, window %s)", m.Value*100, m.Threshold*100, m.Window)
		}
		return fmt.Sprintf("%s %.3g (threshold %.3g, window %s)", m.Signal, m.Value, m.Threshold, m.Window)
	},
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: parse template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes the page in the layout, with status.
func (c *Console) render(w http.ResponseWriter, r *http.Request, ss *session, status int, name string, p page) {
	c.execute(w, r, ss, status, name, "layout", p)
}

// fragment writes one named template of a page alone (an htmx swap).
func (c *Console) fragment(w http.ResponseWriter, r *http.Request, ss *session, name, tmpl string, p page) {
	c.execute(w, r, ss, http.StatusOK, name, tmpl, p)
}

func (c *Console) execute(w http.ResponseWriter, r *http.Request, ss *session, status int, name, tmpl string, p page) {
	if ss != nil {
		p.Who, p.CSRF = &ss.who, ss.csrf
	}
	p.Status = status
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, tmpl, p); err != nil {
		c.cfg.Logger.ErrorContext(r.Context(), "console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError renders the error page: status and #error holding detail.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, ss *session, status int, detail string) {
	c.render(w, r, ss, status, "error", page{Title: http.StatusText(status), Error: detail})
}

// ago is how long before now an RFC 3339 time (string or time.Time) was.
func ago(v any) string {
	t, ok := asTime(v)
	if !ok {
		return ""
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < 0:
		return "in " + (-d).String()
	case d < time.Minute:
		return d.String() + " ago"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// when is a time in UTC, to the second.
func when(v any) string {
	t, ok := asTime(v)
	if !ok {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func asTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		return asTime(deref(t))
	case string:
		p, err := time.Parse(time.RFC3339Nano, t)
		return p, err == nil
	}
	return time.Time{}, false
}

// deref is *t, or the zero time for nil.
func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
