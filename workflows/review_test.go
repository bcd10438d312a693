package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/tasks"
)

// reviewEnv runs a scan whose review policy asks for a human review, with a
// 2 h timeout; everything else passes. It returns what Finalize was given.
func reviewEnv(t *testing.T) (*testsuite.TestWorkflowEnvironment, *FinalizeRequest) {
	env := newEnv(t)
	var fin FinalizeRequest
	env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(func(_ context.Context, t tasks.Task) (tasks.Result, error) {
		return tasks.Result{Kind: t.Kind}, nil
	})
	env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(func(_ context.Context, r PolicyRequest) (report.Decision, error) {
		if r.Stage == StageReview {
			return report.Decision{Verdict: report.VerdictReview, Timeout: "2h",
				Reasons: []report.Reason{{Policy: "review.ai_sensitive", Message: "labelled ai-generated and touches auth"}}}, nil
		}
		return report.Decision{Verdict: report.VerdictWarn, Reasons: []report.Reason{{Policy: "vulnerabilities.high"}}}, nil
	})
	env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(func(ctx context.Context, f FinalizeRequest) (ScanResult, error) {
		fin = f
		return finalize(ctx, f)
	})
	return env, &fin
}

var reviewed = func() ScanRequest {
	r := request
	r.Tenant, r.Submitter, r.Labels = "acme", "ci-bot", []string{"ai-generated"}
	r.SubmitterPerson, r.Author = "carol@example.com", "Dave@Example.com"
	return r
}()

func signalAfter(env *testsuite.TestWorkflowEnvironment, d time.Duration, sig ReviewSignal) {
	env.RegisterDelayedCallback(func() { env.SignalWorkflow(SignalReview, sig) }, d)
}

func result(t *testing.T, env *testsuite.TestWorkflowEnvironment) ScanResult {
	t.Helper()
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res ScanResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

func TestReviewApproved(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		// While it waits, the scan says so: verdict review, and where to act.
		env.RegisterDelayedCallback(func() {
			v, err := env.QueryWorkflow(QueryProgress)
			var p Progress
			if err != nil || v.Get(&p) != nil || p.Verdict != report.VerdictReview || p.Review == nil || p.Waiting == "" {
				t.Errorf("progress while waiting for review: %+v %v", p, err)
			}
		}, 30*time.Minute)
		signalAfter(env, time.Hour, ReviewSignal{Decision: ReviewApprove, Reviewer: "alice", Person: "alice@example.com", Auth: "oidc", Tenant: "acme", Reason: "auth change checked"})
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		res := result(t, env)
		if res.Verdict != report.VerdictWarn {
			t.Fatalf("approved scan: verdict %s, want the stages' warn", res.Verdict)
		}
		rv := fin.Review
		if rv == nil || rv.Outcome != report.ReviewApproved || rv.Reviewer != "alice" || rv.Submitter != "ci-bot" || rv.At.Sub(rv.Requested) != time.Hour {
			t.Fatalf("review record %+v", rv)
		}
		// The evidence names who approved, and how they logged in.
		want := report.Approver{Person: "alice@example.com", Principal: "alice", Auth: "oidc", Tenant: "acme"}
		if rv.Approver == nil || *rv.Approver != want || rv.Author != "Dave@Example.com" || rv.SubmitterPerson != "carol@example.com" {
			t.Fatalf("approver %+v, author %q, submitter person %q", rv.Approver, rv.Author, rv.SubmitterPerson)
		}
	})
}

func TestReviewRejected(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		signalAfter(env, 10*time.Minute, ReviewSignal{Decision: ReviewReject, Reviewer: "alice", Person: "alice@example.com", Auth: "oidc", Tenant: "acme", Reason: "sends tokens to a third party"})
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		res := result(t, env)
		if res.Verdict != report.VerdictBlock || fin.Review.Outcome != report.ReviewRejected {
			t.Fatalf("rejected scan: %+v, review %+v", res, fin.Review)
		}
		if last := res.Reasons[len(res.Reasons)-1]; last.Policy != "review.rejected" {
			t.Fatalf("reasons %+v", res.Reasons)
		}
	})
}

func TestReviewTimesOutToBlock(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		res := result(t, env)
		if res.Verdict != report.VerdictBlock || fin.Review.Outcome != report.ReviewTimedOut {
			t.Fatalf("unreviewed scan: %+v, review %+v", res, fin.Review)
		}
		if got := fin.Review.At.Sub(fin.Review.Requested); got != 2*time.Hour {
			t.Fatalf("timed out after %s, want the policy's 2h", got)
		}
	})
}

