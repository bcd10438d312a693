package api

import (
	"context"
	"errors"
	"log/slog"
	"testing"
)

// refusingRedactor finds a secret it cannot place in any prompt.
type refusingRedactor struct{}

func (refusingRedactor) Redact(context.Context, string) (string, int, error) {
	return "", 0, errors.New("a secret in the text cannot be redacted")
}

// TestProvenanceWithAnUnredactableSecretIsRefused: a prompt holding a secret
// the redactor cannot take out is refused as bad input and never stored (the
// evidence store is nil here: a Put would panic).
func TestProvenanceWithAnUnredactableSecretIsRefused(t *testing.T) {
	s := &Server{deps: Deps{Redactor: refusingRedactor{}, Logger: slog.New(slog.DiscardHandler)}}
	_, err := s.storeProvenance(context.Background(), "scan-1", Provenance{Prompt: "deploy with aGhwXy4uLg=="})
	if !errors.Is(err, errProvenanceRefused) {
		t.Fatalf("storeProvenance: %v, want errProvenanceRefused", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.deps.Redactor = cancelledRedactor{}
	if _, err := s.storeProvenance(ctx, "scan-1", Provenance{Prompt: "x"}); err == nil || errors.Is(err, errProvenanceRefused) {
		t.Fatalf("cancelled: %v, want the context's error, not a refusal", err)
	}
}

type cancelledRedactor struct{}

func (cancelledRedactor) Redact(ctx context.Context, _ string) (string, int, error) {
	return "", 0, ctx.Err()
}
