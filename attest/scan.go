package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/tollgate/tollgate/storage"
)

// AttestationName is the evidence name of a scan's signed in-toto statement
// (a DSSE envelope), stored at scans/<id>/attestation.intoto.json.
const AttestationName = "attestation.intoto.json"

// AttestationKey is where a scan's attestation is stored.
func AttestationKey(scanID string) string { return path.Join("scans", scanID, AttestationName) }

// Object states of a verification, one per attested object.
const (
	StateOK       = "OK"       // the stored object is the attested one
	StateMismatch = "MISMATCH" // stored, but its digest or version differs
	StateMissing  = "MISSING"  // not in the store, or not located by the attestation
	StateError    = "ERROR"    // the store failed or refused to return it intact
)

// ErrUnverified wraps every reason a scan's evidence does not verify.
var ErrUnverified = errors.New("evidence does not verify")

// Getter reads evidence; storage.Evidence is one.
type Getter interface {
	Get(ctx context.Context, key string) ([]byte, storage.Object, error)
}

// ObjectCheck is the verification of one attested object.
type ObjectCheck struct {
	Name   string `json:"name"`
	Key    string `json:"key"`
	State  string `json:"state"`
	Detail string `json:"detail"`
}

// ScanCheck is the verification of one scan's evidence.
type ScanCheck struct {
	Statement Statement     `json:"-"`
	KeyID     string        `json:"key_id"`
	Objects   []ObjectCheck `json:"objects"`
}

// VerifyScan checks a scan's attestation against v and every object it
// names against the store. The error wraps ErrUnverified when the evidence
// does not verify (the check so far is returned with it), and is anything
// else when the store or ctx failed.
func VerifyScan(ctx context.Context, store Getter, v *Verifier, scanID string) (ScanCheck, error) {
	if scanID == "" || strings.ContainsAny(scanID, `/\`) || scanID == "." || scanID == ".." {
		return ScanCheck{}, fmt.Errorf("verify scan %q: not a scan id", scanID)
	}
	attKey := AttestationKey(scanID)
	env, _, err := store.Get(ctx, attKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ScanCheck{}, fmt.Errorf("%w: scan %s has no attestation (%s): the scan was not signed, or there is no such scan", ErrUnverified, scanID, attKey)
	case ctx.Err() != nil:
		return ScanCheck{}, ctx.Err()
	case err != nil:
		return ScanCheck{}, fmt.Errorf("%w: read attestation of scan %s: %w", ErrUnverified, scanID, err)
	}
	st, err := Verify(ctx, env, v)
	if err != nil {
		return ScanCheck{}, fmt.Errorf("%w: attestation of scan %s (%s): %w", ErrUnverified, scanID, attKey, err)
	}
	if st.Predicate.ScanID != scanID {
		return ScanCheck{}, fmt.Errorf("%w: attestation at %s is about scan %s, not %s", ErrUnverified, attKey, st.Predicate.ScanID, scanID)
	}
	check := ScanCheck{Statement: st, KeyID: v.KeyID()}
	check.Objects = append(check.Objects, ObjectCheck{Name: AttestationName, Key: attKey, State: StateOK, Detail: "signed by key " + v.KeyID()})
	var failed []string
	for _, sub := range st.Subjects {
		oc := verifyObject(ctx, store, st, sub)
		if err := ctx.Err(); err != nil {
			return check, err
		}
		check.Objects = append(check.Objects, oc)
		if oc.State != StateOK {
			failed = append(failed, fmt.Sprintf("%s (%s)", sub.Name, oc.State))
		}
	}
	if len(failed) > 0 {
		return check, fmt.Errorf("%w: scan %s: %d of %d attested objects: %s",
			ErrUnverified, scanID, len(failed), len(st.Subjects), strings.Join(failed, ", "))
	}
	return check, nil
}

// verifyObject compares one stored object with its subject and location.
func verifyObject(ctx context.Context, store Getter, st Statement, sub Subject) ObjectCheck {
	oc := ObjectCheck{Name: sub.Name, Key: "-"}
	loc, ok := st.Location(sub.Name)
	if !ok || loc.Key == "" {
		oc.State, oc.Detail = StateMissing, "the attestation does not say where it is stored"
		return oc
	}
	oc.Key = loc.Key
	data, obj, err := store.Get(ctx, loc.Key)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		oc.State, oc.Detail = StateMissing, "not in the evidence store"
		return oc
	case err != nil:
		oc.State, oc.Detail = StateError, oneLine(err.Error())
		return oc
	}
	// The store's digest is its own record; the bytes are what count.
	sum := sha256.Sum256(data)
	got := hex.EncodeToString(sum[:])
	if got != sub.SHA256 {
		oc.State, oc.Detail = StateMismatch, fmt.Sprintf("sha256 %s, attested %s", got, sub.SHA256)
		return oc
	}
	// Versions are the recorded bucket's; a copy elsewhere has its own.
	if loc.VersionID != "" && obj.Bucket == loc.Bucket && obj.VersionID != loc.VersionID {
		oc.State, oc.Detail = StateMismatch, fmt.Sprintf("version %s, attested %s", obj.VersionID, loc.VersionID)
		return oc
	}
	oc.State, oc.Detail = StateOK, "sha256 "+got
	return oc
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Verification is one scan's evidence check read as an answer: what
// `tollgate verify` prints and GET /v1/scans/{id}/verify returns. Evidence
// that does not verify is an answer too (OK false, with its problems), not
// an error.
type Verification struct {
	ScanID string `json:"scan_id"`
	OK     bool   `json:"ok"`
	// Checked are the objects checked, the attestation first; empty when
	// the attestation itself did not verify.
	Checked []ObjectCheck `json:"checked"`
	// Problems say why the evidence does not verify, one per object that
	// is not OK, or the attestation's own.
	Problems []string `json:"problems"`
	// Statement is the signed statement, once its signature verified.
	Statement Statement `json:"-"`
}

// Err is nil for evidence that verifies, else an error wrapping
// ErrUnverified that names the problems.
func (v Verification) Err() error {
	if v.OK {
		return nil
	}
	return fmt.Errorf("%w: scan %s: %s", ErrUnverified, v.ScanID, strings.Join(v.Problems, "; "))
}

// CheckScan checks a scan's attestation against v and every object it
// names (VerifyScan). Evidence that does not verify is a Verification with
// OK false; the error is for a bad scan id, the store or ctx failing.
func CheckScan(ctx context.Context, store Getter, v *Verifier, scanID string) (Verification, error) {
	res := Verification{ScanID: scanID, Checked: []ObjectCheck{}, Problems: []string{}}
	check, err := VerifyScan(ctx, store, v, scanID)
	res.Statement = check.Statement
	res.Checked = append(res.Checked, check.Objects...)
	switch {
	case err == nil:
		res.OK = true
		return res, nil
	case ctx.Err() != nil:
		return res, ctx.Err()
	case !errors.Is(err, ErrUnverified):
		return res, err
	}
	for _, oc := range check.Objects {
		if oc.State != StateOK {
			res.Problems = append(res.Problems, fmt.Sprintf("%s (%s): %s", oc.Name, oc.State, oc.Detail))
		}
	}
	if len(res.Problems) == 0 {
		res.Problems = append(res.Problems, strings.TrimPrefix(err.Error(), ErrUnverified.Error()+": "))
	}
	return res, nil
}
