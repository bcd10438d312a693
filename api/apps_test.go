package api

import (
	"strings"
	"testing"
	"time"
)

func TestDecodeHealth(t *testing.T) {
	ok := `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":100,"errors":3,"p50_seconds":0.01,"p95_seconds":0.2,"p99_seconds":0.5}]}`
	got, err := decodeHealth([]byte(ok))
	if err != nil || len(got) != 1 || got[0].Errors != 3 || got[0].P95 != 200*time.Millisecond {
		t.Fatalf("decode: %v %+v", err, got)
	}
	for name, body := range map[string]string{
		"empty":            ``,
		"no samples":       `{"samples":[]}`,
		"unknown field":    `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1}],"x":1}`,
		"trailing":         `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1}]}{}`,
		"errors over reqs": `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1,"errors":2}]}`,
		"negative":         `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":-1}]}`,
		"huge latency":     `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1,"p99_seconds":1e300}]}`,
		"no time":          `{"samples":[{"requests":1}]}`,
		"far future":       `{"samples":[{"at":"2999-01-01T00:00:00Z","requests":1}]}`,
		"too many":         `{"samples":[` + strings.Repeat(`{"at":"2026-11-22T09:00:00Z","requests":1},`, maxSamplesPerPush) + `{"at":"2026-11-22T09:00:00Z","requests":1}]}`,
	} {
		if _, err := decodeHealth([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeHealth: whatever arrives, decoding never panics, and every
// accepted sample is one the guard can judge.
func FuzzDecodeHealth(f *testing.F) {
	f.Add([]byte(`{"samples":[{"at":"2026-11-22T09:00:00Z","requests":100,"errors":3,"p95_seconds":0.2}]}`))
	f.Add([]byte(`{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1,"errors":2}]}`))
	f.Add([]byte(`{"samples":[{"at":"0001-01-01T00:00:00Z","requests":9223372036854775807,"p50_seconds":-0}]}`))
	f.Add([]byte(`{"samples":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		samples, err := decodeHealth(body)
		if err != nil {
			return
		}
		for _, s := range samples {
			if err := s.Validate(); err != nil || s.P99 < 0 || s.At.IsZero() {
				t.Fatalf("accepted a bad sample %+v: %v", s, err)
			}
		}
	})
}
