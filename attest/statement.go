// Package attest signs what a scan decided: an in-toto v1 Statement whose
// subjects are the scan's evidence objects and whose predicate is the verdict
// and where each object is stored, wrapped in a DSSE envelope.
//
// The statement schema comes from github.com/in-toto/attestation (its Go
// protos and their Validate), the envelope and its pre-authentication
// encoding from github.com/secure-systems-lab/go-securesystemslib/dsse, and
// key handling from github.com/sigstore/sigstore. This package only maps
// tollgate's report onto them.
package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	ita1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/tollgate/tollgate/report"
)

const (
	// StatementType is the in-toto Statement version this package writes.
	StatementType = ita1.StatementTypeUri
	// PredicateType names tollgate's scan predicate.
	PredicateType = "https://tollgate.dev/attestation/scan/v1"
	// PayloadType is the DSSE payload type of an in-toto statement.
	PayloadType = "application/vnd.in-toto+json"
	// EnvelopeMediaType is the content type a stored envelope is given.
	EnvelopeMediaType = "application/vnd.dsse.envelope.v1+json"
)

// ErrStatement is returned when a payload is not a tollgate scan statement.
var ErrStatement = errors.New("not a tollgate scan statement")

// Statement is what tollgate attests about one scan: the stored objects
// (subjects) and the decision they support (predicate).
type Statement struct {
	Subjects  []Subject
	Predicate Predicate
}

// Subject is one attested evidence object.
type Subject struct {
	// Name is the evidence name ("sbom.cdx.json", "report.json", ...).
	Name string
	// SHA256 is the hex digest of the object's bytes.
	SHA256 string
}

// Predicate is the body of a tollgate scan statement
// (https://tollgate.dev/attestation/scan/v1).
type Predicate struct {
	ScanID    string          `json:"scan_id"`
	App       string          `json:"app"`
	Commit    string          `json:"commit,omitempty"`
	Verdict   report.Verdict  `json:"verdict"`
	Stage     string          `json:"stage"`
	Reasons   []report.Reason `json:"reasons"`
	VulnDB    report.VulnDB   `json:"vulndb"`
	Evidence  []Location      `json:"evidence"`
	DecidedAt time.Time       `json:"decided_at"`
}

// Location says where one subject is stored; Name joins it to its subject.
type Location struct {
	Name      string `json:"name"`
	Bucket    string `json:"bucket"`
	Key       string `json:"key"`
	VersionID string `json:"version_id"`
}

// NewStatement builds the statement of a scan over the given stored objects,
// in their order. The decision is taken from r; r.Evidence is not read, so
// the caller chooses what is covered (the report itself, say).
func NewStatement(r report.Report, objects []report.Evidence) Statement {
	st := Statement{Predicate: Predicate{
		ScanID: r.ScanID, App: r.App, Commit: r.Commit, Verdict: r.Verdict, Stage: r.Stage,
		Reasons: slices.Clone(r.Reasons), VulnDB: r.VulnDB, Evidence: []Location{}, DecidedAt: r.FinishedAt,
	}}
	if st.Predicate.Reasons == nil {
		st.Predicate.Reasons = []report.Reason{}
	}
	for _, o := range objects {
		st.Subjects = append(st.Subjects, Subject{Name: o.Name, SHA256: o.SHA256})
		st.Predicate.Evidence = append(st.Predicate.Evidence, Location{Name: o.Name, Bucket: o.Bucket, Key: o.Key, VersionID: o.VersionID})
	}
	return st
}

// Location returns where the subject called name is stored.
func (s Statement) Location(name string) (Location, bool) {
	for _, l := range s.Predicate.Evidence {
		if l.Name == name {
			return l, true
		}
	}
	return Location{}, false
}

// Encode renders the statement as in-toto v1 JSON, validated against the
// in-toto schema. The same statement always gives the same bytes.
func Encode(s Statement) ([]byte, error) {
	pb, err := s.proto()
	if err != nil {
		return nil, err
	}
	out, err := protojson.Marshal(pb)
	if err != nil {
		return nil, fmt.Errorf("encode statement of scan %s: %w", s.Predicate.ScanID, err)
	}
	// protojson deliberately varies its whitespace from build to build. The
	// signed bytes must not vary: a retried Finalize, maybe on a newer
	// worker, has to store the same attestation.
	var buf bytes.Buffer
	if err := json.Compact(&buf, out); err != nil {
		return nil, fmt.Errorf("encode statement of scan %s: %w", s.Predicate.ScanID, err)
	}
	return buf.Bytes(), nil
}

func (s Statement) proto() (*ita1.Statement, error) {
	raw, err := json.Marshal(s.Predicate)
	if err != nil {
		return nil, fmt.Errorf("encode predicate of scan %s: %w", s.Predicate.ScanID, err)
	}
	pred := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, pred); err != nil {
		return nil, fmt.Errorf("encode predicate of scan %s: %w", s.Predicate.ScanID, err)
	}
	pb := &ita1.Statement{Type: StatementType, PredicateType: PredicateType, Predicate: pred}
	for _, sub := range s.Subjects {
		if sub.Name == "" {
			return nil, fmt.Errorf("statement of scan %s: subject without a name", s.Predicate.ScanID)
		}
		pb.Subject = append(pb.Subject, &ita1.ResourceDescriptor{
			Name: sub.Name, Digest: map[string]string{string(ita1.AlgorithmSHA256): sub.SHA256},
		})
	}
	if err := pb.Validate(); err != nil {
		return nil, fmt.Errorf("statement of scan %s: %w", s.Predicate.ScanID, err)
	}
	return pb, nil
}

// Decode parses an in-toto v1 statement with tollgate's scan predicate. It
// does not check any signature: use Verify for payloads read from storage.
func Decode(payload []byte) (Statement, error) {
	var pb ita1.Statement
	// in-toto consumers must ignore fields they do not know.
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(payload, &pb); err != nil {
		return Statement{}, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	if err := pb.Validate(); err != nil {
		return Statement{}, fmt.Errorf("%w: %w", ErrStatement, err)
	}
	if pb.GetPredicateType() != PredicateType {
		return Statement{}, fmt.Errorf("%w: predicate type %q, want %q", ErrStatement, pb.GetPredicateType(), PredicateType)
	}
	var st Statement
	for _, sub := range pb.GetSubject() {
		sum := sub.GetDigest()[string(ita1.AlgorithmSHA256)]
		if sub.GetName() == "" || sum == "" {
			return Statement{}, fmt.Errorf("%w: subject %q has no name or no sha256 digest", ErrStatement, sub.GetName())
		}
		st.Subjects = append(st.Subjects, Subject{Name: sub.GetName(), SHA256: sum})
	}
	raw, err := protojson.Marshal(pb.GetPredicate())
	if err != nil {
		return Statement{}, fmt.Errorf("%w: predicate: %w", ErrStatement, err)
	}
	if err := json.Unmarshal(raw, &st.Predicate); err != nil {
		return Statement{}, fmt.Errorf("%w: predicate: %w", ErrStatement, err)
	}
	if st.Predicate.ScanID == "" {
		return Statement{}, fmt.Errorf("%w: predicate has no scan_id", ErrStatement)
	}
	return st, nil
}
