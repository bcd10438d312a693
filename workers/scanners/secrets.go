package scanners

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/fatih/semgroup"
	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	gregexp "github.com/zricethezav/gitleaks/v8/regexp"
	greport "github.com/zricethezav/gitleaks/v8/report"
	"github.com/zricethezav/gitleaks/v8/sources"

	"github.com/tollgate/tollgate/report"
)

// Secrets finds secrets with gitleaks' default rules. The rule set is loaded
// once; every scan gets a fresh Detector, since a Detector accumulates findings.
//
// Built with the gore2regex tag, as gitleaks' own release binaries are,
// gitleaks matches its rules with RE2 (github.com/wasilibs/go-re2) instead of
// Go's regexp: the same matches about ten times faster on real trees (see
// RegexpEngine). RE2 stops at a byte that is not UTF-8 where Go's regexp
// reads it as U+FFFD, so every text is handed to gitleaks with such bytes
// replaced by U+FFFD (validUTF8): both engines then see the same characters
// and find the same secrets on the same lines. The price is paid at start:
// go-re2 compiles its Wasm module in an init function, about 0.4 s of CPU
// and 50 MB of memory in every process of the binary, scanning or not.
type Secrets struct {
	cfg config.Config
	// key keys the fingerprints of Scan (see Fingerprint); a Secrets made
	// only to Redact has none.
	key []byte
}

// MinFingerprintKeyBytes is the shortest fingerprint key accepted.
const MinFingerprintKeyBytes = 32

// FingerprintPrefix starts every secret fingerprint and names its format, so
// that a fingerprint of another format (gitleaks' file:rule:line, say) can
// never be taken for one.
const FingerprintPrefix = "tgfp1:"

// ErrFingerprintKey is returned for a missing or short fingerprint key.
var ErrFingerprintKey = fmt.Errorf("secret fingerprint key must be at least %d bytes", MinFingerprintKeyBytes)

// Fingerprint names one secret value of one rule in one tenant without
// revealing it: tgfp1: and the first 128 bits, in hex, of
// HMAC-SHA256(key, tenant NUL rule NUL secret). The same value keeps its
// fingerprint wherever it moves in the tree; another value on the same line
// gets another one, so an exception for an accepted fixture never covers a
// real secret put in its place. The key makes a fingerprint useless for
// confirming a guess of the secret to anyone who reads reports.
func Fingerprint(key []byte, tenant, rule, secret string) string {
	m := hmac.New(sha256.New, key)
	for i, part := range []string{tenant, rule, secret} {
		if i > 0 {
			m.Write([]byte{0})
		}
		m.Write([]byte(part))
	}
	return FingerprintPrefix + hex.EncodeToString(m.Sum(nil)[:16])
}

// WithFingerprintKey returns a copy of s that fingerprints with key, which
// must be at least MinFingerprintKeyBytes long.
func (s *Secrets) WithFingerprintKey(key []byte) (*Secrets, error) {
	if len(key) < MinFingerprintKeyBytes {
		return nil, fmt.Errorf("%w (got %d)", ErrFingerprintKey, len(key))
	}
	return &Secrets{cfg: s.cfg, key: slices.Clone(key)}, nil
}

// NewSecrets loads gitleaks' default configuration. It uses a private viper
// instance rather than gitleaks' helper, which goes through viper's global state.
func NewSecrets() (*Secrets, error) {
	v := viper.New()
	v.SetConfigType("toml")
	if err := v.ReadConfig(strings.NewReader(config.DefaultConfig)); err != nil {
		return nil, fmt.Errorf("read gitleaks default config: %w", err)
	}
	var vc config.ViperConfig
	if err := v.Unmarshal(&vc); err != nil {
		return nil, fmt.Errorf("decode gitleaks default config: %w", err)
	}
	cfg, err := vc.Translate()
	if err != nil {
		return nil, fmt.Errorf("translate gitleaks default config: %w", err)
	}
	return &Secrets{cfg: cfg}, nil
}

// Scan returns the secrets under dir, found for tenant, redacted: the secret
// and the line that holds it never leave this function; each is named by its
// keyed Fingerprint.
func (s *Secrets) Scan(ctx context.Context, dir, tenant string) ([]report.Secret, error) {
	if len(s.key) < MinFingerprintKeyBytes {
		return nil, ErrFingerprintKey
	}
	det := detect.NewDetectorContext(ctx, s.cfg)
	// As the gitleaks CLI does by default: find secrets inside base64, hex
	// and percent-encoded text too.
	det.MaxDecodeDepth = 5
	// One file at a time per processor, where gitleaks reads 40: with RE2
	// each file being matched holds its own instance of the Wasm module, and
	// 40 of them in a child with one or two processors cost half again as
	// much CPU (Juice Shop: 2.6 s instead of 4 to 7.5 at GOMAXPROCS=1).
	det.Sema = semgroup.NewGroup(ctx, int64(runtime.GOMAXPROCS(0)))
	findings, err := det.DetectSource(ctx, validUTF8Source{&sources.Files{
		Config:         &det.Config,
		Path:           dir,
		Sema:           det.Sema,
		FollowSymlinks: false,
	}})
	if err != nil {
		return nil, fmt.Errorf("detect secrets in %q: %w", dir, err)
	}
	out := make([]report.Secret, 0, len(findings))
	for _, f := range findings {
		rel := relPath(dir, f.File)
		out = append(out, report.Secret{
			Rule:        f.RuleID,
			File:        rel,
			Line:        f.StartLine,
			Fingerprint: Fingerprint(s.key, tenant, f.RuleID, f.Secret),
		})
	}
	slices.SortFunc(out, func(a, b report.Secret) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			strings.Compare(a.Rule, b.Rule), strings.Compare(a.Fingerprint, b.Fingerprint))
	})
	return slices.Compact(out), nil
}

