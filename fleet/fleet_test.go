package fleet

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/api"
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
	}.Validate()
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Validate = %v, want ErrConfig", err)
	}
	for _, field := range []string{"temporal.cert_file, temporal.key_file", "api.max_archive_bytes", "api.rate_per_second", "api.burst", "api.tokens[1]"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate = %v, want an error naming %s", err, field)
		}
	}
	if strings.Contains(err.Error(), "api.tokens[0]") {
		t.Errorf("Validate = %v: the valid token was refused", err)
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
