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
