package cli

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/apiclient"
	"github.com/tollgate/tollgate/exceptions"
	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
)

// TestReviewEndToEnd: an AI-generated change that touches authentication,
// submitted through the API, waits for a human. Its status says so (verdict
// review, and how to decide it). Its submitter may not approve it, even with
// the reviewer role; another reviewer approves, and the scan finishes with
// the review recorded as evidence. Real dev stack, scanners and CLI.
func TestReviewEndToEnd(t *testing.T) {
	e := newGuardEnv(t, nil, nil)
	ctx := context.Background()
	code, stdout, stderr := run(t, "submit", "--server", e.api.URL, "--token", "token-dana", "--app", "login",
		"--label", "ai-generated", "--author", "Ada@example.com", filepath.Join("..", "..", "testdata", "review-app"))
	if code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	var st api.ScanStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatal(err)
	}
	ac, err := apiclient.New(e.api.URL, "token-dana", e.api.Client())
	if err != nil {
		t.Fatal(err)
	}
	c := &apiClient{c: ac}
	// Wait for the review: the scan's status turns to verdict "review".
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(2 * time.Minute)
	for st.Verdict != report.VerdictReview {
		if st.Status != "running" {
			t.Fatalf("scan never waited for review: %+v", st)
		}
		select {
		case <-deadline:
			t.Fatalf("scan never waited for review: %+v", st)
		case <-tick.C:
		}
		if err := c.get(ctx, st.StatusURL, &st); err != nil {
			t.Fatal(err)
		}
	}
	if st.Review == nil || !strings.Contains(st.Waiting, "tollgate review approve|reject "+st.ScanID) || !strings.Contains(st.Review.Reasons[0].Message, "src/auth/login.js") {
		t.Fatalf("waiting status %+v", st)
	}

	// The submitter may not review their own scan; a CI token has no say.
	code, _, stderr = run(t, "review", "approve", st.ScanID, "--server", e.api.URL, "--token", "token-dana", "--reason", "mine, looks fine")
	if code == 0 || !strings.Contains(stderr, "the submitter may not review their own scan") {
		t.Fatalf("self-approval: exit %d: %s", code, stderr)
	}
	// A review is bound to a person, not a token: the submitter with a
	// second token, the commit's author, and a reviewer token that names no
	// person are all refused.
	for token, want := range map[string]string{
		"token-dana-reviewer": "same person, another token",
		"token-ada":           "the commit's author may not review their own change",
		"token-review-bot":    "names no person",
	} {
		code, _, stderr = run(t, "review", "approve", st.ScanID, "--server", e.api.URL, "--token", token, "--reason", "looks fine")
		if code == 0 || !strings.Contains(stderr, "403") || !strings.Contains(stderr, want) {
			t.Fatalf("approval with %s: exit %d: %s", token, code, stderr)
		}
	}
	code, _, stderr = run(t, "review", "approve", st.ScanID, "--server", e.api.URL, "--token", "token-ci", "--reason", "x")
	if code == 0 || !strings.Contains(stderr, "403") {
		t.Fatalf("approval by ci: exit %d: %s", code, stderr)
	}
	code, _, stderr = run(t, "review", "approve", st.ScanID, "--server", e.api.URL, "--token", "token-reviewer")
	if code != 2 {
		t.Fatalf("approval without a reason: exit %d: %s", code, stderr)
	}
	code, _, stderr = run(t, "review", "approve", st.ScanID, "--server", e.api.URL, "--token", "token-reviewer", "--reason", "token signing checked")
	if code != 0 {
		t.Fatalf("approval: exit %d: %s", code, stderr)
	}
	for st.Status == "running" {
		if err := c.get(ctx, st.StatusURL+"?wait=30s", &st); err != nil {
			t.Fatal(err)
		}
	}
	if st.Status != "completed" || st.Verdict == report.VerdictBlock {
		t.Fatalf("approved scan %+v", st)
	}
	var r report.Report
	if err := c.get(ctx, st.ReportURL+"?format=json", &r); err != nil {
		t.Fatal(err)
	}
	if r.Review == nil || r.Review.Outcome != report.ReviewApproved || r.Review.Reviewer != "rita" || r.Review.Submitter != "dana" || len(r.Touches["auth"]) == 0 {
		t.Fatalf("report review %+v, touches %v", r.Review, r.Touches)
	}
	if want := (report.Approver{Person: "rita@example.com", Principal: "rita", Auth: "static", Tenant: "a"}); r.Review.Approver == nil || *r.Review.Approver != want ||
		r.Review.Author != "Ada@example.com" || r.Review.SubmitterPerson != "dana@example.com" {
		t.Fatalf("review identities %+v", r.Review)
	}
	if !slices.ContainsFunc(r.Evidence, func(ev report.Evidence) bool { return ev.Name == "review.json" }) {
		t.Fatalf("no review.json in the evidence: %+v", r.Evidence)
	}
	// A second decision finds nothing waiting.
	code, _, stderr = run(t, "review", "reject", st.ScanID, "--server", e.api.URL, "--token", "token-reviewer", "--reason", "late")
	if code == 0 || !strings.Contains(stderr, "not waiting for a review") {
		t.Fatalf("late decision: exit %d: %s", code, stderr)
	}
	if *updateHistory {
		golden.WriteHistory(ctx, t, e.stack.Client(), "scan-"+st.ScanID, filepath.Join("..", "..", "workflows", "testdata", "scan_history_review.json"))
	}
}

