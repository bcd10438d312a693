package deployers_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
)

var sigNow = time.Unix(1_760_000_000, 0)

// testSign computes a v1 signature independently of the package.
func testSign(secret, ts string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func signedHeader(ts, sig string) http.Header {
	h := http.Header{}
	if ts != "" {
		h.Set(deployers.HeaderTimestamp, ts)
	}
	if sig != "" {
		h.Set(deployers.HeaderSignature, sig)
	}
	return h
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body := []byte(`{"app":"shop","release_id":"r41","rollback_id":"rb-1"}`)
	ts := strconv.FormatInt(sigNow.Unix(), 10)
	good := testSign(testSecret, ts, body)
	old := testSign("the-previous-secret-also-32-bytes-long", ts, body)
	tests := []struct {
		name   string
		secret string
		header http.Header
		body   []byte
		now    time.Time
		tol    time.Duration
		want   error // nil, ErrSignature or ErrStaleTimestamp
	}{
		{"valid", testSecret, signedHeader(ts, "v1="+good), body, sigNow, time.Minute, nil},
		{"valid uppercase hex", testSecret, signedHeader(ts, "v1="+strings.ToUpper(good)), body, sigNow, time.Minute, nil},
		{"rotation new first", testSecret, signedHeader(ts, "v1="+good+", v1="+old), body, sigNow, time.Minute, nil},
		{"rotation new last", testSecret, signedHeader(ts, "v1="+old+",v1="+good), body, sigNow, time.Minute, nil},
		{"unknown scheme skipped", testSecret, signedHeader(ts, "v2=zzz,v1="+good), body, sigNow, time.Minute, nil},
		{"edge of tolerance", testSecret, signedHeader(ts, "v1="+good), body, sigNow.Add(time.Minute), time.Minute, nil},
		{"default tolerance", testSecret, signedHeader(ts, "v1="+good), body, sigNow.Add(4 * time.Minute), 0, nil},
		{"wrong secret", "a-different-secret-of-32-bytes-or-more", signedHeader(ts, "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"old secret only", testSecret, signedHeader(ts, "v1="+old), body, sigNow, time.Minute, deployers.ErrSignature},
		{"tampered body", testSecret, signedHeader(ts, "v1="+good), []byte(strings.Replace(string(body), "r41", "r40", 1)), sigNow, time.Minute, deployers.ErrSignature},
		{"tampered timestamp", testSecret, signedHeader(strconv.FormatInt(sigNow.Unix()+1, 10), "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"stale", testSecret, signedHeader(ts, "v1="+good), body, sigNow.Add(61 * time.Second), time.Minute, deployers.ErrStaleTimestamp},
		{"future", testSecret, signedHeader(ts, "v1="+good), body, sigNow.Add(-6 * time.Minute), 0, deployers.ErrStaleTimestamp},
		{"no timestamp", testSecret, signedHeader("", "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"signed timestamp", testSecret, signedHeader("+"+ts, "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"timestamp with space", testSecret, signedHeader(" "+ts, "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"huge timestamp", testSecret, signedHeader("99999999999999999999999", "v1="+good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"no signature", testSecret, signedHeader(ts, ""), body, sigNow, time.Minute, deployers.ErrSignature},
		{"bare signature", testSecret, signedHeader(ts, good), body, sigNow, time.Minute, deployers.ErrSignature},
		{"short signature", testSecret, signedHeader(ts, "v1="+good[:10]), body, sigNow, time.Minute, deployers.ErrSignature},
		{"short secret", "short", signedHeader(ts, "v1="+testSign("short", ts, body)), body, sigNow, time.Minute, deployers.ErrSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := deployers.VerifySignature([]byte(tt.secret), tt.header, tt.body, tt.now, tt.tol)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("VerifySignature() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature() = %v, want %v", err, tt.want)
			}
			if tt.want != deployers.ErrStaleTimestamp && errors.Is(err, deployers.ErrStaleTimestamp) {
				t.Fatalf("VerifySignature() = %v, want a non-timestamp failure", err)
			}
		})
	}
}

func TestVerifySignatureRejectsTwoTimestamps(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(sigNow.Unix(), 10)
	h := signedHeader(ts, "v1="+testSign(testSecret, ts, nil))
	h.Add(deployers.HeaderTimestamp, ts)
	if err := deployers.VerifySignature([]byte(testSecret), h, nil, sigNow, time.Minute); !errors.Is(err, deployers.ErrSignature) {
		t.Fatalf("VerifySignature() = %v, want ErrSignature", err)
	}
}

func TestParseSignatureHeader(t *testing.T) {
	t.Parallel()
	a, b := strings.Repeat("ab", 32), strings.Repeat("CD", 32)
	got, err := deployers.ParseSignatureHeader(" v1=" + a + " ,, v0=legacy, v1=" + b)
	if err != nil {
		t.Fatalf("ParseSignatureHeader() = %v", err)
	}
	if len(got) != 2 || got[0] != a || got[1] != strings.ToLower(b) {
		t.Errorf("ParseSignatureHeader() = %q", got)
	}
	for _, bad := range []string{
		"", "v0=abc", "v1=" + a + ",junk", "=x", "v1=" + a[:62] + "zz", "v1=",
		strings.Repeat("v1="+a+",", 9), strings.Repeat("v", 5000),
	} {
		if got, err := deployers.ParseSignatureHeader(bad); err == nil {
			t.Errorf("ParseSignatureHeader(%.40q) = %q, want error", bad, got)
		}
	}
}

func FuzzVerifySignature(f *testing.F) {
	ts := strconv.FormatInt(sigNow.Unix(), 10)
	body := []byte(`{"app":"shop","release_id":"r1","rollback_id":"rb-1"}`)
	good := testSign(testSecret, ts, body)
	f.Add(ts, "v1="+good, body)
	f.Add(ts, "v1="+good+",v1="+strings.Repeat("0", 64), body)
	f.Add(ts, "v0=x, v1="+strings.ToUpper(good), body)
	f.Add(ts, "v1="+good, []byte{})
	f.Add("", "", []byte(nil))
	f.Add("-1", "v1=", []byte("x"))
	f.Add("1e9", "v1==,=,,", []byte("{"))
	f.Add("0001760000000", "v1="+good, body)
	f.Add("9223372036854775807", "v1="+good, body)
	f.Add(ts, strings.Repeat("v1=a,", 100), body)
	f.Add(ts, "v1=\xff\xfe", body)
	f.Fuzz(func(t *testing.T, tsHeader, sigHeader string, body []byte) {
		secret := []byte(testSecret)
		h := http.Header{}
		h.Set(deployers.HeaderTimestamp, tsHeader)
		h.Set(deployers.HeaderSignature, sigHeader)
		err := deployers.VerifySignature(secret, h, body, sigNow, 5*time.Minute)
		sigs, perr := deployers.ParseSignatureHeader(sigHeader)
		if perr == nil {
			for _, s := range sigs {
				if len(s) != 64 || strings.ToLower(s) != s {
					t.Fatalf("ParseSignatureHeader(%q) returned %q", sigHeader, s)
				}
			}
		}
		if err == nil {
			// Accepted: the timestamp must be in tolerance and one entry must
			// be the real MAC.
			secs, serr := strconv.ParseInt(tsHeader, 10, 64)
			if serr != nil || secs < sigNow.Unix()-300 || secs > sigNow.Unix()+300 {
				t.Fatalf("accepted timestamp %q", tsHeader)
			}
			want := testSign(testSecret, tsHeader, body)
			found := false
			for _, s := range sigs {
				found = found || s == want
			}
			if perr != nil || !found {
				t.Fatalf("accepted %q without the right MAC", sigHeader)
			}
		}

		// A valid signature of this body always verifies, alone or with
		// another secret's entry.
		valid := testSign(testSecret, ts, body)
		for _, sig := range []string{"v1=" + valid, "v1=" + testSign("x-rotated-secret-of-32-bytes-or-more", ts, body) + ",v1=" + valid} {
			if err := deployers.VerifySignature(secret, signedHeader(ts, sig), body, sigNow, 5*time.Minute); err != nil {
				t.Fatalf("valid signature %q of %q rejected: %v", sig, body, err)
			}
		}
		// And a changed body never does.
		tampered := append(append([]byte(nil), body...), '!')
		if err := deployers.VerifySignature(secret, signedHeader(ts, "v1="+valid), tampered, sigNow, 5*time.Minute); !errors.Is(err, deployers.ErrSignature) {
			t.Fatalf("tampered body accepted: %v", err)
		}
	})
}
