package attest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
)

func TestSignBlobVerifiesOnlyTheSameBytesWithTheSameKey(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPriv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewVerifier(otherPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	sums := []byte("0123  tollgate_1.0.0_linux_amd64.tar.gz\n")
	for name, priv := range map[string]crypto.Signer{"ed25519": edPriv, "ecdsa": ecPriv} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSigner(priv)
			if err != nil {
				t.Fatal(err)
			}
			v, err := NewVerifier(s.Public())
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignBlob(sums)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := base64.StdEncoding.DecodeString(string(sig)); err != nil {
				t.Errorf("signature %q is not base64: %v", sig, err)
			}
			if err := v.VerifyBlob(sums, append(sig, '\n')); err != nil {
				t.Errorf("VerifyBlob of the signed bytes: %v", err)
			}
			if err := v.VerifyBlob([]byte("1"+string(sums)), sig); !errors.Is(err, ErrSignature) {
				t.Errorf("VerifyBlob of other bytes = %v, want ErrSignature", err)
			}
			if err := other.VerifyBlob(sums, sig); !errors.Is(err, ErrSignature) {
				t.Errorf("VerifyBlob with another key = %v, want ErrSignature", err)
			}
		})
	}
}
