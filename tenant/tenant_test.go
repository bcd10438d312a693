package tenant

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestValidateRefusesNamesThatEscapeAKey(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "x/../victim", "..", ".", "a/b", "A", "acme_", "-a", "a-", "a.b", "a b", "a\x00", "*", ">", "a*", strings.Repeat("a", MaxLen+1), "ä"} {
		if err := Validate(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	for _, good := range []string{"a", "acme", "dev", "team-42", "0", strings.Repeat("a", MaxLen)} {
		if err := Validate(good); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", good, err)
		}
	}
}

// FuzzValidate: whatever passes the grammar is one clean path segment and
// one NATS subject token, so a key built from it stays under its prefix.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"acme", "x/../victim", "..", "a-b", "", "A", "a.b", "a>b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Validate(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > MaxLen {
			t.Fatalf("accepted %q of length %d", s, len(s))
		}
		if k := path.Join("apps", s, "x"); k != "apps/"+s+"/x" {
			t.Fatalf("accepted %q, which path.Join rewrites to %q", s, k)
		}
		if strings.ContainsAny(s, "./*> \t\r\n_") || strings.ToLower(s) != s {
			t.Fatalf("accepted %q with a character a key, subject or query reads specially", s)
		}
	})
}
