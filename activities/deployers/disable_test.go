package deployers_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/activities/deployers"
)

func archiveRequest() deployers.Request {
	return deployers.Request{App: "shop", Tenant: "acme", ReleaseID: "r41", RollbackID: "archive-acme-shop-20261206T120000Z", Reason: "idle for 720h0m0s", Trigger: "ttl"}
}

// The webhook receives a signed POST whose action is "disable", with the
// archive's idempotency key; delivered again, the receiver's 409 is still
// success, marked duplicate.
func TestWebhookDisableDeliversActionDisable(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	w := b.deployer(t)
	ctx := context.Background()
	rc, err := w.Disable(ctx, archiveRequest())
	if err != nil || rc.Duplicate || rc.Status != http.StatusOK {
		t.Fatalf("Disable() = %+v, %v", rc, err)
	}
	got := b.rv.got()
	if len(got) != 1 || got[0].verifyErr != nil {
		t.Fatalf("deliveries %+v", got)
	}
	d := got[0]
	if d.req.Action != deployers.ActionDisable || d.req.App != "shop" || d.req.Tenant != "acme" ||
		d.header.Get(deployers.HeaderIdempotencyKey) != "archive-acme-shop-20261206T120000Z" {
		t.Fatalf("delivered %+v, key %q", d.req, d.header.Get(deployers.HeaderIdempotencyKey))
	}
	rc, err = w.Disable(ctx, archiveRequest())
	if err != nil || !rc.Duplicate {
		t.Fatalf("second Disable() = %+v, %v; want a duplicate", rc, err)
	}
}

// A disable needs no release (an app may be archived with none live); a
// deploy still does, and Deploy refuses a request that says disable.
func TestDisableNeedsNoReleaseAndDeployIsNotDisable(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, nil)
	w := b.deployer(t)
	req := archiveRequest()
	req.ReleaseID = ""
	if _, err := w.Disable(context.Background(), req); err != nil {
		t.Fatalf("Disable() without a release = %v", err)
	}
	req.Action = deployers.ActionDisable
	if _, err := w.Deploy(context.Background(), req); !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Deploy() of a disable = %v, want ErrPermanent", err)
	}
	req.Action = "delete"
	if err := req.Validate(); !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("Validate() of action delete = %v", err)
	}
	if len(b.rv.got()) != 1 {
		t.Fatalf("%d deliveries, want only the disable", len(b.rv.got()))
	}
}

// A refused disable (4xx) is permanent, as for a deploy.
func TestWebhookDisableRefusedIsPermanent(t *testing.T) {
	t.Parallel()
	b := setupWebhook(t, func(w http.ResponseWriter, _ *http.Request, _ delivery) {
		http.Error(w, "unknown app", http.StatusUnprocessableEntity)
	})
	_, err := b.deployer(t).Disable(context.Background(), archiveRequest())
	if !errors.Is(err, deployers.ErrPermanent) || !strings.Contains(err.Error(), "disable app") {
		t.Fatalf("Disable() = %v, want a permanent error naming the disable", err)
	}
}

// Flagd turns the app's flag off and keeps its variants; a second disable
// writes nothing; a deploy (the revive) turns it on again.
func TestFlagdDisableTurnsTheFlagOffAndDeployBack(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	ctx := context.Background()
	if _, err := b.f.Deploy(ctx, flagRequest("shop", "r1")); err != nil {
		t.Fatal(err)
	}
	rc, err := b.f.Disable(ctx, archiveRequest())
	if err != nil || rc.Duplicate {
		t.Fatalf("Disable() = %+v, %v", rc, err)
	}
	data, ff := readFlagFile(t, b.path)
	checkFlagdSchema(t, data)
	if fl := ff.Flags["acme.shop-release"]; fl.State != "DISABLED" || fl.DefaultVariant != "r1" || fl.Variants["r1"] != "r1" {
		t.Fatalf("flag after disable: %s", data)
	}
	if _, err := b.f.Current(ctx, "acme", "shop"); !errors.Is(err, deployers.ErrNoRelease) {
		t.Fatalf("Current() after disable = %v, want ErrNoRelease", err)
	}
	before, _ := os.Stat(b.path)
	if rc, err := b.f.Disable(ctx, archiveRequest()); err != nil || !rc.Duplicate {
		t.Fatalf("second Disable() = %+v, %v; want a duplicate", rc, err)
	}
	if after, _ := os.Stat(b.path); !os.SameFile(before, after) {
		t.Error("second Disable rewrote the file")
	}
	if _, err := b.f.Deploy(ctx, flagRequest("shop", "r1")); err != nil {
		t.Fatal(err)
	}
	if cur, err := b.f.Current(ctx, "acme", "shop"); err != nil || cur != "r1" {
		t.Fatalf("Current() after the revive's deploy = %q, %v", cur, err)
	}
}

// Disabling an app the flag file does not know writes nothing.
func TestFlagdDisableOfUnknownAppIsDuplicate(t *testing.T) {
	t.Parallel()
	b := setupFlagd(t, nil, 0)
	rc, err := b.f.Disable(context.Background(), archiveRequest())
	if err != nil || !rc.Duplicate {
		t.Fatalf("Disable() = %+v, %v", rc, err)
	}
	if _, err := os.Stat(b.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the flag file was created: %v", err)
	}
}
