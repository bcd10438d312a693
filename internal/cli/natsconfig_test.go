package cli

import (
	"os"
	"strings"
	"testing"
)

// A NATS cluster is reached through the same settings a user sets: several
// servers in TOLLGATE_NATS_URL, and the streams' replicas in
// TOLLGATE_NATS_REPLICAS (or nats.replicas), within JetStream's 1 to 5.
func TestConfigNATSClusterSettings(t *testing.T) {
	const urls = "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"
	t.Setenv("TOLLGATE_NATS_URL", urls)
	t.Setenv("TOLLGATE_NATS_REPLICAS", "3")
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NATS.URL != urls || cfg.NATS.Replicas != 3 {
		t.Errorf("nats url %q replicas %d, want %q and 3", cfg.NATS.URL, cfg.NATS.Replicas, urls)
	}
	t.Setenv("TOLLGATE_NATS_REPLICAS", "6")
	if _, err := loadConfig(""); err == nil || !strings.Contains(err.Error(), "1 to 5") {
		t.Errorf("6 replicas: %v", err)
	}
	os.Unsetenv("TOLLGATE_NATS_REPLICAS")
	if cfg, err := loadConfig(writeConfig(t, "nats:\n  replicas: 3\n")); err != nil || cfg.NATS.Replicas != 3 {
		t.Errorf("nats.replicas 3 in the file: %d %v", cfg.NATS.Replicas, err)
	}
}
