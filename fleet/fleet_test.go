package fleet

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/workers/scanners"
)

// Every configuration error names its field and is ErrConfig, so that the
// commands answer it as a usage error; all of them are reported at once.
func TestConfigValidateNamesTheFields(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero config: %v, want the defaults to hold", err)
	}
	err := Config{
		Temporal: Temporal{CertFile: "client.pem"},
		API: API{MaxArchiveBytes: -1, RatePerSecond: -1, Burst: -1,
			Tokens: []api.Token{{Name: "ok", SHA256: api.HashToken("x"), Tenant: "acme"}, {Name: "bad", Tenant: "acme"}}},
		Orchestrator: Orchestrator{Targets: map[string]deployers.Target{"shop": {Type: deployers.TypeWebhook, URL: "https://deploy.example"}},
			RematchInterval: time.Second, EventsWebhookURL: "https://hooks.example/events", EventsWebhookSecret: "short",
			PrometheusURL: "ftp://prometheus", HealthLag: -time.Second},
		Worker: Worker{Concurrency: -1, TaskMemory: -1, TaskTimeout: -time.Second},
	}.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate = %v, want ErrConfig", err)
	}
	for _, field := range []string{"temporal.cert_file, temporal.key_file", "api.max_archive_bytes", "api.rate_per_second", "api.burst", "api.tokens[1]",
		"guard.targets", "rematch.interval", "rematch.webhook_url", "guard.prometheus_url", "guard.prometheus_lag",
		"worker.concurrency", "worker.task_memory_mib", "worker.task_timeout"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate = %v, want an error naming %s", err, field)
		}
	}
	if strings.Contains(err.Error(), "api.tokens[0]") {
		t.Errorf("Validate = %v: the valid token was refused", err)
	}
	if strings.Contains(err.Error(), "worker.secret_fingerprint_key") {
		t.Errorf("Validate = %v: only a worker needs the fingerprint key", err)
	}
	// Never re-matching, and the defaults, are valid.
	if err := (Config{Orchestrator: Orchestrator{RematchInterval: -1}}).Validate(); err != nil {
		t.Errorf("rematch never: %v", err)
	}
}

// A worker needs the fleet's secret fingerprint key, long enough; the other
// roles do not.
func TestValidateWorkerNeedsTheFingerprintKey(t *testing.T) {
	t.Parallel()
	for _, key := range []string{"", "short"} {
		err := Config{Worker: Worker{SecretFingerprintKey: []byte(key)}}.ValidateWorker()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "worker.secret_fingerprint_key ($TOLLGATE_SECRET_FINGERPRINT_KEY):") {
			t.Errorf("key %q: ValidateWorker = %v, want ErrConfig naming worker.secret_fingerprint_key", key, err)
		}
	}
	key := []byte(strings.Repeat("k", scanners.MinFingerprintKeyBytes))
	if err := (Config{Worker: Worker{SecretFingerprintKey: key}}).ValidateWorker(); err != nil {
		t.Errorf("a %d-byte key: %v", len(key), err)
	}
	// The rest of the configuration is checked too.
	if err := (Config{Worker: Worker{SecretFingerprintKey: key, TaskTimeout: -1}}).ValidateWorker(); !errors.Is(err, ErrConfig) {
		t.Errorf("ValidateWorker with a negative task timeout = %v, want ErrConfig", err)
	}
}

// A TLS file that cannot be read is the configuration's fault, and the
// options say which file.
func TestTemporalOptionsTLSFilesAreConfigErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "ca.pem")
	_, err := TemporalOptions(Temporal{Address: "127.0.0.1:7233", CAFile: missing}, Observability{})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("TemporalOptions with a missing CA file = %v, want ErrConfig naming it", err)
	}
	opts, err := TemporalOptions(Temporal{Address: "127.0.0.1:7233", Namespace: "ns"}, Observability{})
	if err != nil || opts.HostPort != "127.0.0.1:7233" || opts.Namespace != "ns" || opts.ConnectionOptions.TLS != nil || opts.Logger == nil {
		t.Fatalf("TemporalOptions = %+v, %v", opts, err)
	}
}
