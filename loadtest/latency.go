package loadtest

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// latencyHist is an HDR histogram of durations (1µs to 1h, 3 significant
// digits), safe for concurrent use.
type latencyHist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencyHist() *latencyHist {
	return &latencyHist{h: hdrhistogram.New(1, int64(time.Hour/time.Microsecond), 3)}
}

// Record adds one duration; out-of-range values are clamped.
func (l *latencyHist) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), int64(time.Hour/time.Microsecond))
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.h.RecordValue(us)
}

// Summary gives the percentiles in seconds.
func (l *latencyHist) Summary() Latencies {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := func(us int64) float64 { return float64(us) / 1e6 }
	if l.h.TotalCount() == 0 {
		return Latencies{}
	}
	return Latencies{
		Count: l.h.TotalCount(), P50: s(l.h.ValueAtQuantile(50)), P90: s(l.h.ValueAtQuantile(90)),
		P99: s(l.h.ValueAtQuantile(99)), Max: s(l.h.Max()), Mean: l.h.Mean() / 1e6,
	}
}
