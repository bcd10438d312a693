package deployers_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tollgate/tollgate/activities/deployers"
)

const testSecret = "0123456789abcdef0123456789abcdef-test-secret"

func TestTargetValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  deployers.Target
		wantErr string // "" means valid
	}{
		{"webhook", deployers.Target{Type: "webhook", URL: "https://deployer.example/x", Secret: testSecret}, ""},
		{"webhook with timeout", deployers.Target{Type: "webhook", URL: "http://deployer:8080/x", Secret: testSecret, Timeout: time.Second}, ""},
		{"flagd", deployers.Target{Type: "flagd", FlagFile: "/etc/flagd/flags.json"}, ""},
		{"flagd with key", deployers.Target{Type: "flagd", FlagFile: "flags.JSON", FlagKey: "edge-release"}, ""},
		{"no type", deployers.Target{URL: "https://x"}, "type is required"},
		{"unknown type", deployers.Target{Type: "kubernetes"}, `type "kubernetes"`},
		{"webhook without url", deployers.Target{Type: "webhook", Secret: testSecret}, "url is required"},
		{"webhook bad scheme", deployers.Target{Type: "webhook", URL: "ftp://x/y", Secret: testSecret}, `scheme "ftp"`},
		{"webhook no host", deployers.Target{Type: "webhook", URL: "https:///y", Secret: testSecret}, "no host"},
		{"webhook no secret", deployers.Target{Type: "webhook", URL: "https://x/y"}, "secret_env is required"},
		{"webhook secret not loaded", deployers.Target{Type: "webhook", URL: "https://x/y", SecretEnv: "DEPLOY_SECRET"}, `"DEPLOY_SECRET" not loaded`},
		{"webhook short secret", deployers.Target{Type: "webhook", URL: "https://x/y", Secret: "hunter2"}, "shorter than 32 bytes"},
		{"webhook with flag file", deployers.Target{Type: "webhook", URL: "https://x/y", Secret: testSecret, FlagFile: "f.json"}, "for flagd targets"},
		{"negative timeout", deployers.Target{Type: "webhook", URL: "https://x/y", Secret: testSecret, Timeout: -time.Second}, "negative"},
		{"flagd without file", deployers.Target{Type: "flagd"}, "flag_file is required"},
		{"flagd yaml file", deployers.Target{Type: "flagd", FlagFile: "/etc/flagd/flags.yaml"}, "not a .json file"},
		{"flagd with url", deployers.Target{Type: "flagd", FlagFile: "f.json", URL: "https://x"}, "for webhook targets"},
		{"flagd key with spaces", deployers.Target{Type: "flagd", FlagFile: "f.json", FlagKey: " k"}, "surrounding spaces"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.target.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tt.wantErr)
			}
			if !errors.Is(err, deployers.ErrPermanent) {
				t.Errorf("Validate() = %v, want it to wrap ErrPermanent", err)
			}
		})
	}
}

func TestTargetValidateKeepsSecretOutOfErrors(t *testing.T) {
	t.Parallel()
	secret := "short-but-very-recognisable"
	err := deployers.Target{Type: "webhook", URL: "https://user:pw@x/y?token=abc", Secret: secret}.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want short secret error")
	}
	for _, leak := range []string{secret, "pw", "token=abc"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q contains %q", err, leak)
		}
	}
}

// Not parallel: t.Setenv.
func TestNewLoadsSecretFromEnv(t *testing.T) {
	target := deployers.Target{Type: "webhook", URL: "https://deployer.example/x", SecretEnv: "TOLLGATE_TEST_DEPLOY_SECRET"}
	if _, err := deployers.New(target, nil); err == nil || !errors.Is(err, deployers.ErrPermanent) ||
		!strings.Contains(err.Error(), "TOLLGATE_TEST_DEPLOY_SECRET") {
		t.Fatalf("New() without the env var = %v, want a permanent error naming the variable", err)
	}
	t.Setenv("TOLLGATE_TEST_DEPLOY_SECRET", testSecret)
	d, err := deployers.New(target, nil)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if _, ok := d.(*deployers.Webhook); !ok {
		t.Fatalf("New() = %T, want *deployers.Webhook", d)
	}
	if target.Secret != "" {
		t.Fatal("New modified the caller's Target")
	}
}

func TestNewBuildsFlagd(t *testing.T) {
	t.Parallel()
	d, err := deployers.New(deployers.Target{Type: "flagd", FlagFile: t.TempDir() + "/flags.json"}, nil)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if _, ok := d.(*deployers.Flagd); !ok {
		t.Fatalf("New() = %T, want *deployers.Flagd", d)
	}
	if _, err := deployers.New(deployers.Target{Type: "nomad"}, nil); !errors.Is(err, deployers.ErrPermanent) {
		t.Fatalf("New(nomad) = %v, want ErrPermanent", err)
	}
}

func TestRequestValidate(t *testing.T) {
	t.Parallel()
	ok := deployers.Request{App: "shop", ReleaseID: "r1", RollbackID: "rb-1"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	for _, req := range []deployers.Request{
		{ReleaseID: "r1", RollbackID: "rb-1"},
		{App: "shop", RollbackID: "rb-1"},
		{App: "shop", ReleaseID: "r1"},
		{App: "shop", ReleaseID: "r\xff", RollbackID: "rb-1"},
	} {
		if err := req.Validate(); !errors.Is(err, deployers.ErrPermanent) {
			t.Errorf("Validate(%+v) = %v, want ErrPermanent", req, err)
		}
	}
}

func TestDeployerFunc(t *testing.T) {
	t.Parallel()
	var d deployers.Deployer = deployers.DeployerFunc(func(_ context.Context, req deployers.Request) (deployers.Receipt, error) {
		return deployers.Receipt{Target: "func", Detail: req.ReleaseID}, nil
	})
	rc, err := d.Deploy(context.Background(), deployers.Request{ReleaseID: "r1"})
	if err != nil || rc.Detail != "r1" {
		t.Fatalf("Deploy() = %+v, %v", rc, err)
	}
}
