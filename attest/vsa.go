package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	vsa1 "github.com/in-toto/attestation/go/predicates/vsa/v1"
	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tollgate/tollgate/report"
)

const (
	// VSAPredicateType is SLSA's Verification Summary Attestation v1.
	VSAPredicateType = "https://slsa.dev/verification_summary/v1"
	// VSAName is the evidence name of a scan's signed VSA.
	VSAName = "vsa.intoto.json"
	// VerifierID names tollgate as the verifier in its VSAs.
	VerifierID = "https://tollgate.dev/verifier"
	// PolicyURI names the policy a VSA's verdict was decided by: the
	// tenant's bundle at the orchestrator (see the README's "Policies").
	PolicyURI = "https://tollgate.dev/policy/bundle"

	// The verification results a VSA states.
	VSAPassed = "PASSED"
	VSAFailed = "FAILED"
)

// fullCommit is a whole git object id, which in-toto's gitCommit digest
// requires.
var fullCommit = regexp.MustCompile(`^([0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)

// ErrNoVSASubject is a scan with nothing to name as what was verified: no
// source archive digest and no commit.
var ErrNoVSASubject = errors.New("the scan has no source archive digest or commit to name as the VSA's subject")

// VSA is what a Verification Summary Attestation says of one scan: the
// source it verified (the submitted archive's digest and, when known, the
// commit), the verdict as PASSED (pass or warn) or FAILED (block), and the
// scan's own signed statement as its input attestation.
type VSA struct {
	ScanID string
	App    string
	// ArchiveSHA256 is the submitted source archive's digest; Commit the
	// git commit it claims to be. At least one is needed.
	ArchiveSHA256 string
	Commit        string
	Verdict       report.Verdict
	DecidedAt     time.Time
	// Version is tollgate's version, the verifier's.
	Version string
	// Attestation is the scan's stored signed statement.
	Attestation report.Evidence
	// PolicyDigest is the sha256 (hex) of the policy bundle that decided
	// the verdict (policies.Bundle.Digest); the VSA's policy.digest.
	PolicyDigest string
}

// NewVSA describes the scan r decided, over the source it read, with its
// signed statement att as input.
func NewVSA(r report.Report, archiveSHA256, version string, att report.Evidence) VSA {
	return VSA{ScanID: r.ScanID, App: r.App, ArchiveSHA256: archiveSHA256, Commit: r.Commit, Verdict: r.Verdict,
		DecidedAt: r.FinishedAt, Version: version, Attestation: att}
}

// Result is the VSA's verificationResult for the verdict.
func (v VSA) Result() string {
	if v.Verdict == report.VerdictBlock {
		return VSAFailed
	}
	return VSAPassed
}

// levels are the VSA's verifiedLevels: tollgate checks no SLSA build
// level, so its verdict is stated as a custom property
// (TOLLGATE_VERDICT_PASS, _WARN or _BLOCK), which a consumer's policy can
// require.
func (v VSA) levels() []string {
	return []string{"TOLLGATE_VERDICT_" + strings.ToUpper(string(v.Verdict))}
}

// policy names the bundle that decided, with its digest when known.
func (v VSA) policy() *vsa1.VerificationSummary_Policy {
	p := &vsa1.VerificationSummary_Policy{Uri: PolicyURI}
	if v.PolicyDigest != "" {
		p.Digest = map[string]string{string(ita1.AlgorithmSHA256): v.PolicyDigest}
	}
	return p
}

func (v VSA) statement() (*ita1.Statement, error) {
	sub := &ita1.ResourceDescriptor{Name: "app:" + v.App, Digest: map[string]string{}}
	if v.ArchiveSHA256 != "" {
		sub.Digest[string(ita1.AlgorithmSHA256)] = v.ArchiveSHA256
	}
	if fullCommit.MatchString(v.Commit) {
		// in-toto takes a full commit id only (SHA-1, or SHA-256 git).
		sub.Digest[string(ita1.AlgorithmGitCommit)] = strings.ToLower(v.Commit)
	}
	if len(sub.Digest) == 0 {
		return nil, fmt.Errorf("VSA of scan %s: %w", v.ScanID, ErrNoVSASubject)
	}
	pred := &vsa1.VerificationSummary{
		Verifier:     &vsa1.VerificationSummary_Verifier{Id: VerifierID},
		TimeVerified: timestamppb.New(v.DecidedAt.UTC()),
		ResourceUri:  "tollgate:scan/" + v.ScanID,
		Policy:       v.policy(),
		InputAttestations: []*vsa1.VerificationSummary_InputAttestation{{
			Uri: v.Attestation.Key, Digest: map[string]string{string(ita1.AlgorithmSHA256): v.Attestation.SHA256},
		}},
		VerificationResult: v.Result(),
		VerifiedLevels:     v.levels(),
		SlsaVersion:        "1.0",
	}
	raw, err := protojson.Marshal(pred)
	if err != nil {
		return nil, fmt.Errorf("encode VSA of scan %s: %w", v.ScanID, err)
	}
	body := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, body); err != nil {
		return nil, fmt.Errorf("encode VSA of scan %s: %w", v.ScanID, err)
	}
	if v.Version != "" {
		// The spec's verifier.version, which the Go proto lacks.
		body.Fields["verifier"].GetStructValue().Fields["version"] = structpb.NewStructValue(&structpb.Struct{
			Fields: map[string]*structpb.Value{"tollgate": structpb.NewStringValue(v.Version)}})
	}
	st := &ita1.Statement{Type: StatementType, Subject: []*ita1.ResourceDescriptor{sub}, PredicateType: VSAPredicateType, Predicate: body}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("VSA of scan %s: %w", v.ScanID, err)
	}
	return st, nil
}

// EncodeVSA renders the VSA as an in-toto v1 statement, validated against
// the in-toto schema; the same VSA always gives the same bytes.
func EncodeVSA(v VSA) ([]byte, error) {
	st, err := v.statement()
	if err != nil {
		return nil, err
	}
	out, err := protojson.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode VSA of scan %s: %w", v.ScanID, err)
	}
	// Compacted, as Encode does: protojson varies its whitespace.
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, fmt.Errorf("encode VSA of scan %s: %w", v.ScanID, err)
	}
	return buf.Bytes(), nil
}

// SignVSA returns the VSA signed like the scan's statement, as DSSE
// envelope JSON.
func (s *Signer) SignVSA(ctx context.Context, v VSA) ([]byte, error) {
	payload, err := EncodeVSA(v)
	if err != nil {
		return nil, err
	}
	env, err := s.envelope.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign VSA of scan %s: %w", v.ScanID, err)
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode VSA envelope of scan %s: %w", v.ScanID, err)
	}
	return out, nil
}

// VerifyVSA checks a VSA envelope's signature and returns its statement
// and summary.
func VerifyVSA(ctx context.Context, envelope []byte, v *Verifier) (*ita1.Statement, *vsa1.VerificationSummary, error) {
	env, err := parseEnvelope(envelope)
	if err != nil {
		return nil, nil, err
	}
	_, payload, err := v.envelope.VerifyAndDecode(ctx, env)
	if err != nil {
		return nil, nil, fmt.Errorf("%w with key %s: %w", ErrSignature, v.keyID, err)
	}
	var st ita1.Statement
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &st); err != nil {
		return nil, nil, fmt.Errorf("decode VSA statement: %w", err)
	}
	if err := st.Validate(); err != nil || st.PredicateType != VSAPredicateType {
		return nil, nil, fmt.Errorf("not a VSA statement (%s): %v", st.PredicateType, err)
	}
	raw, err := protojson.Marshal(st.Predicate)
	if err != nil {
		return nil, nil, fmt.Errorf("decode VSA predicate: %w", err)
	}
	var sum vsa1.VerificationSummary
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, &sum); err != nil {
		return nil, nil, fmt.Errorf("decode VSA predicate: %w", err)
	}
	return &st, &sum, nil
}
