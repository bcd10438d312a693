// Package browsertest drives a real headless Chromium from tests, through
// chromedp: it starts the browser, opens one window per signed-in user
// (each its own browser context, so cookies stay apart), and offers the few
// steps the console's tests take: open a page, wait for an element, read
// text and attributes, fill and submit forms, and take screenshots at
// desktop and phone width.
//
// The browser is $TOLLGATE_CHROMIUM, else chromium on PATH (Debian's
// package; scripts/tools.sh chromium installs it). Without one the tests
// skip, or fail when CI is set.
package browsertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the console's screenshots into docs/screenshots instead of a temporary directory")

// Viewports of the screenshots.
const (
	DesktopWidth, DesktopHeight = 1280, 800
	PhoneWidth, PhoneHeight     = 390, 844
)

// StepTimeout bounds one step (a navigation, a wait for an element): a
// page that never shows what a test waits for fails the test instead of
// hanging it.
const StepTimeout = 30 * time.Second

// FindChromium returns the browser to run: $TOLLGATE_CHROMIUM, else
// chromium on PATH. Without one it skips the test, or fails it when the
// CI variable is set (CI must not pass by skipping).
func FindChromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TOLLGATE_CHROMIUM"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("TOLLGATE_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		msg := "no chromium on PATH and no TOLLGATE_CHROMIUM (scripts/tools.sh chromium installs Debian's package)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Browser is one headless Chromium process for a test; Close (registered
// with t.Cleanup) ends it.
type Browser struct {
	ctx   context.Context
	shots string
}

// Start runs headless Chromium with a temporary profile, without the
// sandbox only when running as root (Chromium refuses to start sandboxed as
// root), and without the GPU.
func Start(t testing.TB) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(FindChromium(t)),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(DesktopWidth, DesktopHeight),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first action starts the browser: start it now, so a browser that
	// cannot start fails here and not in the middle of a test.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return &Browser{ctx: bctx, shots: screenshotDir(t)}
}

// screenshotDir is docs/screenshots of the module with -update-screenshots,
// else a temporary directory.
func screenshotDir(t testing.TB) string {
	if !*updateScreenshots {
		return t.TempDir()
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("-update-screenshots: no go.mod above the test's directory")
		}
		dir = parent
	}
	dir = filepath.Join(dir, "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ScreenshotDir is where Screenshot writes.
func (b *Browser) ScreenshotDir() string { return b.shots }

// Window opens a window in a browser context of its own: its cookies (the
// console's session) are not shared with other windows.
func (b *Browser) Window(t testing.TB) *Window {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		t.Fatalf("open a window: %v", err)
	}
	t.Cleanup(cancel)
	return &Window{t: t, ctx: ctx, shots: b.shots}
}

// Window is one user's browser window. Its steps fail the test on error.
type Window struct {
	t     testing.TB
	ctx   context.Context
	shots string
}

// do runs steps under StepTimeout.
func (w *Window) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		w.t.Fatalf("%s: %v (page %s)", what, err, w.location())
	}
}

// run runs one action with a value under StepTimeout.
func run[T any](w *Window, what string, a chromedp.Action[T]) T {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		w.t.Fatalf("%s: %v (page %s)", what, err, w.location())
	}
	return v
}

// location is the window's URL, for messages.
func (w *Window) location() string {
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown"
	}
	return loc
}

// Location is the URL the window shows.
func (w *Window) Location() string {
	w.t.Helper()
	return run(w, "read the location", chromedp.Location())
}

// Open navigates to url, waits for the page to load, and returns the HTTP
// status of the document.
func (w *Window) Open(url string) int {
	w.t.Helper()
	return status(run(w, "open "+url, chromedp.NavigateResponse(url)))
}

