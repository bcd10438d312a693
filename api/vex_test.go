package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/storage/archive"
	"github.com/tollgate/tollgate/vex"
)

// noVEXStore fails the test on any write: every submission here must be
// refused before a document is stored.
type noVEXStore struct{ t *testing.T }

func (n noVEXStore) Add(context.Context, string, string, string, []byte) (vex.Record, error) {
	n.t.Error("a refused submission stored a VEX document")
	return vex.Record{}, nil
}

func (noVEXStore) List(context.Context, string, string) ([]vex.Record, error) { return nil, nil }

// uploadWithVEX is a scan submission with the given vex parts.
func uploadWithVEX(t *testing.T, docs ...[]byte) (io.Reader, string) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>hi</p>"), 0o644)
	var tgz bytes.Buffer
	if err := archive.Pack(context.Background(), dir, &tgz); err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormField("metadata")
	io.WriteString(w, `{"app":"site"}`)
	w, _ = mw.CreateFormFile("archive", "src.tgz")
	w.Write(tgz.Bytes())
	for i, doc := range docs {
		w, _ = mw.CreateFormFile("vex", fmt.Sprintf("vex-%d.json", i))
		w.Write(doc)
	}
	mw.Close()
	return &body, mw.FormDataContentType()
}

// TestScanVEXPartsAreCheckedBeforeAnythingIsStored: a scan's own VEX
// documents silence findings, so a submitter without the right to add VEX
// (ci alone) is refused with 403; a document that does not parse, or more
// parts than the limit, is a 400; a server without a VEX store says 501.
// None of them stores a document or starts a scan (there is no Temporal
// client here: a start would panic).
func TestScanVEXPartsAreCheckedBeforeAnythingIsStored(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "vex", "testdata", "openvex", "trivy.openvex.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := testServer(t, Config{Tokens: []Token{
		{Name: "ci", SHA256: HashToken("ci-token"), Tenant: "a", Roles: []string{RoleCI}},
		{Name: "ci-security", SHA256: HashToken("cisec-token"), Tenant: "a", Roles: []string{RoleCI, RoleSecurity}},
	}})
	authz, err := policies.NewAuthz(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.deps.Authorizer = authz
	s.deps.VEX = noVEXStore{t}
	post := func(token string, docs ...[]byte) *httptest.ResponseRecorder {
		body, ctype := uploadWithVEX(t, docs...)
		req := httptest.NewRequest(http.MethodPost, "/v1/scans", body)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec
	}
	many := make([][]byte, maxScanVEX+1)
	for i := range many {
		many[i] = doc
	}
	for _, c := range []struct {
		name, token string
		docs        [][]byte
		code        int
		problem     string
	}{
		{"ci alone", "ci-token", [][]byte{doc}, http.StatusForbidden, "/forbidden"},
		{"not a VEX document", "cisec-token", [][]byte{doc, []byte(`{"hello": "world"}`)}, http.StatusBadRequest, "/bad-vex"},
		{"too many parts", "cisec-token", many, http.StatusBadRequest, "more than 8 vex parts"},
	} {
		if rec := post(c.token, c.docs...); rec.Code != c.code || !strings.Contains(rec.Body.String(), c.problem) {
			t.Errorf("%s: %d %s, want %d %s", c.name, rec.Code, rec.Body, c.code, c.problem)
		}
	}
	s.deps.VEX = nil
	if rec := post("cisec-token", doc); rec.Code != http.StatusNotImplemented {
		t.Errorf("no VEX store: %d %s, want 501", rec.Code, rec.Body)
	}
}

// TestVEXChangesWhatAScanIs: the same archive and metadata with other VEX
// documents is another scan (another id, another content digest); the same
// documents in another order are the same scan.
func TestVEXChangesWhatAScanIs(t *testing.T) {
	m := Metadata{App: "site"}
	plain := contentDigest("a", "abc", m, nil)
	one := contentDigest("a", "abc", m, []string{"d1"})
	if plain == one {
		t.Error("a VEX document did not change the content digest")
	}
	if contentDigest("a", "abc", m, []string{"d1", "d2"}) != contentDigest("a", "abc", m, []string{"d2", "d1"}) {
		t.Error("the order of the VEX documents changed the content digest")
	}
}
