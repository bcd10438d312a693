package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate/tollgate/api"
)

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tollgate.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A per-app deploy target keyed by a bare app or "*" would serve every
// tenant's app of that name: the config is refused, and the fleet-wide
// target is the explicit guard.default_target.
func TestConfigRefusesDeployTargetsThatSpanTenants(t *testing.T) {
	const target = "{type: flagd, flag_file: /tmp/flags.json}"
	for _, key := range []string{"shop", `"*"`, `"x/../acme/shop"`, `"ACME/shop"`} {
		_, err := loadConfig(writeConfig(t, "guard:\n  targets:\n    "+key+": "+target+"\n"))
		if err == nil || !strings.Contains(err.Error(), "guard.targets") {
			t.Errorf("targets key %s: loadConfig = %v, want a guard.targets error", key, err)
		}
	}
	cfg, err := loadConfig(writeConfig(t, "guard:\n  targets:\n    acme/shop: "+target+"\n  default_target: "+target+"\n"))
	if err != nil {
		t.Fatalf("tenant/app key and default_target: %v", err)
	}
	if _, ok := cfg.Guard.Targets["acme/shop"]; !ok || cfg.Guard.DefaultTarget == nil || cfg.Guard.DefaultTarget.FlagFile != "/tmp/flags.json" {
		t.Errorf("guard config = %+v", cfg.Guard)
	}
}

func TestConfigOIDCRoleMapGrantsOnlyKnownRoles(t *testing.T) {
	const oidc = "api:\n  oidc:\n    issuer: https://ci.example\n    audience: tollgate\n    role_map:\n"
	if _, err := loadConfig(writeConfig(t, oidc+"      ops: [root]\n")); err == nil || !strings.Contains(err.Error(), `unknown role "root"`) {
		t.Errorf("role_map to an unknown role: loadConfig = %v", err)
	}
	cfg, err := loadConfig(writeConfig(t, oidc+"      tollgate-ci: [ci]\n      sec-team: [security, reviewer]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.API.OIDC.RoleMap["sec-team"]; len(got) != 2 || got[0] != api.RoleSecurity {
		t.Errorf("role_map = %v", cfg.API.OIDC.RoleMap)
	}
	t.Setenv("TOLLGATE_OIDC_ROLE_MAP", `{"deployers": ["deployer"]}`)
	cfg, err = loadConfig(writeConfig(t, oidc+"      tollgate-ci: [ci]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.API.OIDC.RoleMap) != 1 || cfg.API.OIDC.RoleMap["deployers"][0] != api.RoleDeployer {
		t.Errorf("role_map from the environment = %v", cfg.API.OIDC.RoleMap)
	}
	t.Setenv("TOLLGATE_OIDC_ROLE_MAP", `{"x": ["superuser"]}`)
	if _, err := loadConfig(writeConfig(t, oidc+"      tollgate-ci: [ci]\n")); err == nil {
		t.Error("an unknown role from $TOLLGATE_OIDC_ROLE_MAP was taken")
	}
}

// A worker with bad settings stops at once with a usage error naming the
// setting, before it dials NATS or Temporal (none run here).
func TestWorkerRefusesBadSettings(t *testing.T) {
	t.Setenv("TOLLGATE_CONFIG", "")
	t.Setenv("TOLLGATE_NATS_URL", "nats://127.0.0.1:1")
	t.Setenv("TOLLGATE_TEMPORAL_ADDRESS", "127.0.0.1:1")
	key := strings.Repeat("k", 32)
	for _, c := range []struct{ env, value, key, field string }{
		{"TOLLGATE_WORKER_TASK_TIMEOUT", "ten minutes", key, "worker.task_timeout"},
		{"TOLLGATE_WORKER_TASK_TIMEOUT", "0s", key, "worker.task_timeout"},
		{"TOLLGATE_WORKER_TASK_MEMORY_MIB", "-1", key, "worker.task_memory_mib"},
		{"TOLLGATE_WORKER_CONCURRENCY", "-2", key, "worker.concurrency"},
		{"TOLLGATE_WORKER_CONCURRENCY", "1", "", "worker.secret_fingerprint_key"},
		{"TOLLGATE_WORKER_CONCURRENCY", "1", "too-short", "worker.secret_fingerprint_key"},
	} {
		t.Run(c.field, func(t *testing.T) {
			t.Setenv(c.env, c.value)
			t.Setenv("TOLLGATE_SECRET_FINGERPRINT_KEY", c.key)
			code, _, stderr := run(t, "worker", "--pool", "fast")
			if code != ExitBadInput || !strings.Contains(stderr, c.field) {
				t.Fatalf("$%s=%q: exit %d, want %d naming %s: %s", c.env, c.value, code, ExitBadInput, c.field, stderr)
			}
		})
	}
}

// The console's client secret comes from a file like the other secrets, and
// serve's console is the OIDC client whose id is the API's audience.
func TestConfigConsoleSectionAndSecretFile(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TOLLGATE_CONSOLE_CLIENT_SECRET_FILE", secret)
	cfg, err := loadConfig(writeConfig(t, "api:\n  oidc: {issuer: https://idp.example, audience: tollgate}\n"+
		"console:\n  enabled: true\n  redirect_url: https://tollgate.example/console/auth/callback\n"))
	if err != nil {
		t.Fatal(err)
	}
	cc := cfg.consoleConfig(&globals{})
	if !cfg.Console.Enabled || cc.ClientSecret != "s3cret" || cc.Audience != "tollgate" || cc.Issuer != "https://idp.example" || cc.AllowTokenSignin {
		t.Fatalf("console config %+v", cc)
	}
	cc.ClientID = "another-client"
	if err := cc.Validate(); err == nil {
		t.Error("a console client id other than the API's audience was accepted")
	}
}
