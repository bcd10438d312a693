package deployers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Headers of a webhook delivery.
const (
	// HeaderTimestamp carries the signing time in Unix seconds.
	HeaderTimestamp = "X-Tollgate-Timestamp"
	// HeaderSignature carries "v1=<hex HMAC-SHA256 of "<timestamp>.<body>">",
	// possibly several comma-separated entries while secrets rotate.
	HeaderSignature = "X-Tollgate-Signature"
	// HeaderIdempotencyKey carries Request.RollbackID.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// userAgent identifies webhook deliveries.
const userAgent = "tollgate-deployer/1"

// DefaultSignatureTolerance is how far a delivery's timestamp may be from the
// receiver's clock when VerifySignature is given no tolerance.
const DefaultSignatureTolerance = 5 * time.Minute

const (
	// maxResponseBody is how much of a response is read for Receipt.Detail.
	maxResponseBody = 64 << 10
	// maxDetail bounds Receipt.Detail, in bytes.
	maxDetail = 200
	// maxSignatureHeader bounds the signature header VerifySignature parses.
	maxSignatureHeader = 4096
	// maxSignatures bounds the v1 entries VerifySignature compares.
	maxSignatures = 8
)

// ErrSignature is wrapped by every VerifySignature failure.
var ErrSignature = errors.New("invalid webhook signature")

// ErrStaleTimestamp is wrapped by VerifySignature failures caused by a
// timestamp outside the tolerance. It wraps ErrSignature.
var ErrStaleTimestamp = fmt.Errorf("%w: timestamp outside tolerance", ErrSignature)

// Webhook POSTs the Request as JSON to the app's deployer, signed with a shared
// secret. The receiver checks the signature with VerifySignature and treats
// the Idempotency-Key header (the RollbackID) as an idempotency key.
//
// Answers: 2xx is success (208, or a JSON body {"duplicate":true}, means the
// key was already applied); 409 is "already applied this key", also success;
// 408, 425, 429 and 5xx are retryable errors, as are network errors; any other
// status is an error wrapping ErrPermanent. Redirects are not followed: a
// redirected POST loses its body, so a 3xx is a configuration error.
type Webhook struct {
	url     string
	target  string
	secret  []byte
	client  *http.Client
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time
}

var _ Deployer = (*Webhook)(nil)

// NewWebhook builds a Webhook from a validated webhook Target (with Secret
// filled). client nil means a default client; its redirect policy is replaced,
// the client itself is not modified.
func NewWebhook(t Target, client *http.Client, opts ...Option) (*Webhook, error) {
	if t.Type != TypeWebhook {
		return nil, fmt.Errorf("build webhook deployer from %q target %s: %w", t.Type, t.where(), ErrPermanent)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	o := buildOptions(opts)
	c := &http.Client{}
	if client != nil {
		c2 := *client
		c = &c2
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Webhook{
		url:     t.URL,
		target:  TypeWebhook + " " + redactURL(t.URL),
		secret:  []byte(t.Secret),
		client:  c,
		timeout: cmp.Or(t.Timeout, DefaultTimeout),
		logger:  o.logger,
		now:     o.now,
	}, nil
}

// Deploy delivers req once. Retrying is the caller's job.
func (w *Webhook) Deploy(ctx context.Context, req Request) (Receipt, error) {
	if req.Action == ActionDisable {
		return Receipt{Target: w.target}, fmt.Errorf("deploy app %q via %s: the request is a disable (call Disable): %w", req.App, w.target, ErrPermanent)
	}
	return w.deliver(ctx, req, fmt.Sprintf("deploy app %q release %q via %s", req.App, req.ReleaseID, w.target))
}

// Disable delivers req once with action "disable": the receiver takes the
// app out of service (keeping what it needs to deploy it again) and dedupes
// on the Idempotency-Key header (req.RollbackID) as for a deploy. The
// answers mean what they mean to Deploy.
func (w *Webhook) Disable(ctx context.Context, req Request) (Receipt, error) {
	req.Action = ActionDisable
	return w.deliver(ctx, req, fmt.Sprintf("disable app %q via %s", req.App, w.target))
}

var _ Disabler = (*Webhook)(nil)

// deliver POSTs req, signed, and reads the answer; op names the delivery in
// errors.
func (w *Webhook) deliver(ctx context.Context, req Request, op string) (Receipt, error) {
	rc := Receipt{Target: w.target}
	if err := req.Validate(); err != nil {
		return rc, err
	}
	what := cmp.Or(req.Action, ActionDeploy)
	body, err := json.Marshal(req)
	if err != nil {
		return rc, fmt.Errorf("%s: encode request: %w: %w", op, err, ErrPermanent)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return rc, fmt.Errorf("%s: build request: %w: %w", op, err, ErrPermanent)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", userAgent)
	hreq.Header.Set(HeaderIdempotencyKey, req.RollbackID)
	SignRequest(hreq.Header, w.secret, body, w.now())

	log := w.logger.With("app", req.App, "release", req.ReleaseID, "rollback_id", req.RollbackID, "target", w.target, "action", what)
	log.DebugContext(ctx, "delivering to webhook")
	resp, err := w.client.Do(hreq)
	if err != nil {
		// *url.Error from the client names the URL without its password; the
		// secret is only ever in the signature, never in the URL.
		log.WarnContext(ctx, "webhook delivery failed", "error", err)
		return rc, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	rc.Status = resp.StatusCode
	rc.Detail = detail(raw)

	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		rc.Duplicate = code == http.StatusAlreadyReported || saysDuplicate(raw)
		log.InfoContext(ctx, "webhook accepted "+what, "status", code, "duplicate", rc.Duplicate)
		return rc, nil
	case code == http.StatusConflict:
		rc.Duplicate = true
		log.InfoContext(ctx, "webhook had already applied "+what, "status", code)
		return rc, nil
	}
	err = fmt.Errorf("%s: status %d %s%s", op, code, http.StatusText(code), quoteDetail(rc.Detail))
	if readErr != nil && rc.Detail == "" {
		err = fmt.Errorf("%w (reading body: %w)", err, readErr)
	}
	if permanentStatus(code) {
		err = fmt.Errorf("%w: %w", err, ErrPermanent)
	}
	log.WarnContext(ctx, "webhook refused "+what, "status", code, "detail", rc.Detail, "retryable", !permanentStatus(code))
	return rc, err
}

// permanentStatus reports whether a non-success status will not change on
// retry: 3xx (not followed, see Webhook) and 4xx other than 408, 425 and 429.
// 409 never gets here: it means success.
func permanentStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return code >= 300 && code < 500
}

// saysDuplicate reports whether a success body is JSON {"duplicate": true}.
func saysDuplicate(body []byte) bool {
	var v struct {
		Duplicate bool `json:"duplicate"`
	}
	return json.Unmarshal(body, &v) == nil && v.Duplicate
}

// detail is the first line of body, trimmed, without control characters, at
// most maxDetail bytes of valid UTF-8.
func detail(body []byte) string {
	s := strings.TrimSpace(string(body))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) <= maxDetail {
		return s
	}
	cut := maxDetail
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

func quoteDetail(d string) string {
	if d == "" {
		return ""
	}
	return ": " + strconv.Quote(d)
}

// SignRequest sets the timestamp and v1 signature headers of a delivery of
// body, as VerifySignature checks them. The events webhook signs the same
// way.
func SignRequest(h http.Header, secret, body []byte, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, "v1="+hex.EncodeToString(sign(secret, ts, body)))
}

// sign is the v1 signature: HMAC-SHA256 of "<timestamp>.<body>".
func sign(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// VerifySignature is the receiver's check of a webhook delivery: the
// X-Tollgate-Timestamp header must be within tolerance of now (zero or less
// means DefaultSignatureTolerance), and one of the v1 entries of the
// X-Tollgate-Signature header must be the HMAC-SHA256 of "<timestamp>.<body>"
// under secret. Several v1 entries are accepted so that secrets can rotate.
// Errors wrap ErrSignature (and ErrStaleTimestamp for a timestamp out of
// tolerance). Receivers should still dedupe on the Idempotency-Key header:
// the timestamp only bounds how long a captured delivery can be replayed.
func VerifySignature(secret []byte, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) < MinSecretLen {
		return fmt.Errorf("verify webhook signature: secret is shorter than %d bytes: %w", MinSecretLen, ErrSignature)
	}
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	tsValues := header.Values(HeaderTimestamp)
	if len(tsValues) != 1 {
		return fmt.Errorf("verify webhook signature: want one %s header, got %d: %w", HeaderTimestamp, len(tsValues), ErrSignature)
	}
	ts := tsValues[0]
	secs, err := parseUnixSeconds(ts)
	if err != nil {
		return fmt.Errorf("verify webhook signature: %s header %.40q: %w: %w", HeaderTimestamp, ts, err, ErrSignature)
	}
	skew := now.Unix() - secs // secs >= 0, so this cannot overflow
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(tolerance/time.Second) {
		return fmt.Errorf("verify webhook signature: timestamp %d is %ds from now, tolerance %s: %w", secs, skew, tolerance, ErrStaleTimestamp)
	}
	sigs, err := ParseSignatureHeader(strings.Join(header.Values(HeaderSignature), ","))
	if err != nil {
		return fmt.Errorf("verify webhook signature: %w: %w", err, ErrSignature)
	}
	want := sign(secret, ts, body)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("verify webhook signature: no v1 signature matches: %w", ErrSignature)
}

// parseUnixSeconds accepts only plain decimal digits: no sign, no spaces.
func parseUnixSeconds(s string) (int64, error) {
	if s == "" || len(s) > 19 {
		return 0, errors.New("not unix seconds")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not unix seconds")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("not unix seconds")
	}
	return n, nil
}

// ParseSignatureHeader returns the v1 signatures (lowercase hex) in an
// X-Tollgate-Signature header value: comma-separated "scheme=value" entries.
// Entries of other schemes are skipped, for forward compatibility. It fails
// on a malformed entry, a v1 value that is not a hex SHA-256 MAC, no v1 entry
// at all, or an oversized header.
func ParseSignatureHeader(s string) ([]string, error) {
	if len(s) > maxSignatureHeader {
		return nil, fmt.Errorf("parse %s header: longer than %d bytes", HeaderSignature, maxSignatureHeader)
	}
	var sigs []string
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		scheme, value, ok := strings.Cut(entry, "=")
		if !ok || scheme == "" {
			return nil, fmt.Errorf("parse %s header: entry %.20q is not scheme=value", HeaderSignature, entry)
		}
		if scheme != "v1" {
			continue
		}
		if len(value) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("parse %s header: v1 value is %d characters, want %d", HeaderSignature, len(value), hex.EncodedLen(sha256.Size))
		}
		if _, err := hex.DecodeString(value); err != nil {
			return nil, fmt.Errorf("parse %s header: v1 value is not hex", HeaderSignature)
		}
		if len(sigs) == maxSignatures {
			return nil, fmt.Errorf("parse %s header: more than %d v1 entries", HeaderSignature, maxSignatures)
		}
		sigs = append(sigs, strings.ToLower(value))
	}
	if len(sigs) == 0 {
		return nil, fmt.Errorf("parse %s header: no v1 signature", HeaderSignature)
	}
	return sigs, nil
}
