package browsertest

import (
	"fmt"
	"html"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
)

// TestWindowSteps drives a small form site through every step a console
// test takes: the statuses of pages and posts, waits, texts, attributes,
// a forced POST, cookies kept per window, and the screenshots' sizes.
func TestWindowSteps(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /form", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "who", Value: r.URL.Query().Get("who")})
		fmt.Fprint(w, `<!doctype html><meta name="viewport" content="width=device-width">
<main id="main"><ul id="items"><li data-n="1"> one </li><li data-n="2">two</li><li>three</li></ul>
<form id="f" method="post" action="/done"><input name="name"><button id="go" disabled>off</button><button id="send">send</button></form>
<input type="hidden" name="csrf" value="tok"></main>`)
	})
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("who")
		if r.FormValue("name") == "" {
			w.WriteHeader(http.StatusForbidden)
		}
		fmt.Fprintf(w, `<p id="out">%s by %s</p>`, html.EscapeString(r.FormValue("name")), html.EscapeString(c.Value))
	})
	mux.HandleFunc("GET /gone", http.NotFound)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	b := Start(t)
	ann, bob := b.Window(t), b.Window(t)
	if code := ann.Open(srv.URL + "/form?who=ann"); code != http.StatusOK {
		t.Fatalf("open: %d", code)
	}
	bob.Open(srv.URL + "/form?who=bob")
	if code := ann.Open(srv.URL + "/gone"); code != http.StatusNotFound {
		t.Fatalf("missing page: %d", code)
	}
	ann.Open(srv.URL + "/form")
	ann.WaitFor("#items li")
	if got := ann.Texts("#items li"); !slices.Equal(got, []string{"one", "two", "three"}) {
		t.Errorf("texts %q", got)
	}
	if got := ann.Text("#items li"); got != "one" {
		t.Errorf("text %q", got)
	}
	if n := ann.Count("#items li[data-n]"); n != 2 {
		t.Errorf("count %d", n)
	}
	if v, ok := ann.Attr("#go", "disabled"); !ok || v != "" {
		t.Errorf("disabled: %q %v", v, ok)
	}
	if _, ok := ann.Attr("#send", "disabled"); ok {
		t.Error("#send disabled")
	}
	if _, ok := ann.Attr("#nothing", "x"); ok {
		t.Error("attribute of nothing")
	}
	if got := ann.Attrs("#items li", "data-n"); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("attrs %q", got)
	}
	ann.WaitPresent("input[name=csrf]")
	if v, _ := ann.Attr("input[name=csrf]", "value"); v != "tok" {
		t.Errorf("csrf %q", v)
	}
	// Each window keeps its own cookie: ann's reload set an empty one.
	bob.Fill("#f input[name=name]", "x <y>")
	if code := bob.Submit("#send"); code != http.StatusOK {
		t.Fatalf("submit: %d", code)
	}
	if got := bob.Text("#out"); got != "x <y> by bob" {
		t.Errorf("after submit: %q", got)
	}
	if code := ann.Post("/done", map[string]string{"other": "1"}); code != http.StatusForbidden {
		t.Errorf("forced post: %d", code)
	}
	if got := ann.Text("#out"); got != "by" {
		t.Errorf("forced post's page: %q", got)
	}

	ann.Open(srv.URL + "/form")
	desktop, phone := ann.Screenshot("form")
	for path, width := range map[string]int{desktop: DesktopWidth, phone: PhoneWidth} {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(f)
		f.Close()
		if err != nil || cfg.Width < width || cfg.Width > 3*width {
			t.Errorf("%s: %+v %v, want about %d wide", path, cfg, err, width)
		}
	}
}
