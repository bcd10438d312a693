// Package deployers is how tollgate's RollbackWorkflow tells an app's deploy
// target to make a release live. A Deployer takes a Request and either switches
// the target or says why it could not; the RollbackWorkflow retries unless the
// error wraps ErrPermanent. The idle-app TTL archives an app through the
// same target: both adapters are also a Disabler (a webhook POST whose
// action is "disable"; flagd turns the app's flag off), and the revive's
// Deploy brings it back.
//
// Two adapters exist. Webhook POSTs a signed Request to the app's own deployer
// (a CI job, a GitOps bot, a platform API); VerifySignature is the receiver's
// half. Flagd flips a release flag in the flag file that a flagd daemon
// (OpenFeature) watches.
//
// The second adapter is flagd rather than a change of a Kubernetes
// Deployment's image because it needs no cluster: most micro apps sit behind an
// edge router that already reads a flag to pick the blue or the green release,
// so switching the flag is the whole rollback. It is also testable here without
// a kube-apiserver, and it does not pull client-go into the tollgate binary. A
// Kubernetes adapter can come later behind the same Deployer interface.
package deployers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrPermanent marks failures that retrying cannot fix: a target that rejects
// the request (4xx other than 408, 409, 425 and 429), an invalid Request, a bad
// Target configuration, a flag file tollgate refuses to rewrite. Test with
// errors.Is and make such errors non-retryable at the activity boundary.
var ErrPermanent = errors.New("not retryable")

// Target types.
const (
	TypeWebhook = "webhook"
	TypeFlagd   = "flagd"
)

// DefaultTimeout bounds one Deploy call when Target.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// MinSecretLen is the shortest HMAC secret a webhook target accepts, in bytes.
const MinSecretLen = 32

// Actions of a Request.
const (
	// ActionDeploy (the default, also when Action is empty) makes
	// ReleaseID the live release.
	ActionDeploy = "deploy"
	// ActionDisable takes the app out of service (an idle app archived by
	// the TTL); a later deploy brings it back.
	ActionDisable = "disable"
)

// Request asks a deploy target to make Release the live release of App, or
// (Action "disable") to take App out of service.
type Request struct {
	// Action is ActionDeploy (or empty) or ActionDisable.
	Action    string `json:"action,omitempty"`
	App       string `json:"app"`
	Tenant    string `json:"tenant,omitempty"`
	ReleaseID string `json:"release_id"`
	// Artifact is what the release runs, e.g. an image digest "sha256:...".
	Artifact string `json:"artifact"`
	// RollbackID is stable across retries of one rollback (or of one
	// archive or revive of an idle app): the idempotency key.
	RollbackID  string `json:"rollback_id"`
	FromRelease string `json:"from_release,omitempty"`
	Reason      string `json:"reason"`
	// Trigger is "guard" or the on-call principal who asked.
	Trigger string `json:"trigger"`
}

// Validate reports a missing App, ReleaseID (not needed to disable) or
// RollbackID, or an unknown Action. Its errors wrap ErrPermanent.
func (r Request) Validate() error {
	if r.Action != "" && r.Action != ActionDeploy && r.Action != ActionDisable {
		return fmt.Errorf("validate deploy request for app %q: action %q is not deploy or disable: %w", r.App, r.Action, ErrPermanent)
	}
	var missing []string
	if r.App == "" {
		missing = append(missing, "app")
	}
	if r.ReleaseID == "" && r.Action != ActionDisable {
		missing = append(missing, "release_id")
	}
	if r.RollbackID == "" {
		missing = append(missing, "rollback_id")
	}
	if len(missing) > 0 {
		return fmt.Errorf("validate deploy request for app %q release %q: missing %s: %w",
			r.App, r.ReleaseID, strings.Join(missing, ", "), ErrPermanent)
	}
	if !utf8.ValidString(r.App) || !utf8.ValidString(r.ReleaseID) || !utf8.ValidString(r.RollbackID) {
		return fmt.Errorf("validate deploy request for app %q release %q: app, release_id and rollback_id must be UTF-8: %w",
			r.App, r.ReleaseID, ErrPermanent)
	}
	return nil
}

// Receipt is what the target said.
type Receipt struct {
	// Target is the adapter kind and where, e.g. "webhook https://deployer/x".
	Target string `json:"target"`
	// Status is the HTTP status, when there is one.
	Status int `json:"status,omitempty"`
	// Detail is short text from the target.
	Detail string `json:"detail,omitempty"`
	// Duplicate is set when the target had already applied this RollbackID
	// (or, for flagd, the release was already live).
	Duplicate bool `json:"duplicate,omitempty"`
}

// Deployer switches an app's deploy target to a release.
//
// Deploy must be safe to call again with the same Request: targets treat
// RollbackID as an idempotency key, so a retry after a lost answer is
// harmless. An error wrapping ErrPermanent will fail the same way on retry;
// any other error may succeed on retry. On error the Receipt still says which
// target answered what, when it is known.
type Deployer interface {
	Deploy(ctx context.Context, req Request) (Receipt, error)
}

// Disabler takes an app out of service: the TTL's archive of an idle app.
// Both adapters are one. Like Deploy, Disable must be safe to call again
// with the same Request (its RollbackID is the idempotency key), and an
// error wrapping ErrPermanent will fail the same way on retry. Deploy of a
// release brings a disabled app back.
type Disabler interface {
	Disable(ctx context.Context, req Request) (Receipt, error)
}

