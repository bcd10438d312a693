package cli

import (
	"strings"
	"testing"
)

// An events webhook with a short secret is refused when the configuration
// is loaded, before any process starts signing events with it.
func TestEventsWebhookNeedsA32ByteSecret(t *testing.T) {
	t.Setenv("TOLLGATE_CONFIG", "")
	t.Setenv("TOLLGATE_EVENTS_WEBHOOK_URL", "https://hooks.example/events")
	t.Setenv("TOLLGATE_EVENTS_WEBHOOK_SECRET", "hunter2")
	if _, err := loadConfig(""); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Fatalf("error %v, want the short secret refused", err)
	}
	t.Setenv("TOLLGATE_EVENTS_WEBHOOK_SECRET", strings.Repeat("s", 32))
	if _, err := loadConfig(""); err != nil {
		t.Fatalf("32-byte secret: %v", err)
	}
}
