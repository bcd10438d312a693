package attest

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
)

// ErrSignature is returned when an envelope is not signed by the given key.
var ErrSignature = errors.New("attestation signature does not verify")

// Signer signs statements into DSSE envelopes with one private key.
type Signer struct {
	keyID    string
	pub      crypto.PublicKey
	envelope *dsse.EnvelopeSigner
	blob     signature.Signer
}

// NewSigner signs with priv: an ed25519.PrivateKey or a P-256 *ecdsa.PrivateKey
// (ECDSA signs the SHA-256 digest; signatures are ASN.1 DER).
func NewSigner(priv crypto.PrivateKey) (*Signer, error) {
	cs, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w (got %T)", ErrKeyType, priv)
	}
	pub := cs.Public()
	if err := checkPublic(pub); err != nil {
		return nil, err
	}
	keyID, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	ss, err := signature.LoadSigner(priv, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	es, err := dsse.NewEnvelopeSigner(&sigdsse.SignerAdapter{SignatureSigner: ss, Pub: pub, PubKeyID: keyID})
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &Signer{keyID: keyID, pub: pub, envelope: es, blob: ss}, nil
}

// KeyID identifies the signing key (see KeyID).
func (s *Signer) KeyID() string { return s.keyID }

// Public returns the public half of the signing key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// Sign encodes the statement and returns it signed, as DSSE envelope JSON.
// With an Ed25519 key the same statement always gives the same envelope.
func (s *Signer) Sign(ctx context.Context, st Statement) ([]byte, error) {
	payload, err := Encode(st)
	if err != nil {
		return nil, err
	}
	env, err := s.envelope.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("sign statement of scan %s: %w", st.Predicate.ScanID, err)
	}
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode envelope of scan %s: %w", st.Predicate.ScanID, err)
	}
	return out, nil
}

// Verifier checks envelopes against one public key.
type Verifier struct {
	keyID    string
	envelope *dsse.EnvelopeVerifier
	blob     signature.Verifier
}

// NewVerifier verifies with pub: an ed25519.PublicKey or a P-256 *ecdsa.PublicKey.
func NewVerifier(pub crypto.PublicKey) (*Verifier, error) {
	if err := checkPublic(pub); err != nil {
		return nil, err
	}
	keyID, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	sv, err := signature.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	ev, err := dsse.NewEnvelopeVerifier(&sigdsse.VerifierAdapter{SignatureVerifier: sv, Pub: pub, PubKeyID: keyID})
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	return &Verifier{keyID: keyID, envelope: ev, blob: sv}, nil
}

// KeyID identifies the verifying key (see KeyID).
func (v *Verifier) KeyID() string { return v.keyID }

// Verify checks that envelope (DSSE JSON) carries an in-toto statement signed
// by v's key and returns the statement. It fails with ErrSignature when no
// signature verifies, and with ErrStatement when the signed payload is not a
// tollgate scan statement.
func Verify(ctx context.Context, envelope []byte, v *Verifier) (Statement, error) {
	env, err := parseEnvelope(envelope)
	if err != nil {
		return Statement{}, err
	}
	if env.PayloadType != PayloadType {
		return Statement{}, fmt.Errorf("verify attestation: payload type %q, want %q", env.PayloadType, PayloadType)
	}
	_, payload, err := v.envelope.VerifyAndDecode(ctx, env)
	if err != nil {
		return Statement{}, fmt.Errorf("%w with key %s: %w", ErrSignature, v.keyID, err)
	}
	return Decode(payload)
}

// SamePayload tells whether two envelopes carry the same payload, signed or
// not: a statement signed again (ECDSA, or another key) is the same claim.
func SamePayload(a, b []byte) bool {
	ea, err := parseEnvelope(a)
	if err != nil {
		return false
	}
	eb, err := parseEnvelope(b)
	if err != nil {
		return false
	}
	pa, erra := ea.DecodeB64Payload()
	pb, errb := eb.DecodeB64Payload()
	return erra == nil && errb == nil && ea.PayloadType == eb.PayloadType && bytes.Equal(pa, pb)
}

func parseEnvelope(data []byte) (*dsse.Envelope, error) {
	var env dsse.Envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("parse attestation envelope: %w", err)
	}
	if env.PayloadType == "" || env.Payload == "" {
		return nil, errors.New("parse attestation envelope: no payload")
	}
	return &env, nil
}
