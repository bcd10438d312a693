package api

import (
	"strings"
	"testing"
	"time"
)

// now is the server's clock in the decoder tests: the samples are dated
// 2026-11-22T09:00:00Z.
var now = time.Date(2026, 11, 22, 9, 0, 30, 0, time.UTC)

func TestDecodeHealth(t *testing.T) {
	ok := `{"samples":[{"at":"2026-11-22T09:00:00Z","requests":100,"errors":3,"p50_seconds":0.01,"p95_seconds":0.2,"p99_seconds":0.5}]}`
	got, err := decodeHealth([]byte(ok), now, HealthClock{})
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
		"an hour ahead":    `{"samples":[{"at":"2026-11-22T10:00:00Z","requests":1}]}`,
		"3 minutes ahead":  `{"samples":[{"at":"2026-11-22T09:03:31Z","requests":1}]}`,
		"an hour old":      `{"samples":[{"at":"2026-11-22T08:00:00Z","requests":1}]}`,
		"too many":         `{"samples":[` + strings.Repeat(`{"at":"2026-11-22T09:00:00Z","requests":1},`, maxSamplesPerPush) + `{"at":"2026-11-22T09:00:00Z","requests":1}]}`,
	} {
		if _, err := decodeHealth([]byte(body), now, HealthClock{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The clock window is configurable: a wider one accepts what the default
// refuses.
func TestDecodeHealthClockWindowIsConfigurable(t *testing.T) {
	body := []byte(`{"samples":[{"at":"2026-11-22T09:10:00Z","requests":1}]}`)
	if _, err := decodeHealth(body, now, HealthClock{}); err == nil {
		t.Fatal("a sample 9m30s ahead accepted by default")
	}
	if _, err := decodeHealth(body, now, HealthClock{Ahead: 10 * time.Minute}); err != nil {
		t.Fatalf("a sample 9m30s ahead refused with a 10m window: %v", err)
	}
}

// FuzzDecodeHealth: whatever arrives, with the server's clock skewed any
// way from the samples', decoding never panics, and every accepted sample
// is one the guard can judge, dated within the clock window.
func FuzzDecodeHealth(f *testing.F) {
	f.Add([]byte(`{"samples":[{"at":"2026-11-22T09:00:00Z","requests":100,"errors":3,"p95_seconds":0.2}]}`), int64(0))
	f.Add([]byte(`{"samples":[{"at":"2026-11-22T09:00:00Z","requests":1,"errors":2}]}`), int64(-3600))
	f.Add([]byte(`{"samples":[{"at":"0001-01-01T00:00:00Z","requests":9223372036854775807,"p50_seconds":-0}]}`), int64(1<<40))
	f.Add([]byte(`{"samples":[{"at":"2026-11-22T09:02:30Z","requests":5}]}`), int64(-1))
	f.Add([]byte(`{"samples":null}`), int64(120))
	f.Fuzz(func(t *testing.T, body []byte, skewSeconds int64) {
		at := now.Add(time.Duration(skewSeconds%(1<<33)) * time.Second)
		clock := HealthClock{}.withDefaults()
		samples, err := decodeHealth(body, at, clock)
		if err != nil {
			return
		}
		for _, s := range samples {
			if err := s.Validate(); err != nil || s.P99 < 0 || s.At.IsZero() {
				t.Fatalf("accepted a bad sample %+v: %v", s, err)
			}
			if s.At.After(at.Add(clock.Ahead)) || s.At.Before(at.Add(-clock.Behind)) {
				t.Fatalf("accepted a sample at %s with the server at %s", s.At, at)
			}
		}
	})
}
