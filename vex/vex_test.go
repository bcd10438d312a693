package vex_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/package-url/packageurl-go"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/vex"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// advisory builds the finding a deep stage reports for a real OSV record
// (testdata/osv) against one version of its first affected package.
func advisory(t *testing.T, id, version string) report.Vulnerability {
	t.Helper()
	var rec struct {
		ID       string   `json:"id"`
		Aliases  []string `json:"aliases"`
		Affected []struct {
			Package struct {
				Name      string `json:"name"`
				Ecosystem string `json:"ecosystem"`
			} `json:"package"`
		} `json:"affected"`
	}
	if err := json.Unmarshal(read(t, "osv/"+id+".json"), &rec); err != nil {
		t.Fatal(err)
	}
	name := rec.Affected[0].Package.Name
	return report.Vulnerability{
		ID: rec.ID, Aliases: rec.Aliases, Package: name, Version: version, Ecosystem: "gomod",
		PURL: goPURL(name, version), Severity: "CRITICAL", FixedVersions: []string{},
	}
}

func goPURL(module, version string) string {
	dir, name := filepath.Split(module)
	return packageurl.NewPackageURL(packageurl.TypeGolang, filepath.Clean(dir), name, version, nil, "").ToString()
}

func goPackage(module, version string) report.Package {
	return report.Package{Name: module, Version: version, Ecosystem: "gomod", PURL: goPURL(module, version), Licenses: []string{}}
}

// evidence is an in-memory write-once store.
type evidence struct{ objs map[string][]byte }

func (e *evidence) Put(_ context.Context, key, _ string, data []byte) (storage.Object, error) {
	if old, ok := e.objs[key]; ok && string(old) != string(data) {
		return storage.Object{}, storage.ErrImmutable
	}
	e.objs[key] = data
	return storage.Object{Key: key}, nil
}

func (e *evidence) Get(_ context.Context, key string) ([]byte, storage.Object, error) {
	b, ok := e.objs[key]
	if !ok {
		return nil, storage.Object{}, storage.ErrNotFound
	}
	return b, storage.Object{Key: key}, nil
}

