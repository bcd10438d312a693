package scanners

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Two GitHub tokens in gitleaks' github-pat shape, made for these tests.
const (
	testPAT      = "ghp_R8qZ3xT1mV7kLp2Nw9Yb4Hc6Jd0Fs5GtEuAi"
	otherTestPAT = "ghp_Wm2Kx8Qv5Tz1Rb7Lc3Np9Hd4Gs6Fj0YeUaOi"
)

var loadRedactor = sync.OnceValues(NewSecrets)

func redactor(t testing.TB) *Secrets {
	s, err := loadRedactor()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keyedSecrets(t testing.TB) *Secrets {
	s, err := redactor(t).WithFingerprintKey(testFingerprintKey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scanFiles writes files (name to content) into a fresh directory and scans it.
func scanFiles(t *testing.T, s *Secrets, tenant string, files map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	found, err := s.Scan(context.Background(), dir, tenant)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(found)
	for _, v := range []string{testPAT, otherTestPAT} {
		if strings.Contains(string(out), v) || strings.Contains(string(out), v[4:]) {
			t.Fatalf("secret value in the findings: %s", out)
		}
	}
	byPlace := map[string]string{}
	for _, f := range found {
		byPlace[f.File+":"+f.Rule+":"+strconvItoa(f.Line)] = f.Fingerprint
	}
	return byPlace
}

func strconvItoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func lines(n int, last string) string { return strings.Repeat("// filler\n", n-1) + last + "\n" }

// TestSecretFingerprintFollowsTheValueNotTheLine: the same token on another
// line, in another file, keeps its fingerprint; another token put on the
// line of an accepted one gets another fingerprint, so an exception made for
// the first never covers it.
func TestSecretFingerprintFollowsTheValueNotTheLine(t *testing.T) {
	s := keyedSecrets(t)
	first := scanFiles(t, s, "acme", map[string]string{"a.js": lines(3, `const token = "`+testPAT+`";`)})
	fp := first["a.js:github-pat:3"]
	if !strings.HasPrefix(fp, FingerprintPrefix) || len(fp) != len(FingerprintPrefix)+32 {
		t.Fatalf("fingerprint %q, want %s and 32 hex digits (findings %v)", fp, FingerprintPrefix, first)
	}

	moved := scanFiles(t, s, "acme", map[string]string{"b.js": lines(7, `const token = "`+testPAT+`";`)})
	if got := moved["b.js:github-pat:7"]; got != fp {
		t.Errorf("same value on another line: fingerprint %q, want %q", got, fp)
	}

	replaced := scanFiles(t, s, "acme", map[string]string{"a.js": lines(3, `const token = "`+otherTestPAT+`";`)})
	if got := replaced["a.js:github-pat:3"]; got == "" || got == fp {
		t.Errorf("another value on the same file:rule:line: fingerprint %q, want one other than %q", got, fp)
	}

	other := scanFiles(t, s, "globex", map[string]string{"a.js": lines(3, `const token = "`+testPAT+`";`)})
	if got := other["a.js:github-pat:3"]; got == fp {
		t.Errorf("another tenant has the same fingerprint %q", got)
	}

	rekeyed, err := redactor(t).WithFingerprintKey([]byte(strings.Repeat("k", MinFingerprintKeyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	if got := scanFiles(t, rekeyed, "acme", map[string]string{"a.js": lines(3, `const token = "`+testPAT+`";`)})["a.js:github-pat:3"]; got == fp {
		t.Errorf("another key gives the same fingerprint %q", got)
	}
}

func TestSecretFingerprintKeyIsRequired(t *testing.T) {
	if _, err := redactor(t).WithFingerprintKey([]byte("short")); !errors.Is(err, ErrFingerprintKey) {
		t.Errorf("short key: %v, want ErrFingerprintKey", err)
	}
	if _, err := redactor(t).Scan(context.Background(), t.TempDir(), "acme"); !errors.Is(err, ErrFingerprintKey) {
		t.Errorf("scan without a key: %v, want ErrFingerprintKey", err)
	}
}

// encodings of a text as a prompt may carry it; gitleaks decodes each.
var encodings = map[string]func(string) string{
	"plain":  func(s string) string { return s },
	"base64": func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"hex":    func(s string) string { return hex.EncodeToString([]byte(s)) },
	"percent": func(s string) string {
		var b strings.Builder
		for _, c := range []byte(s) {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
		return b.String()
	},
}

// forms are every way the planted token may still be in a redacted text.
func forms(secret string) []string {
	out := []string{secret, url.QueryEscape(secret)}
	for _, enc := range encodings {
		e := enc(secret)
		out = append(out, e, strings.ToLower(e))
		for _, enc2 := range encodings {
			out = append(out, enc2(e))
		}
	}
	// The token's body without its prefix, as base64 may carry it shifted.
	return append(out, secret[4:])
}

// TestRedactRemovesEncodedSecrets: gitleaks reports an encoded secret by its
// decoded value, which is not in the prompt; redaction must still take the
// encoded text out, for each encoding and nested ones.
func TestRedactRemovesEncodedSecrets(t *testing.T) {
	s := redactor(t)
	plain := `export GITHUB_TOKEN="` + testPAT + `"`
	cases := map[string]string{}
	for name, enc := range encodings {
		cases[name] = enc(plain)
		for name2, enc2 := range encodings {
			if name2 != "plain" && name != "plain" {
				cases[name+" in "+name2] = enc2(enc(plain))
			}
		}
	}
	cases["base64 in base64 in hex"] = encodings["hex"](encodings["base64"](encodings["base64"](plain)))
	for name, encoded := range cases {
		t.Run(name, func(t *testing.T) {
			prompt := "Build me a todo app. Use this config:\n  " + encoded + "\nand deploy it.\n"
			out, n, err := s.Redact(context.Background(), prompt)
			if errors.Is(err, ErrUnredactable) {
				t.Logf("refused: %v", err)
				return // refused: nothing is stored
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range forms(testPAT) {
				if strings.Contains(out, f) {
					t.Fatalf("redacted prompt still holds the secret (as %q):\n%s", f, out)
				}
			}
			if n == 0 || !strings.Contains(out, "[REDACTED:") {
				t.Fatalf("nothing redacted (n=%d):\n%s", n, out)
			}
			if !strings.HasPrefix(out, "Build me a todo app.") || !strings.HasSuffix(out, "\nand deploy it.\n") {
				t.Errorf("text around the secret changed:\n%s", out)
			}
		})
	}
}

func TestRedactKeepsCleanText(t *testing.T) {
	text := "Make a page that lists\nthe weather in three cities."
	out, n, err := redactor(t).Redact(context.Background(), text)
	if err != nil || n != 0 || out != text {
		t.Fatalf("Redact(clean) = %q, %d, %v", out, n, err)
	}
}

// FuzzRedact: any text is redacted without a panic, and a planted token, in
// whatever encoding, is either gone from the result or the text is refused.
func FuzzRedact(f *testing.F) {
	s := redactor(f)
	f.Add("hello", "", uint8(0))
	f.Add("line one\nline two\r\n", "x = ", uint8(1))
	f.Add("%%%%", "token: ", uint8(2))
	f.Add("\n\n\n", "\n", uint8(3))
	f.Add("aGVsbG8=", "", uint8(4))
	names := []string{"plain", "base64", "hex", "percent"}
	f.Fuzz(func(t *testing.T, text, prefix string, mode uint8) {
		if _, _, err := s.Redact(context.Background(), text); err != nil && !errors.Is(err, ErrUnredactable) {
			t.Fatalf("Redact(%q): %v", text, err)
		}
		enc := encodings[names[int(mode)%len(names)]]
		planted := enc(prefix + `GITHUB_TOKEN="` + testPAT + `"`)
		if mode >= 4 {
			planted = encodings[names[int(mode/4)%len(names)]](planted)
		}
		cut := len(text) / 2
		in := text[:cut] + "\n" + planted + "\n" + text[cut:]
		out, _, err := s.Redact(context.Background(), in)
		if errors.Is(err, ErrUnredactable) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, testPAT) || strings.Contains(out, planted) {
			t.Fatalf("planted secret kept:\nin:  %q\nout: %q", in, out)
		}
	})
}
