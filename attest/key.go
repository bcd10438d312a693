package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// PublicKeySuffix is appended to a private key's path to name its public key.
const PublicKeySuffix = ".pub"

// ErrKeyType is returned for keys other than Ed25519 and ECDSA P-256.
var ErrKeyType = errors.New("unsupported key type: want Ed25519 or ECDSA P-256")

// KeyID identifies a public key: the hex sha256 of its PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("key id: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// GenerateKey writes a new Ed25519 private key to path (PKCS#8 PEM, mode
// 0600) and its public key to path+".pub" (PKIX PEM). It never replaces an
// existing file.
func GenerateKey(path string) (*Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key %q: %w", path, err)
	}
	privPEM, err := cryptoutils.MarshalPrivateKeyToPEM(priv)
	if err != nil {
		return nil, fmt.Errorf("generate key %q: %w", path, err)
	}
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, fmt.Errorf("generate key %q: %w", path, err)
	}
	if err := writeNew(path, privPEM, 0o600); err != nil {
		return nil, fmt.Errorf("write private key: %w", err)
	}
	if err := writeNew(path+PublicKeySuffix, pubPEM, 0o644); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write public key: %w", err)
	}
	return NewSigner(priv)
}

// writeNew creates name with data; it fails if name exists.
func writeNew(name string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(name)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return err
	}
	return nil
}

// LoadSigner reads a PEM private key (PKCS#8; Ed25519 or ECDSA P-256).
func LoadSigner(path string) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(data, nil)
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", path, err)
	}
	s, err := NewSigner(priv)
	if err != nil {
		return nil, fmt.Errorf("load signing key %q: %w", path, err)
	}
	return s, nil
}

// LoadVerifier reads a PEM public key (PKIX; Ed25519 or ECDSA P-256).
func LoadVerifier(path string) (*Verifier, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load public key: %w", err)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("load public key %q: %w", path, err)
	}
	v, err := NewVerifier(pub)
	if err != nil {
		return nil, fmt.Errorf("load public key %q: %w", path, err)
	}
	return v, nil
}

// checkPublic accepts the key types this package signs with.
func checkPublic(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return nil
		}
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return nil
		}
	}
	return fmt.Errorf("%w (got %T)", ErrKeyType, pub)
}