// TestExceptionsThroughTheCLI adds, lists and revokes an exception through
// the API, and checks the refusals.
func TestExceptionsThroughTheCLI(t *testing.T) {
	e := newGuardEnv(t, nil, nil)
	srv := []string{"--server", e.api.URL}
	add := func(token string, extra ...string) (int, string, string) {
		return run(t, slices.Concat([]string{"exception", "add"}, srv, []string{"--token", token}, extra)...)
	}
	code, stdout, stderr := add("token-security", "--app", "shop", "--vulnerability", "GHSA-35jh-r3h4-6jhm", "--package", "lodash",
		"--reason", "not reachable", "--expires", "720h", "--json")
	if code != 0 {
		t.Fatalf("add: exit %d: %s", code, stderr)
	}
	var exc exceptions.Exception
	if err := json.Unmarshal([]byte(stdout), &exc); err != nil || exc.Approver != "sam" || exc.Scope != exceptions.ScopeApp {
		t.Fatalf("added %q: %v", stdout, err)
	}
	// A code weakness by its fingerprint.
	code, stdout, stderr = add("token-security", "--app", "shop", "--weakness", "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7",
		"--reason", "parameterised below", "--expires", "720h", "--json")
	var weak exceptions.Exception
	if code != 0 || json.Unmarshal([]byte(stdout), &weak) != nil || weak.Finding.WeaknessFingerprint != "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7" {
		t.Fatalf("add weakness: exit %d: %s %s", code, stdout, stderr)
	}
	for name, args := range map[string][]string{
		"weakness by place": {"token-security", "--app", "shop", "--weakness", "src/db.js:js-sql-injection:14", "--reason", "r", "--expires", "1h"},
		"ci may not":        {"token-ci", "--app", "shop", "--rule", "licenses.denied", "--reason", "r", "--expires", "1h"},
		"no expiry":         {"token-security", "--app", "shop", "--rule", "licenses.denied", "--reason", "r"},
		"past expiry":       {"token-security", "--app", "shop", "--rule", "licenses.denied", "--reason", "r", "--expires", "2020-01-01"},
		"two findings":      {"token-security", "--app", "shop", "--rule", "a", "--secret", "f:r:1", "--reason", "r", "--expires", "1h"},
		"no scope":          {"token-security", "--rule", "licenses.denied", "--reason", "r", "--expires", "1h"},
		"over a year":       {"token-security", "--tenant-wide", "--rule", "x", "--reason", "r", "--expires", "9000h"},
		"vuln no package":   {"token-security", "--app", "shop", "--vulnerability", "CVE-2021-1", "--reason", "r", "--expires", "1h"},
	} {
		if code, _, stderr := add(args[0], args[1:]...); code == 0 {
			t.Errorf("%s: accepted (%s)", name, stderr)
		}
	}
	code, stdout, stderr = run(t, slices.Concat([]string{"exception", "list", "--app", "shop", "--token", "token-ci"}, srv)...)
	if code != 0 || !strings.Contains(stdout, exc.ID) || !strings.Contains(stdout, "in force") {
		t.Fatalf("list: exit %d: %s %s", code, stdout, stderr)
	}
	code, _, stderr = run(t, slices.Concat([]string{"exception", "revoke", exc.ID, "--reason", "fixed", "--token", "token-security"}, srv)...)
	if code != 0 {
		t.Fatalf("revoke: exit %d: %s", code, stderr)
	}
	code, stdout, _ = run(t, slices.Concat([]string{"exception", "list", "--token", "token-ci"}, srv)...)
	if code != 0 || !strings.Contains(stdout, "revoked") {
		t.Fatalf("list after revoke: %s", stdout)
	}
	if code, _, stderr := run(t, slices.Concat([]string{"exception", "revoke", exc.ID, "--reason", "again", "--token", "token-security"}, srv)...); code == 0 || !strings.Contains(stderr, "409") {
		t.Fatalf("revoke twice: exit %d: %s", code, stderr)
	}
}