// The submitter's own approval is refused and recorded; the wait goes on
// until someone else decides.
func TestReviewBySubmitterIsRefused(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		signalAfter(env, 5*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "ci-bot", Person: "alice@example.com", Reason: "looks fine to me"})
		signalAfter(env, 6*time.Minute, ReviewSignal{Decision: "maybe", Reviewer: "bob", Person: "bob@example.com", Reason: "?"})
		signalAfter(env, 90*time.Minute, ReviewSignal{Decision: ReviewReject, Reviewer: "alice", Person: "alice@example.com", Auth: "oidc", Tenant: "acme", Reason: "no"})
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		res := result(t, env)
		rv := fin.Review
		if res.Verdict != report.VerdictBlock || rv.Outcome != report.ReviewRejected || rv.Reviewer != "alice" {
			t.Fatalf("scan %+v, review %+v", res, rv)
		}
		if len(rv.Refused) != 2 || rv.Refused[0].Reviewer != "ci-bot" || rv.Refused[0].Why != "the submitter may not review their own scan" {
			t.Fatalf("refused %+v", rv.Refused)
		}
	})
}

// Without reviewers (the embedded mode) a scan that needs review is blocked
// at once, saying why.
func TestReviewWithoutReviewersBlocksAtOnce(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		req := reviewed
		req.ReviewTimeout = -1
		env.ExecuteWorkflow(scanWorkflow, req)
		res := result(t, env)
		if res.Verdict != report.VerdictBlock || fin.Review.Outcome != report.ReviewTimedOut || fin.Review.At != fin.Review.Requested {
			t.Fatalf("scan %+v, review %+v", res, fin.Review)
		}
	})
}

// A scan the stages already block is not sent to review.
func TestBlockedScanIsNotReviewed(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env := newEnv(t)
		env.OnActivity(ActivityDispatch, mock.Anything, mock.Anything).Return(tasks.Result{Kind: tasks.KindSecrets}, nil)
		env.OnActivity(ActivityPolicy, mock.Anything, mock.Anything).Return(func(_ context.Context, r PolicyRequest) (report.Decision, error) {
			if r.Stage == StageReview {
				t.Error("review policy asked for a blocked scan")
			}
			return report.Decision{Verdict: report.VerdictBlock, Reasons: []report.Reason{{Policy: "secrets.none"}}}, nil
		})
		env.OnActivity(ActivityFinalize, mock.Anything, mock.Anything).Return(finalize)
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		if res := result(t, env); res.Verdict != report.VerdictBlock {
			t.Fatalf("%+v", res)
		}
	})
}

// A review is bound to a person: the author of the change with a second
// token, the submitter's person with another token, and a token that names
// no person are all refused by the workflow itself (whatever the API let
// through), and recorded; the wait goes on until someone else decides.
func TestReviewBySamePersonWithAnotherTokenIsRefused(t *testing.T) {
	forEachShape(t, func(t *testing.T, scanWorkflow any) {
		env, fin := reviewEnv(t)
		signalAfter(env, 5*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "dave-reviewer", Person: "dave@example.COM", Reason: "mine, fine"})
		signalAfter(env, 6*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "carol-reviewer", Person: "Carol@example.com", Reason: "fine"})
		signalAfter(env, 7*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "shared-reviewer-token", Reason: "fine"})
		signalAfter(env, 8*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "mallory", Person: "mallory@other.example", Tenant: "other", Reason: "fine"})
		signalAfter(env, 90*time.Minute, ReviewSignal{Decision: ReviewApprove, Reviewer: "alice", Person: "alice@example.com", Auth: "static", Tenant: "acme", Reason: "checked"})
		env.ExecuteWorkflow(scanWorkflow, reviewed)
		res := result(t, env)
		rv := fin.Review
		if res.Verdict != report.VerdictWarn || rv.Outcome != report.ReviewApproved || rv.Approver == nil || rv.Approver.Person != "alice@example.com" {
			t.Fatalf("scan %+v, review %+v", res, rv)
		}
		want := []string{
			"the commit's author may not review their own change",
			"the submitter may not review their own scan (same person, another token)",
			"the reviewer names no person: a review is decided by a human (an OIDC login or a static token with a person)",
			`the reviewer is of tenant "other", not the scan's`,
		}
		if len(rv.Refused) != len(want) {
			t.Fatalf("refused %+v", rv.Refused)
		}
		for i, w := range want {
			if rv.Refused[i].Why != w {
				t.Errorf("refusal %d: %q, want %q", i, rv.Refused[i].Why, w)
			}
		}
	})
}
