package activities

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/releases"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tenant"
	"github.com/tollgate/tollgate/workflows"
)

// Pages list each app with a release once, in (tenant, app) order, resume
// after the cursor, and keep to one tenant when asked; a name that is not a
// valid tenant never reaches a page.
func TestRematchPagesListAppsByReference(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ev, err := storage.OpenLocal(filepath.Join(t.TempDir(), "evidence"))
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Close()
	put := func(key string) {
		if _, err := ev.Put(ctx, key, "application/json", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// "a-b" sorts before "a" by key ('-' < '/'), after it by name.
	for _, ta := range [][2]string{{"acme", "a"}, {"acme", "a-b"}, {"acme", "b"}, {"globex", "shop"}, {"Bad_Tenant", "x"}} {
		for _, id := range []string{"r1", "r2"} {
			put(fmt.Sprintf("apps/%s/%s/releases/%s/release.json", ta[0], ta[1], id))
		}
	}
	put("apps/acme/c/rollbacks/x/decision.json") // no release: not live
	r := &Rematch{Evidence: ev, Lister: ev}

	var all []workflows.RematchRef
	req := workflows.RematchPageRequest{Limit: 2}
	for range 5 {
		page, err := r.Page(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Apps...)
		if !page.More {
			break
		}
		req.After = page.Apps[len(page.Apps)-1]
	}
	want := fmt.Sprint([]workflows.RematchRef{{Tenant: "acme", App: "a"}, {Tenant: "acme", App: "a-b"}, {Tenant: "acme", App: "b"}, {Tenant: "globex", App: "shop"}})
	if fmt.Sprint(all) != want {
		t.Fatalf("pages %v, want %v", all, want)
	}
	page, err := r.Page(ctx, workflows.RematchPageRequest{Tenant: "globex", Limit: 10})
	if err != nil || fmt.Sprint(page.Apps) != fmt.Sprint([]workflows.RematchRef{{Tenant: "globex", App: "shop"}}) || page.More {
		t.Fatalf("globex page %+v %v", page, err)
	}
	if _, err := r.Page(ctx, workflows.RematchPageRequest{Tenant: "x/../acme", Limit: 10}); err == nil {
		t.Fatal("a page of tenant x/../acme")
	}
}

// FuzzReleaseApp: whatever keys a bucket holds, a re-match page only ever
// names a valid tenant and app, which build back the key they came from.
func FuzzReleaseApp(f *testing.F) {
	for _, k := range []string{
		"apps/acme/todo/releases/r1/release.json", "apps/x/../victim/releases/r1/release.json",
		"apps/acme/todo/releases//release.json", "apps/ACME/todo/releases/r1/release.json",
		"apps/acme/todo/rollbacks/r1/decision.json", "apps/acme/../releases/r1/release.json",
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		ref, ok := releaseApp(key)
		if !ok {
			return
		}
		if !tenant.Valid(ref.Tenant) || releases.ValidName("app", ref.App) != nil {
			t.Fatalf("%q gave invalid %+v", key, ref)
		}
		if !strings.HasPrefix(key, "apps/"+ref.Tenant+"/"+ref.App+"/releases/") {
			t.Fatalf("%q gave %+v", key, ref)
		}
	})
}