// relPath makes p relative to root with forward slashes, as the report wants.
func relPath(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(strings.TrimPrefix(p, "/"))
}

// ErrUnredactable says a text holds a secret whose place in it could not be
// established, or that was still found after redaction: such a text must not
// be stored.
var ErrUnredactable = errors.New("a secret in the text cannot be redacted")

// Redact replaces every secret gitleaks finds in text (a submitted prompt,
// say) with "[REDACTED:<rule>]" and says how many it replaced. It replaces
// the span gitleaks reports in text, not the value: a base64, hex or
// percent-encoded secret is reported by its decoded value, which is not in
// text, but its span covers the encoded form. A finding without a usable
// span, or any secret still found in the result, is ErrUnredactable.
// Bytes of text that are not UTF-8 come back as U+FFFD (see validUTF8).
func (s *Secrets) Redact(ctx context.Context, text string) (string, int, error) {
	text = validUTF8(text)
	findings := s.detect(ctx, text)
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	if len(findings) == 0 {
		return text, 0, nil
	}
	type cut struct {
		start, end int
		rule       string
	}
	lines := lineStarts(text)
	cuts := make([]cut, 0, len(findings))
	for _, f := range findings {
		if start, end, ok := findingSpan(text, lines, f); ok {
			cuts = append(cuts, cut{start, end, f.RuleID})
			continue
		}
		// No usable span (a match running past the last newline, say):
		// the match itself, where it is in text as is.
		found := false
		for off := 0; f.Match != ""; {
			i := strings.Index(text[off:], f.Match)
			if i < 0 {
				break
			}
			cuts = append(cuts, cut{off + i, off + i + len(f.Match), f.RuleID})
			off += i + len(f.Match)
			found = true
		}
		if !found {
			return "", 0, fmt.Errorf("%w: %s finding at line %d has no span in the text", ErrUnredactable, f.RuleID, f.StartLine+1)
		}
	}
	// Replace from the end, merging overlapping spans into one mark.
	slices.SortFunc(cuts, func(a, b cut) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end)) })
	merged := cuts[:1]
	for _, c := range cuts[1:] {
		last := &merged[len(merged)-1]
		if c.start < last.end {
			last.end = max(last.end, c.end)
			continue
		}
		merged = append(merged, c)
	}
	var b strings.Builder
	prev := 0
	for _, c := range merged {
		b.WriteString(text[prev:c.start])
		b.WriteString("[REDACTED:" + c.rule + "]")
		prev = c.end
	}
	b.WriteString(text[prev:])
	out := b.String()
	// The same value elsewhere in text, in a form gitleaks did not report
	// twice, goes too.
	for _, f := range findings {
		for _, v := range []string{f.Match, f.Secret} {
			if len(v) >= 8 && strings.Contains(out, v) {
				out = strings.ReplaceAll(out, v, "[REDACTED:"+f.RuleID+"]")
			}
		}
	}
	if left := s.detect(ctx, out); len(left) > 0 {
		return "", 0, fmt.Errorf("%w: %s finding left after redaction", ErrUnredactable, left[0].RuleID)
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	return out, len(merged), nil
}

// detect runs gitleaks over one text, decoding as Scan does.
func (s *Secrets) detect(ctx context.Context, text string) []greport.Finding {
	det := detect.NewDetectorContext(ctx, s.cfg)
	det.MaxDecodeDepth = 5
	return det.DetectContext(ctx, detect.Fragment{Raw: validUTF8(text)})
}

// RegexpEngine names the regular expression engine gitleaks was built with:
// "github.com/wasilibs/go-re2" with the gore2regex build tag, "stdlib"
// without it (correct, and about ten times slower).
func RegexpEngine() string { return gregexp.Version }

// validUTF8Source hands gitleaks each fragment of its source with the bytes
// that are not UTF-8 replaced (see validUTF8). Lines do not move, since a
// newline is never replaced.
type validUTF8Source struct{ src sources.Source }

func (v validUTF8Source) Fragments(ctx context.Context, yield sources.FragmentsFunc) error {
	return v.src.Fragments(ctx, func(f sources.Fragment, err error) error {
		if !utf8.ValidString(f.Raw) {
			f.Raw = validUTF8(f.Raw)
			f.Bytes = nil // gitleaks only counts them
		}
		return yield(f, err)
	})
}

var _ sources.Source = validUTF8Source{}

// validUTF8 replaces each byte of s that does not start a valid UTF-8
// sequence with U+FFFD, one for each byte: the characters Go's regexp reads
// in s, which RE2 would not read past.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(string(utf8.RuneError))
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// lineStarts returns, for each line of text, the offset gitleaks counts its
// columns from: 0 for the first line and the offset of the newline before
// it for the others (gitleaks' columns on later lines count that newline).
func lineStarts(text string) []int {
	starts := []int{0}
	for i := range len(text) {
		if text[i] == '\n' {
			starts = append(starts, i)
		}
	}
	return starts
}

// findingSpan turns a finding's line and columns in text (lines from 0, as
// gitleaks reports them for a fragment without a start line) into byte
// offsets [start, end). For an encoded secret they are the encoded text's.
func findingSpan(text string, lines []int, f greport.Finding) (int, int, bool) {
	if f.StartLine < 0 || f.StartLine >= len(lines) || f.EndLine < f.StartLine || f.EndLine >= len(lines) {
		return 0, 0, false
	}
	start := lines[f.StartLine] + f.StartColumn - 1
	end := lines[f.EndLine] + f.EndColumn
	if start < 0 || end > len(text) || start >= end {
		return 0, 0, false
	}
	return start, end, true
}
