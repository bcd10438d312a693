package attest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/tollgate/tollgate/internal/golden"
	"github.com/tollgate/tollgate/report"
)

func sum(b byte) string { return strings.Repeat(string("0123456789abcdef"[b%16]), 64) }

// fixedStatement is a statement with fixed inputs, as Finalize builds it.
func fixedStatement() Statement {
	decided := time.Date(2026, 11, 22, 6, 0, 0, 500_000_000, time.UTC)
	r := report.Report{
		ScanID: "0195f3c2-7a10-7c3e-9d2b-4f0a1e2b3c4d", App: "todo", Commit: "0123abc",
		Verdict: report.VerdictWarn, Stage: report.StageDeep,
		Reasons: []report.Reason{{Policy: "vulnerabilities.high", Message: "lodash 4.17.20 has CVE-2021-23337 (high)", Verdict: report.VerdictWarn}},
		VulnDB:  report.VulnDB{Available: true, Path: "/var/lib/tollgate/db", Version: 2, UpdatedAt: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)},
		// Not attested: the caller names the covered objects.
		Evidence:   []report.Evidence{{Name: "ignored.json"}},
		FinishedAt: decided,
	}
	var objs []report.Evidence
	for i, n := range []string{"sbom.cdx.json", "sbom.spdx.json", "report.sarif.json", "verdict.json", "report.json"} {
		objs = append(objs, report.Evidence{Name: n, Bucket: "tollgate-evidence", Key: "scans/" + r.ScanID + "/" + n, VersionID: "v" + string(rune('1'+i)), SHA256: sum(byte(i))})
	}
	return NewStatement(r, objs)
}

// fixedSigner signs with an Ed25519 key from a fixed seed.
func fixedSigner(t *testing.T, seed byte) *Signer {
	t.Helper()
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func verifierOf(t *testing.T, s *Signer) *Verifier {
	t.Helper()
	v, err := NewVerifier(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestStatementGolden(t *testing.T) {
	t.Parallel()
	payload, err := Encode(fixedStatement())
	if err != nil {
		t.Fatal(err)
	}
	golden.AssertJSON(t, "testdata/statement.golden.json", json.RawMessage(payload))

	// The signed bytes are stable: same statement, same payload.
	again, err := Encode(fixedStatement())
	if err != nil || !bytes.Equal(payload, again) {
		t.Fatalf("encoding is not stable: %v", err)
	}
	var generic map[string]any
	if err := json.Unmarshal(payload, &generic); err != nil {
		t.Fatal(err)
	}
	if generic["_type"] != StatementType || generic["predicateType"] != PredicateType {
		t.Fatalf("statement header: %v %v", generic["_type"], generic["predicateType"])
	}
}

func TestEnvelopeGolden(t *testing.T) {
	t.Parallel()
	// Ed25519 is deterministic, so a fixed key gives a fixed envelope.
	env, err := fixedSigner(t, 7).Sign(context.Background(), fixedStatement())
	if err != nil {
		t.Fatal(err)
	}
	golden.Assert(t, "testdata/envelope.golden.json", append(env, '\n'))

	// Checked by hand against the DSSE protocol, not through the library:
	// the signature is over PAE(payloadType, payload).
	var e struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			Sig []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(env, &e); err != nil || len(e.Signatures) != 1 {
		t.Fatalf("envelope: %v", err)
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(e.PayloadType), e.PayloadType, len(e.Payload), e.Payload)
	pub := fixedSigner(t, 7).Public().(ed25519.PublicKey)
	if !ed25519.Verify(pub, pae, e.Signatures[0].Sig) {
		t.Fatal("signature is not over the DSSE PAE")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecSigner, err := NewSigner(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Signer{"ed25519": fixedSigner(t, 1), "ecdsa-p256": ecSigner} {
		t.Run(name, func(t *testing.T) {
			env, err := s.Sign(ctx, fixedStatement())
			if err != nil {
				t.Fatal(err)
			}
			var e dsse.Envelope
			if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != PayloadType || len(e.Signatures) != 1 || e.Signatures[0].KeyID != s.KeyID() {
				t.Fatalf("envelope %s: %v", env, err)
			}
			got, err := Verify(ctx, env, verifierOf(t, s))
			if err != nil {
				t.Fatal(err)
			}
			want := fixedStatement()
			if len(got.Subjects) != len(want.Subjects) || got.Subjects[4] != want.Subjects[4] {
				t.Fatalf("subjects %+v", got.Subjects)
			}
			if got.Predicate.ScanID != want.Predicate.ScanID || !got.Predicate.DecidedAt.Equal(want.Predicate.DecidedAt) ||
				got.Predicate.VulnDB.Version != 2 || len(got.Predicate.Reasons) != 1 {
				t.Fatalf("predicate %+v", got.Predicate)
			}
			if l, ok := got.Location("report.json"); !ok || l.VersionID != "v5" || l.Bucket != "tollgate-evidence" {
				t.Fatalf("location of report.json: %+v %v", l, ok)
			}
		})
	}
}

// resign replaces the envelope's payload, keeping its signatures.
func resign(t *testing.T, env []byte, edit func(*Statement)) []byte {
	t.Helper()
	var e dsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	payload, _ := e.DecodeB64Payload()
	st, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	edit(&st)
	if payload, err = Encode(st); err != nil {
		t.Fatal(err)
	}
	e.Payload = base64.StdEncoding.EncodeToString(payload)
	out, _ := json.Marshal(e)
	return out
}

func TestVerifyRejectsTamperedPayload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := fixedSigner(t, 1)
	env, err := s.Sign(ctx, fixedStatement())
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*Statement){
		"digest":  func(st *Statement) { st.Subjects[0].SHA256 = sum(9) },
		"verdict": func(st *Statement) { st.Predicate.Verdict = report.VerdictPass },
		"dropped": func(st *Statement) { st.Subjects = st.Subjects[1:] },
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(ctx, resign(t, env, edit), verifierOf(t, s))
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("tampered payload: %v, want ErrSignature", err)
			}
		})
	}
	// A signature over another payload type does not verify either.
	var e dsse.Envelope
	json.Unmarshal(env, &e)
	e.PayloadType = "application/json"
	other, _ := json.Marshal(e)
	if _, err := Verify(ctx, other, verifierOf(t, s)); err == nil {
		t.Fatal("other payload type verified")
	}
}

func TestVerifyRejectsWrongKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env, err := fixedSigner(t, 1).Sign(ctx, fixedStatement())
	if err != nil {
		t.Fatal(err)
	}
	wrong := verifierOf(t, fixedSigner(t, 2))
	if _, err := Verify(ctx, env, wrong); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key: %v, want ErrSignature", err)
	}
	// Without a key id the signature is tried, and still fails.
	var e dsse.Envelope
	json.Unmarshal(env, &e)
	e.Signatures[0].KeyID = ""
	anon, _ := json.Marshal(e)
	if _, err := Verify(ctx, anon, wrong); !errors.Is(err, ErrSignature) {
		t.Fatalf("wrong key, no key id: %v, want ErrSignature", err)
	}
	if _, err := Verify(ctx, anon, verifierOf(t, fixedSigner(t, 1))); err != nil {
		t.Fatalf("right key, no key id: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "tollgate.key")
	gen, err := GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for file, mode := range map[string]os.FileMode{path: 0o600, path + PublicKeySuffix: 0o644} {
		st, err := os.Stat(file)
		if err != nil || st.Mode().Perm() != mode {
			t.Fatalf("%s: %v, mode %v want %v", file, err, st.Mode().Perm(), mode)
		}
	}
	priv, _ := os.ReadFile(path)
	pub, _ := os.ReadFile(path + PublicKeySuffix)
	if !bytes.HasPrefix(priv, []byte("-----BEGIN PRIVATE KEY-----")) || !bytes.HasPrefix(pub, []byte("-----BEGIN PUBLIC KEY-----")) {
		t.Fatalf("key files:\n%s\n%s", priv, pub)
	}
	if _, err := GenerateKey(path); err == nil {
		t.Fatal("GenerateKey replaced an existing key")
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, priv) {
		t.Fatal("private key changed")
	}

	s, err := LoadSigner(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := LoadVerifier(path + PublicKeySuffix)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != gen.KeyID() || v.KeyID() != gen.KeyID() || len(s.KeyID()) != 64 {
		t.Fatalf("key ids %s %s %s", gen.KeyID(), s.KeyID(), v.KeyID())
	}
	env, err := s.Sign(ctx, fixedStatement())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, env, v); err != nil {
		t.Fatal(err)
	}

	if _, err := LoadSigner(path + PublicKeySuffix); err == nil {
		t.Fatal("loaded a public key as a signer")
	}
	if _, err := LoadVerifier(path); err == nil {
		t.Fatal("loaded a private key as a verifier")
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewSigner(rsaKey); !errors.Is(err, ErrKeyType) {
		t.Fatalf("RSA key: %v, want ErrKeyType", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewVerifier(p384.Public()); !errors.Is(err, ErrKeyType) {
		t.Fatalf("P-384 key: %v, want ErrKeyType", err)
	}
}

func TestSamePayload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := fixedStatement()
	a, _ := fixedSigner(t, 1).Sign(ctx, st)
	b, _ := fixedSigner(t, 2).Sign(ctx, st)
	if bytes.Equal(a, b) || !SamePayload(a, b) {
		t.Fatal("the same statement signed by two keys is not the same payload")
	}
	st.Predicate.Verdict = report.VerdictBlock
	c, _ := fixedSigner(t, 1).Sign(ctx, st)
	if SamePayload(a, c) || SamePayload(a, []byte("{}")) {
		t.Fatal("different payloads compare equal")
	}
}

func TestEncodeRejectsBadSubjects(t *testing.T) {
	t.Parallel()
	for name, sub := range map[string]Subject{
		"no name":    {SHA256: sum(1)},
		"short hash": {Name: "x", SHA256: "abcd"},
		"not hex":    {Name: "x", SHA256: strings.Repeat("z", 64)},
	} {
		st := fixedStatement()
		st.Subjects = []Subject{sub}
		if _, err := Encode(st); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	st := fixedStatement()
	st.Subjects = nil
	if _, err := Encode(st); err == nil {
		t.Error("no subjects: encoded")
	}
}

// FuzzVerify: envelopes come from storage, which may hold anything. Nothing
// panics, and nothing but the signer's envelopes verifies.
func FuzzVerify(f *testing.F) {
	s, err := NewSigner(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)))
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(s.Public())
	if err != nil {
		f.Fatal(err)
	}
	good, err := s.Sign(context.Background(), fixedStatement())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Verify(context.Background(), data, v)
		if err == nil && len(st.Subjects) == 0 {
			t.Fatalf("verified a statement without subjects: %s", data)
		}
		_, _ = Decode(data)
		_ = SamePayload(data, good)
	})
}