// DeployerFunc adapts a function to Deployer.
type DeployerFunc func(ctx context.Context, req Request) (Receipt, error)

// Deploy calls f.
func (f DeployerFunc) Deploy(ctx context.Context, req Request) (Receipt, error) {
	return f(ctx, req)
}

var _ Deployer = DeployerFunc(nil)

// Target configures one app's deploy target.
type Target struct {
	// Type is TypeWebhook or TypeFlagd.
	Type string `json:"type" yaml:"type"`

	// URL is where a webhook target receives the POST (http or https).
	URL string `json:"url,omitempty" yaml:"url,omitempty"`
	// SecretEnv names the environment variable that holds the webhook's HMAC
	// secret (at least MinSecretLen bytes).
	SecretEnv string `json:"secret_env,omitempty" yaml:"secret_env,omitempty"`
	// Secret is the webhook's HMAC secret. It is never read from or written to
	// config files; LoadSecret (or New) fills it from SecretEnv.
	Secret string `json:"-" yaml:"-"`

	// FlagFile is the flagd flag definition file (JSON) to rewrite.
	FlagFile string `json:"flag_file,omitempty" yaml:"flag_file,omitempty"`
	// FlagKey is the flag holding the live release id. Default
	// "<tenant>.<app>-release": a derived key always carries the tenant.
	FlagKey string `json:"flag_key,omitempty" yaml:"flag_key,omitempty"`

	// Timeout bounds one Deploy call: the HTTP exchange for a webhook, the
	// lock wait and write for flagd. Default DefaultTimeout.
	Timeout time.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// LoadSecret fills Secret from the environment variable SecretEnv names, when
// Secret is empty and SecretEnv is set. lookupEnv is usually os.LookupEnv.
func (t *Target) LoadSecret(lookupEnv func(string) (string, bool)) error {
	if t.Secret != "" || t.SecretEnv == "" {
		return nil
	}
	v, ok := lookupEnv(t.SecretEnv)
	if !ok || v == "" {
		return fmt.Errorf("load secret for %s target %s: environment variable %q is not set: %w",
			t.Type, t.where(), t.SecretEnv, ErrPermanent)
	}
	t.Secret = v
	return nil
}

// Validate checks the configuration. Its errors wrap ErrPermanent and never
// contain the secret.
func (t Target) Validate() error {
	if err := t.validate(); err != nil {
		return fmt.Errorf("validate %s target %s: %w: %w", cmp.Or(t.Type, "untyped"), t.where(), err, ErrPermanent)
	}
	return nil
}

func (t Target) validate() error {
	if t.Timeout < 0 {
		return fmt.Errorf("timeout %s is negative", t.Timeout)
	}
	switch t.Type {
	case TypeWebhook:
		if t.FlagFile != "" || t.FlagKey != "" {
			return errors.New("flag_file and flag_key are for flagd targets")
		}
		if t.URL == "" {
			return errors.New("url is required")
		}
		u, err := url.Parse(t.URL)
		if err != nil {
			return errors.New("url does not parse")
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("url scheme %q is not http or https", u.Scheme)
		}
		if u.Host == "" {
			return errors.New("url has no host")
		}
		if t.Secret == "" {
			if t.SecretEnv != "" {
				return fmt.Errorf("secret is empty (environment variable %q not loaded)", t.SecretEnv)
			}
			return errors.New("secret_env is required")
		}
		if len(t.Secret) < MinSecretLen {
			return fmt.Errorf("secret is shorter than %d bytes", MinSecretLen)
		}
	case TypeFlagd:
		if t.URL != "" || t.SecretEnv != "" || t.Secret != "" {
			return errors.New("url and secret_env are for webhook targets")
		}
		if t.FlagFile == "" {
			return errors.New("flag_file is required")
		}
		if !strings.EqualFold(filepath.Ext(t.FlagFile), ".json") {
			return fmt.Errorf("flag_file %q is not a .json file (only JSON flag files are supported)", t.FlagFile)
		}
		if strings.TrimSpace(t.FlagKey) != t.FlagKey {
			return fmt.Errorf("flag_key %q has surrounding spaces", t.FlagKey)
		}
	case "":
		return errors.New("type is required (webhook or flagd)")
	default:
		return fmt.Errorf("type %q is not webhook or flagd", t.Type)
	}
	return nil
}

// where names the target in errors: the URL without credentials or query, or
// the flag file.
func (t Target) where() string {
	switch {
	case t.URL != "":
		return redactURL(t.URL)
	case t.FlagFile != "":
		return t.FlagFile
	}
	return "(no url or flag_file)"
}

// redactURL drops user info, query and fragment, which may carry credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable url)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// Option adjusts an adapter built by New, NewWebhook or NewFlagd.
type Option func(*options)

type options struct {
	logger *slog.Logger
	now    func() time.Time
}

// WithLogger sets the logger. Adapters are silent without one.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithClock sets the clock webhook signatures are timestamped with. Default
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// New builds the adapter t configures. It fills an empty Secret from
// SecretEnv (os.LookupEnv) and validates t. client is used by webhook targets;
// nil means a default client.
func New(t Target, client *http.Client, opts ...Option) (Deployer, error) {
	if err := t.LoadSecret(os.LookupEnv); err != nil {
		return nil, err
	}
	switch t.Type {
	case TypeWebhook:
		return NewWebhook(t, client, opts...)
	case TypeFlagd:
		return NewFlagd(t, opts...)
	}
	return nil, t.Validate()
}
