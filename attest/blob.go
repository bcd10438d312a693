package attest

import (
	"bytes"
	"encoding/base64"
	"fmt"
)

// SignBlob signs data as it is, not as a statement (a release's SHA256SUMS),
// and returns the signature base64-encoded, as `cosign sign-blob --key`
// writes it: Ed25519 signs the bytes (so `openssl pkeyutl -verify -rawin`
// checks it too), ECDSA P-256 their SHA-256 (ASN.1 DER).
func (s *Signer) SignBlob(data []byte) ([]byte, error) {
	sig, err := s.blob.SignMessage(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("sign blob with key %s: %w", s.keyID, err)
	}
	return []byte(base64.StdEncoding.EncodeToString(sig)), nil
}

// VerifyBlob checks a SignBlob signature (base64, surrounding whitespace
// ignored) of data; it fails with ErrSignature when the signature is not v's
// key's over these bytes.
func (v *Verifier) VerifyBlob(data, sig []byte) error {
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(sig)))
	if err != nil {
		return fmt.Errorf("decode blob signature: %w", err)
	}
	if err := v.blob.VerifySignature(bytes.NewReader(raw), bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%w with key %s: %w", ErrSignature, v.keyID, err)
	}
	return nil
}
