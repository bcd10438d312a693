package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities"
	"github.com/tollgate/tollgate/attest"
	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/storage"
	"github.com/tollgate/tollgate/tasks"
	"github.com/tollgate/tollgate/workflows"
)

type verifyEnv struct {
	evidence string // the local evidence store
	pub      string // the signing key's public half
	scanID   string
}

// newVerifyEnv finalizes a signed scan into a fresh local evidence store,
// as the orchestrator does at the end of a scan.
func newVerifyEnv(t *testing.T) verifyEnv {
	t.Helper()
	if c, _, _ := newRoot(&globals{}).Find([]string{"verify"}); c == nil || c.Name() != "verify" {
		t.Fatal("`tollgate verify` is not wired: add newVerifyCmd(g) to root.AddCommand in cli.go")
	}
	ctx := context.Background()
	dir := t.TempDir()
	e := verifyEnv{evidence: filepath.Join(dir, "evidence"), pub: filepath.Join(dir, "tollgate.key") + attest.PublicKeySuffix, scanID: "0195f3c2-7a10-7c3e-9d2b-4f0a1e2b3c4d"}
	signer, err := attest.GenerateKey(filepath.Join(dir, "tollgate.key"))
	if err != nil {
		t.Fatal(err)
	}
	store, err := storage.OpenLocal(e.evidence)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sbom, err := store.Put(ctx, "scans/"+e.scanID+"/sbom.cdx.json", "application/vnd.cyclonedx+json", []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6"}`))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC)
	req := workflows.FinalizeRequest{
		Scan:      workflows.ScanRequest{ScanID: e.scanID, App: "todo", Commit: "0123abc"},
		Stage:     report.StageDeep,
		Decisions: []report.Decision{{Verdict: report.VerdictPass, Reasons: []report.Reason{}}},
		Results: []tasks.Result{
			{Kind: tasks.KindSecrets},
			{Kind: tasks.KindDeep, VulnDB: &report.VulnDB{Available: true}, Evidence: []report.Evidence{activities.EvidenceOf("sbom.cdx.json", sbom)}},
		},
		StartedAt: start, FinishedAt: start.Add(time.Second),
	}
	a := &activities.Activities{Evidence: store, Signer: signer}
	if _, err := a.Finalize(ctx, req); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e verifyEnv) verify(t *testing.T, extra ...string) (int, string, string) {
	t.Helper()
	return run(t, append([]string{"verify", e.scanID, "--evidence", e.evidence, "--key", e.pub}, extra...)...)
}

// object is the path of one stored object of the scan.
func (e verifyEnv) object(name string) string {
	return filepath.Join(e.evidence, "scans", e.scanID, name)
}

// rewrite replaces a stored (read-only) file, as someone with access to the
// evidence directory could.
func rewrite(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o444); err != nil {
		t.Fatal(err)
	}
}

