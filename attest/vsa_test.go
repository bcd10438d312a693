package attest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	ita1 "github.com/in-toto/attestation/go/v1"

	"github.com/tollgate/tollgate/report"
)

func testVSA(verdict report.Verdict) VSA {
	return VSA{ScanID: "0b1c2d3e-0000-4000-8000-000000000001", App: "shop", ArchiveSHA256: strings.Repeat("ab", 32),
		Commit: strings.Repeat("c", 40), Verdict: verdict, DecidedAt: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC), Version: "1.2.3",
		PolicyDigest: strings.Repeat("0d", 32),
		Attestation:  report.Evidence{Name: AttestationName, Key: "scans/x/" + AttestationName, SHA256: strings.Repeat("01", 32)}}
}

// TestVSAFollowsTheSpec: the signed VSA verifies, is an in-toto v1
// statement (the in-toto schema's own Validate), and carries every field
// SLSA's VSA v1 requires: verifier.id, timeVerified, resourceUri, policy,
// verificationResult PASSED or FAILED (the policy named by its bundle's
// digest), verifiedLevels; the subject is the
// source by its archive digest and commit, and the scan's statement is its
// input attestation.
func TestVSAFollowsTheSpec(t *testing.T) {
	ctx := context.Background()
	s := fixedSigner(t, 3)
	for verdict, result := range map[report.Verdict]string{report.VerdictPass: VSAPassed, report.VerdictWarn: VSAPassed, report.VerdictBlock: VSAFailed} {
		env, err := s.SignVSA(ctx, testVSA(verdict))
		if err != nil {
			t.Fatal(err)
		}
		st, sum, err := VerifyVSA(ctx, env, verifierOf(t, s))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Validate(); err != nil || st.GetType() != ita1.StatementTypeUri || st.GetPredicateType() != VSAPredicateType {
			t.Fatalf("statement %v: %v", st, err)
		}
		sub := st.GetSubject()
		if len(sub) != 1 || sub[0].GetDigest()["sha256"] != strings.Repeat("ab", 32) || sub[0].GetDigest()["gitCommit"] != strings.Repeat("c", 40) {
			t.Errorf("subject %v", sub)
		}
		if sum.GetVerifier().GetId() != VerifierID || !sum.GetTimeVerified().AsTime().Equal(testVSA(verdict).DecidedAt) ||
			sum.GetResourceUri() == "" || sum.GetPolicy().GetUri() != PolicyURI || sum.GetPolicy().GetDigest()["sha256"] != strings.Repeat("0d", 32) || sum.GetVerificationResult() != result ||
			sum.GetVerifiedLevels() == nil || sum.GetSlsaVersion() != "1.0" {
			t.Errorf("%s: summary %v", verdict, sum)
		}
		if in := sum.GetInputAttestations(); len(in) != 1 || in[0].GetDigest()["sha256"] != strings.Repeat("01", 32) {
			t.Errorf("input attestations %v", in)
		}
		if got := st.GetPredicate().GetFields()["verifier"].GetStructValue().GetFields()["version"].GetStructValue().GetFields()["tollgate"].GetStringValue(); got != "1.2.3" {
			t.Errorf("verifier.version.tollgate %q", got)
		}
	}
	// Another key's VSA does not verify.
	env, _ := fixedSigner(t, 4).SignVSA(ctx, testVSA(report.VerdictPass))
	if _, _, err := VerifyVSA(ctx, env, verifierOf(t, s)); !errors.Is(err, ErrSignature) {
		t.Errorf("another key's VSA: %v", err)
	}
	// Without an archive digest or a full commit there is no subject.
	v := testVSA(report.VerdictPass)
	v.ArchiveSHA256, v.Commit = "", "abc1234"
	if _, err := EncodeVSA(v); !errors.Is(err, ErrNoVSASubject) {
		t.Errorf("no subject: %v", err)
	}
	// The same VSA gives the same bytes.
	a, _ := EncodeVSA(testVSA(report.VerdictWarn))
	b, _ := EncodeVSA(testVSA(report.VerdictWarn))
	if string(a) != string(b) {
		t.Error("EncodeVSA is not deterministic")
	}
}