// Submit clicks sel (a form's submit button) and waits for the page the
// form leads to (following redirects); it returns that page's status.
func (w *Window) Submit(sel string) int {
	w.t.Helper()
	return w.navigation("submit "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// Click clicks sel (a link or a button) and waits for the page it leads to;
// it returns that page's status.
func (w *Window) Click(sel string) int {
	w.t.Helper()
	return w.navigation("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

// navigation runs a step that navigates and returns the new page's status.
func (w *Window) navigation(what string, step chromedp.Action[chromedp.Void]) int {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, StepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, step)
	if err != nil {
		w.t.Fatalf("%s: %v (page %s)", what, err, w.location())
	}
	return status(resp)
}

func status(resp *network.Response) int {
	if resp == nil {
		return 0
	}
	return int(resp.Status)
}

// Post builds a form in the current page, as a browser user could with the
// developer tools, and submits it: a POST of fields to action (a path of
// the page's origin) that no page offered. It returns the answer's status.
func (w *Window) Post(action string, fields map[string]string) int {
	w.t.Helper()
	var js strings.Builder
	fmt.Fprintf(&js, "(() => { const f = document.createElement('form'); f.method = 'POST'; f.action = %q;", action)
	for name, value := range fields {
		fmt.Fprintf(&js, " { const i = document.createElement('input'); i.type = 'hidden'; i.name = %q; i.value = %q; f.appendChild(i); }", name, value)
	}
	js.WriteString(" document.body.appendChild(f); f.submit(); })()")
	return w.navigation("post "+action, chromedp.Evaluate[chromedp.Void](js.String()))
}

// WaitFor waits until an element matching the CSS selector sel is in the
// page and visible.
func (w *Window) WaitFor(sel string) {
	w.t.Helper()
	w.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// WaitPresent waits until an element matching sel is in the page, visible
// or not (a hidden input, a disabled button's reason).
func (w *Window) WaitPresent(sel string) {
	w.t.Helper()
	w.do("wait for "+sel, chromedp.WaitReady(chromedp.CSS(sel)))
}

// Wait waits up to within until an element matching sel is in the page:
// for what a page shows after it refreshes itself (htmx polling).
func (w *Window) Wait(sel string, within time.Duration) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(w.ctx, within)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS(sel))); err != nil {
		w.t.Fatalf("wait for %s: %v (page %s)", sel, err, w.location())
	}
}

// Text is the visible text of the first element matching sel, trimmed.
func (w *Window) Text(sel string) string {
	w.t.Helper()
	return strings.TrimSpace(run(w, "read the text of "+sel, chromedp.Text(chromedp.CSS(sel))))
}

// Texts are the trimmed texts of every element matching sel, in page
// order; none is an empty list, without waiting.
func (w *Window) Texts(sel string) []string {
	w.t.Helper()
	return run(w, "read the texts of "+sel, chromedp.Evaluate[[]string](
		fmt.Sprintf("Array.from(document.querySelectorAll(%q), e => e.innerText.trim())", sel)))
}

// Count is how many elements match sel now, without waiting.
func (w *Window) Count(sel string) int {
	w.t.Helper()
	return run(w, "count "+sel, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
}

// Attr is the attribute name of the first element matching sel, and
// whether it has it; without waiting, and "", false when nothing matches.
func (w *Window) Attr(sel, name string) (string, bool) {
	w.t.Helper()
	v := run(w, "read "+sel+"["+name+"]", chromedp.Evaluate[*string](
		fmt.Sprintf("(() => { const e = document.querySelector(%q); return e && e.hasAttribute(%q) ? e.getAttribute(%q) : null; })()", sel, name, name)))
	if v == nil {
		return "", false
	}
	return *v, true
}

// Attrs are the values of attribute name of every element matching sel
// that has it, in page order, without waiting.
func (w *Window) Attrs(sel, name string) []string {
	w.t.Helper()
	return run(w, "read "+sel+"["+name+"]", chromedp.Evaluate[[]string](
		fmt.Sprintf("Array.from(document.querySelectorAll(%q), e => e.getAttribute(%q)).filter(v => v !== null)", sel, name)))
}

// Fill sets the value of the form field sel (an input, a textarea or a
// select), by typing for text fields so the page sees input events.
func (w *Window) Fill(sel, value string) {
	w.t.Helper()
	w.do("fill "+sel, chromedp.WaitVisible(chromedp.CSS(sel)), chromedp.SetValue(chromedp.CSS(sel), value))
}

// Screenshot writes page-desktop.png (1280x800) and page-phone.png (390x844,
// as a phone: mobile viewport and touch) of the whole page into the
// screenshot directory, and returns their paths.
func (w *Window) Screenshot(page string) (desktop, phone string) {
	w.t.Helper()
	shoot := func(name string, width, height int64, opts ...chromedp.EmulateViewportOption) string {
		w.do("size the window for "+name, chromedp.EmulateViewport(width, height, opts...))
		png := run(w, "screenshot "+name, chromedp.FullScreenshot(100))
		path := filepath.Join(w.shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			w.t.Fatalf("write screenshot: %v", err)
		}
		return path
	}
	phone = shoot(page+"-phone", PhoneWidth, PhoneHeight, chromedp.EmulateMobile)
	desktop = shoot(page+"-desktop", DesktopWidth, DesktopHeight)
	return desktop, phone
}
