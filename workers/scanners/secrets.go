package scanners

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/viper"
	"github.com/zricethezav/gitleaks/v8/config"
	"github.com/zricethezav/gitleaks/v8/detect"
	"github.com/zricethezav/gitleaks/v8/sources"

	"github.com/tollgate/tollgate/report"
)

// Secrets finds secrets with gitleaks' default rules. The rule set is loaded
// once; every scan gets a fresh Detector, since a Detector accumulates findings.
type Secrets struct {
	cfg config.Config
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

// Scan returns the secrets under dir, redacted: the secret and the line that
// holds it never leave this function.
func (s *Secrets) Scan(ctx context.Context, dir string) ([]report.Secret, error) {
	det := detect.NewDetectorContext(ctx, s.cfg)
	// As the gitleaks CLI does by default: find secrets inside base64, hex
	// and percent-encoded text too.
	det.MaxDecodeDepth = 5
	findings, err := det.DetectSource(ctx, &sources.Files{
		Config:         &det.Config,
		Path:           dir,
		Sema:           det.Sema,
		FollowSymlinks: false,
	})
	if err != nil {
		return nil, fmt.Errorf("detect secrets in %q: %w", dir, err)
	}
	out := make([]report.Secret, 0, len(findings))
	for _, f := range findings {
		rel := relPath(dir, f.File)
		out = append(out, report.Secret{
			Rule: f.RuleID,
			File: rel,
			Line: f.StartLine,
			// gitleaks' own fingerprint for a directory scan (file:rule:line),
			// so it can be used in a .gitleaksignore or an exception as is.
			Fingerprint: rel + ":" + f.RuleID + ":" + strconv.Itoa(f.StartLine),
		})
	}
	slices.SortFunc(out, func(a, b report.Secret) int {
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	})
	return slices.CompactFunc(out, func(a, b report.Secret) bool { return a.Fingerprint == b.Fingerprint }), nil
}

// relPath makes p relative to root with forward slashes, as the report wants.
func relPath(root, p string) string {
	if rel, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(rel, "..") {
		return filepath.ToSlash(rel)
	}
	return filepath.ToSlash(strings.TrimPrefix(p, "/"))
}

// Redact replaces every secret gitleaks finds in text (a submitted prompt,
// say) with "[REDACTED:<rule>]" and says how many it replaced.
func (s *Secrets) Redact(ctx context.Context, text string) (string, int, error) {
	det := detect.NewDetectorContext(ctx, s.cfg)
	det.MaxDecodeDepth = 5
	n := 0
	for _, f := range det.DetectString(text) {
		mark := "[REDACTED:" + f.RuleID + "]"
		switch {
		case f.Match != "" && strings.Contains(text, f.Match):
			text = strings.ReplaceAll(text, f.Match, mark)
		case f.Secret != "" && strings.Contains(text, f.Secret):
			text = strings.ReplaceAll(text, f.Secret, mark)
		default:
			continue
		}
		n++
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}
	return text, n, nil
}