func wantLine(t *testing.T, out, state, name string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)^` + state + ` +` + regexp.QuoteMeta(name) + ` `).MatchString(out) {
		t.Errorf("no %s line for %s in:\n%s", state, name, out)
	}
}

func TestVerify(t *testing.T) {
	e := newVerifyEnv(t)

	code, out, errOut := e.verify(t)
	if code != ExitPass {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, n := range []string{activities.AttestationName, "sbom.cdx.json", "report.sarif.json", "verdict.json", "report.json"} {
		wantLine(t, out, "OK", n)
	}
	if !strings.Contains(out, "attestation and 4 objects verified") {
		t.Errorf("no summary in:\n%s", out)
	}

	// Someone rewrites the SBOM: the store no longer returns it intact.
	rewrite(t, e.object("sbom.cdx.json"), []byte(`{"bomFormat":"CycloneDX","components":[]}`))
	code, out, errOut = e.verify(t)
	if code != ExitUnverified {
		t.Fatalf("tampered SBOM: exit %d\n%s%s", code, out, errOut)
	}
	wantLine(t, out, "ERROR", "sbom.cdx.json")
	wantLine(t, out, "OK", "report.json")
	if !strings.Contains(errOut, "sbom.cdx.json") {
		t.Errorf("stderr does not name the object: %s", errOut)
	}

	// Someone rewrites the report and its recorded digest, so that the
	// store itself cannot tell: the attestation can.
	forged := []byte(`{"schema":"tollgate/report/v1","verdict":"pass"}`)
	rewrite(t, e.object("report.json"), forged)
	sum := sha256.Sum256(forged)
	meta, _ := json.Marshal(map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(forged), "content_type": "application/json"})
	rewrite(t, e.object("report.json")+".meta", meta)
	code, out, errOut = e.verify(t)
	if code != ExitUnverified {
		t.Fatalf("forged report: exit %d\n%s%s", code, out, errOut)
	}
	wantLine(t, out, "MISMATCH", "report.json")
	if !strings.Contains(errOut, "report.json (MISMATCH)") {
		t.Errorf("stderr does not name the object: %s", errOut)
	}

	// Someone deletes the verdict.
	for _, p := range []string{e.object("verdict.json"), e.object("verdict.json") + ".meta"} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut = e.verify(t)
	if code != ExitUnverified {
		t.Fatalf("deleted verdict: exit %d\n%s%s", code, out, errOut)
	}
	wantLine(t, out, "MISSING", "verdict.json")
	wantLine(t, out, "OK", "report.sarif.json")
}

func TestVerifyRefuses(t *testing.T) {
	e := newVerifyEnv(t)

	// Another key: the signature does not verify, and no object is trusted.
	other := filepath.Join(t.TempDir(), "other.key")
	if _, err := attest.GenerateKey(other); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, "verify", e.scanID, "--evidence", e.evidence, "--key", other+attest.PublicKeySuffix)
	if code != ExitUnverified || out != "" || !strings.Contains(errOut, "signature does not verify") {
		t.Fatalf("wrong key: exit %d\n%s%s", code, out, errOut)
	}

	// A forged attestation, signed by another key, over the real one.
	rewrite(t, e.object(activities.AttestationName), forgedAttestation(t, other, e.scanID))
	att, _ := os.ReadFile(e.object(activities.AttestationName))
	sum := sha256.Sum256(att)
	meta, _ := json.Marshal(map[string]any{"sha256": hex.EncodeToString(sum[:]), "size": len(att), "content_type": attest.EnvelopeMediaType})
	rewrite(t, e.object(activities.AttestationName)+".meta", meta)
	if code, out, errOut := e.verify(t); code != ExitUnverified || !strings.Contains(errOut, "signature does not verify") {
		t.Fatalf("forged attestation: exit %d\n%s%s", code, out, errOut)
	}

	// No attestation for this scan.
	code, _, errOut = run(t, "verify", "no-such-scan", "--evidence", e.evidence, "--key", e.pub)
	if code != ExitUnverified || !strings.Contains(errOut, "no attestation") {
		t.Fatalf("unknown scan: exit %d: %s", code, errOut)
	}

	for name, args := range map[string][]string{
		"no key":          {"verify", e.scanID, "--evidence", e.evidence, "--key", ""},
		"no key file":     {"verify", e.scanID, "--evidence", e.evidence, "--key", filepath.Join(t.TempDir(), "none.pub")},
		"private key":     {"verify", e.scanID, "--evidence", e.evidence, "--key", other},
		"no evidence dir": {"verify", e.scanID, "--evidence", filepath.Join(t.TempDir(), "none"), "--key", e.pub},
		"bad scan id":     {"verify", "../" + e.scanID, "--evidence", e.evidence, "--key", e.pub},
		"no scan id":      {"verify", "--evidence", e.evidence, "--key", e.pub},
	} {
		if code, _, errOut := run(t, args...); code != ExitBadInput {
			t.Errorf("%s: exit %d, want %d: %s", name, code, ExitBadInput, errOut)
		}
	}
}

// forgedAttestation signs, with the key at keyPath, a statement that says
// the scan passed.
func forgedAttestation(t *testing.T, keyPath, scanID string) []byte {
	t.Helper()
	s, err := attest.LoadSigner(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	env, err := s.Sign(context.Background(), attest.NewStatement(
		report.Report{ScanID: scanID, App: "todo", Verdict: report.VerdictPass, Stage: report.StageDeep},
		[]report.Evidence{{Name: "report.json", Bucket: storage.LocalBucket, Key: "scans/" + scanID + "/report.json", SHA256: strings.Repeat("ab", 32)}}))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestScanThenVerify: a scan signed with --signing-key verifies with the
// public key, end to end through the embedded stack.
func TestScanThenVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("starts servers and loads the scanners")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.pem")
	if _, err := attest.GenerateKey(key); err != nil {
		t.Fatal(err)
	}
	evidence := filepath.Join(dir, "evidence")
	out := filepath.Join(dir, "report.json")
	code, _, stderr := run(t, "scan", "-q", "--full", "--db", filepath.Join(dir, "no-db"), "--evidence", evidence, "--signing-key", key,
		"--format", "json", "--output", out, filepath.Join("..", "..", "examples", "clean-static"))
	if code != ExitPass {
		t.Fatalf("scan: exit %d: %s", code, stderr)
	}
	var r report.Report
	raw, _ := os.ReadFile(out)
	json.Unmarshal(raw, &r)
	if code, stdout, stderr := run(t, "verify", r.ScanID, "--evidence", evidence, "--key", key+attest.PublicKeySuffix); code != 0 {
		t.Fatalf("verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// TestVerifySeveral: several scan ids are checked in one run; one that does
// not verify fails the run and is named, the others still print their lines.
func TestVerifySeveral(t *testing.T) {
	e := newVerifyEnv(t)
	code, out, errOut := run(t, "verify", e.scanID, e.scanID, "--evidence", e.evidence, "--key", e.pub)
	if code != ExitPass || strings.Count(out, "attestation and 4 objects verified") != 2 || !strings.Contains(out, "2 scans verified") {
		t.Fatalf("two good scans: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run(t, "verify", e.scanID, "no-such-scan", e.scanID, "--evidence", e.evidence, "--key", e.pub)
	if code != ExitUnverified || strings.Count(out, "attestation and 4 objects verified") != 2 ||
		!strings.Contains(out, "scan no-such-scan: NOT VERIFIED") || !strings.Contains(errOut, "1 of 3 scans did not verify: no-such-scan") {
		t.Fatalf("one unknown scan among good ones: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := run(t, "verify", e.scanID, "../x", "--evidence", e.evidence, "--key", e.pub); code != ExitBadInput {
		t.Fatalf("a bad id among good ones: exit %d, want %d: %s", code, ExitBadInput, errOut)
	}
}