func (e *evidence) List(_ context.Context, prefix string) ([]string, error) {
	var out []string
	for k := range e.objs {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func newStore() *vex.Store {
	ev := &evidence{objs: map[string][]byte{}}
	return &vex.Store{Evidence: ev, Lister: ev, Now: func() time.Time { return time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC) }}
}

// decide runs the default bundle's deep stage over the findings with the
// VEX records resolved, as EvaluatePolicy does.
func decide(t *testing.T, recs []vex.Record, vulns []report.Vulnerability, pkgs []report.Package) report.Decision {
	t.Helper()
	b, err := policies.Default()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policies.NewEngine(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	in := policies.Input{Stage: "deep", Scan: policies.Scan{App: "gate", Tenant: "acme"}, Now: "2026-11-22T12:00:00Z"}
	in.Vulnerabilities, in.Packages = vulns, pkgs
	in.VulnDB = report.VulnDB{Available: true}
	in.VEX = vex.Resolve(recs, vulns, pkgs)
	d, err := engine.Evaluate(t.Context(), "deep", in)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// silenced lists "id in package" of the findings the decision's VEX
// statements silenced.
func silenced(d report.Decision) []string {
	var out []string
	for _, v := range d.VEX {
		out = append(out, v.Vulnerability+" in "+v.Package)
	}
	slices.Sort(out)
	return out
}

func blocked(d report.Decision) []string {
	var out []string
	for _, r := range d.Reasons {
		if r.Verdict == report.VerdictBlock {
			out = append(out, r.Message)
		}
	}
	slices.Sort(out)
	return out
}

// TestTrivyOpenVEXSilencesItsAdvisoriesOnlyWhereTrivyIsInTheSBOM: trivy's
// own OpenVEX document, applied to real Go advisories, silences the two it
// names in docker/docker and circl for a scan whose SBOM has trivy, never
// the docker/docker advisory it does not name, and nothing for a scan
// without trivy.
func TestTrivyOpenVEXSilencesItsAdvisoriesOnlyWhereTrivyIsInTheSBOM(t *testing.T) {
	store := newStore()
	rec, err := store.Add(t.Context(), "acme", "", "sec@acme", read(t, "openvex/trivy.openvex.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Format != vex.FormatOpenVEX || len(rec.Statements) != 21 || rec.AddedBy != "sec@acme" {
		t.Fatalf("record: format %q, %d statements, added by %q", rec.Format, len(rec.Statements), rec.AddedBy)
	}
	recs, err := store.ForScan(t.Context(), "acme", "scan-1")
	if err != nil || len(recs) != 1 {
		t.Fatalf("ForScan: %d records, %v", len(recs), err)
	}
	vulns := []report.Vulnerability{
		advisory(t, "GO-2024-2512", "v20.10.12+incompatible"), // in the document
		advisory(t, "GO-2022-0390", "v20.10.12+incompatible"), // same package, not in the document
		advisory(t, "GO-2023-1765", "v1.3.2"),                 // in the document
		advisory(t, "GO-2024-2453", "v1.3.2"),                 // in the document
	}
	deps := []report.Package{
		goPackage("github.com/docker/docker", "v20.10.12+incompatible"),
		goPackage("github.com/cloudflare/circl", "v1.3.2"),
	}
	withTrivy := append(slices.Clone(deps), goPackage("github.com/aquasecurity/trivy", "v0.58.1"))

	d := decide(t, recs, vulns, withTrivy)
	want := []string{
		"GO-2023-1765 in github.com/cloudflare/circl",
		"GO-2024-2453 in github.com/cloudflare/circl",
		"GO-2024-2512 in github.com/docker/docker",
	}
	if got := silenced(d); !slices.Equal(got, want) {
		t.Errorf("silenced %q, want %q", got, want)
	}
	if got := blocked(d); len(got) != 1 || got[0] != "GO-2022-0390 in github.com/docker/docker@v20.10.12+incompatible is CRITICAL" {
		t.Errorf("blocking reasons %q, want only GO-2022-0390", got)
	}
	for _, a := range d.VEX {
		if a.Record != rec.ID || a.AddedBy != "sec@acme" || a.Status != vex.StatusNotAffected || a.Justification == "" || a.Product != "pkg:golang/github.com/aquasecurity/trivy" {
			t.Errorf("applied VEX %+v does not name its record, adder, status, justification and product", a)
		}
	}

	// Without trivy in the SBOM, statements about trivy's subcomponents
	// silence nothing.
	if d := decide(t, recs, vulns, deps); len(d.VEX) != 0 || len(blocked(d)) != 4 {
		t.Errorf("without trivy: silenced %q, %d blocking reasons; want none silenced, 4 blocking", silenced(d), len(blocked(d)))
	}
}

// TestCommonsBCELCycloneDXVEXSilencesOnlyBCEL6: the Apache Commons BCEL
// CycloneDX VEX document (XML) says BCEL 6.x is not affected by
// CVE-2025-48924. It silences that finding on BCEL 6.x, and not on BCEL 5,
// not in commons-lang3 (the package the advisory is about, which the
// document does not name), and no other vulnerability of BCEL.
func TestCommonsBCELCycloneDXVEXSilencesOnlyBCEL6(t *testing.T) {
	store := newStore()
	rec, err := store.Add(t.Context(), "acme", "scan-1", "ci@acme", read(t, "cyclonedx/commons-bcel.VEX.cyclonedx.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Format != vex.FormatCycloneDX || len(rec.Statements) != 1 {
		t.Fatalf("record: format %q, %d statements", rec.Format, len(rec.Statements))
	}
	st := rec.Statements[0]
	if st.Vulnerability != "CVE-2025-48924" || !slices.Equal(st.Aliases, []string{"GHSA-j288-q9x7-2f5v"}) || st.Status != vex.StatusNotAffected ||
		st.Justification != "vulnerable_code_not_in_execute_path" || len(st.Products) != 1 || st.Products[0].PURL != "pkg:maven/org.apache.bcel/bcel?type=jar" {
		t.Fatalf("statement %+v", st)
	}
	mvn := func(group, name, version string) string {
		return packageurl.NewPackageURL(packageurl.TypeMaven, group, name, version, nil, "").ToString()
	}
	finding := func(id string, aliases []string, group, name, version string) report.Vulnerability {
		return report.Vulnerability{ID: id, Aliases: aliases, Package: group + ":" + name, Version: version, Ecosystem: "jar", PURL: mvn(group, name, version), Severity: "CRITICAL", FixedVersions: []string{}}
	}
	vulns := []report.Vulnerability{
		finding("GHSA-j288-q9x7-2f5v", []string{"CVE-2025-48924"}, "org.apache.commons", "commons-lang3", "3.17.0"),
		finding("CVE-2025-48924", nil, "org.apache.bcel", "bcel", "6.10.0"),
		finding("CVE-2025-48924", nil, "org.apache.bcel", "bcel", "5.2"),
		finding("CVE-2022-42920", nil, "org.apache.bcel", "bcel", "6.10.0"),
	}
	pkgs := []report.Package{
		{Name: "org.apache.commons:commons-lang3", Version: "3.17.0", PURL: mvn("org.apache.commons", "commons-lang3", "3.17.0")},
		{Name: "org.apache.bcel:bcel", Version: "6.10.0", PURL: mvn("org.apache.bcel", "bcel", "6.10.0")},
	}
	// The document was uploaded with scan-1: it applies to it alone.
	other, err := store.ForScan(t.Context(), "acme", "scan-2")
	if err != nil || len(other) != 0 {
		t.Fatalf("scan-2 sees %d records (%v), want none", len(other), err)
	}
	recs, err := store.ForScan(t.Context(), "acme", "scan-1")
	if err != nil {
		t.Fatal(err)
	}
	d := decide(t, recs, vulns, pkgs)
	if got, want := silenced(d), []string{"CVE-2025-48924 in org.apache.bcel:bcel"}; !slices.Equal(got, want) {
		t.Errorf("silenced %q, want %q", got, want)
	}
	if len(d.VEX) != 1 || d.VEX[0].PURL != mvn("org.apache.bcel", "bcel", "6.10.0") {
		t.Errorf("applied %+v, want the statement on bcel 6.10.0", d.VEX)
	}
	if got := blocked(d); len(got) != 3 {
		t.Errorf("blocking reasons %q, want commons-lang3, bcel 5.2 and CVE-2022-42920", got)
	}
}

// TestVEXStoreIsTenantScopedAndWriteOnce: a tenant reads its own documents
// only, bad names are refused, and the document is kept as uploaded.
func TestVEXStoreIsTenantScopedAndWriteOnce(t *testing.T) {
	store := newStore()
	doc := read(t, "openvex/trivy.openvex.json")
	rec, err := store.Add(t.Context(), "acme", "", "sec@acme", doc)
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := store.Evidence.Get(t.Context(), rec.Key)
	if err != nil || string(stored) != string(doc) {
		t.Fatalf("stored document differs from the upload (%v)", err)
	}
	if recs, err := store.ForScan(t.Context(), "globex", "scan-1"); err != nil || len(recs) != 0 {
		t.Errorf("another tenant sees %d records (%v)", len(recs), err)
	}
	for _, bad := range []struct{ tenant, scan string }{{"../acme", ""}, {"acme", "../x"}, {"acme", ".."}, {"ACME", ""}} {
		if _, err := store.Add(t.Context(), bad.tenant, bad.scan, "x", doc); err == nil {
			t.Errorf("Add(%q, %q) accepted", bad.tenant, bad.scan)
		}
	}
	if _, err := store.Add(t.Context(), "acme", "", "x", []byte(`{"hello": 1}`)); err == nil {
		t.Error("a JSON document that is no VEX was accepted")
	}
}

// TestScanVEXIsStoredOnce: a scan's document is stored under an id made
// from the tenant, scan and document, so a retried submission adds nothing
// and fails nothing; the scan sees it beside the tenant's documents, and
// another scan of the tenant does not.
func TestScanVEXIsStoredOnce(t *testing.T) {
	store := newStore()
	doc := read(t, "openvex/trivy.openvex.json")
	first, err := store.Add(t.Context(), "acme", "scan-1", "ci@acme", doc)
	if err != nil {
		t.Fatal(err)
	}
	again, err := store.Add(t.Context(), "acme", "scan-1", "ci@acme", doc)
	if err != nil || again.ID != first.ID {
		t.Fatalf("retried Add: %v, id %s then %s", err, first.ID, again.ID)
	}
	if recs, err := store.ForScan(t.Context(), "acme", "scan-1"); err != nil || len(recs) != 1 {
		t.Errorf("scan-1 sees %d records (%v), want its one", len(recs), err)
	}
	if recs, err := store.ForScan(t.Context(), "acme", "scan-2"); err != nil || len(recs) != 0 {
		t.Errorf("scan-2 sees %d records (%v), want none", len(recs), err)
	}
	other, err := store.Add(t.Context(), "acme", "scan-2", "ci@acme", doc)
	if err != nil || other.ID == first.ID {
		t.Errorf("the same document for another scan: %v, id %s (scan-1's %s)", err, other.ID, first.ID)
	}
}

func TestVersRanges(t *testing.T) {
	doc := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","vulnerabilities":[{"id":"CVE-1","analysis":{"state":"not_affected","justification":"code_not_present"},
	 "affects":[{"ref":"pkg:npm/a","versions":[{"range":"vers:npm/>=1.2.0|<1.4.0|>=2.0.0","status":"unaffected"},{"version":"0.9.1","status":"unaffected"},{"range":"vers:npm/<9","status":"affected"}]}]}]}`)
	d, err := vex.Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	rec := []vex.Record{{ID: "vex-0000000000000001", Statements: d.Statements}}
	for version, want := range map[string]bool{
		"1.2.0": true, "1.3.9": true, "1.4.0": false, "1.1.9": false, "2.0.0": true, "7.1": true,
		"0.9.1": true, "0.9.2": false, "1.3.0-beta": false,
	} {
		v := report.Vulnerability{ID: "CVE-1", Package: "a", Version: version, PURL: "pkg:npm/a@" + version}
		if got := len(vex.Resolve(rec, []report.Vulnerability{v}, nil)) == 1; got != want {
			t.Errorf("version %s covered = %v, want %v", version, got, want)
		}
	}
}
