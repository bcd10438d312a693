package loadtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tollgate/tollgate/stack"
)

// TestAssessDrills: the longest stall is the longest gap between finishes
// within a drill's window, edges included; recovery is the end of the last
// 5-second window below half the steady rate, after the drill's start.
func TestAssessDrills(t *testing.T) {
	var done []float64
	// 2 scans a second for 20 s, nothing from 20 to 26, 2 a second again to 40.
	for s := 0.25; s < 40; s += 0.5 {
		if s < 20 || s >= 26 {
			done = append(done, s)
		}
	}
	drills := []Drill{{Name: "a", StartS: 10}, {Name: "b", StartS: 19, EndS: 20}, {Name: "c", StartS: 38}}
	assessDrills(drills, done, 40)
	if d := drills[0]; d.LongestStallS != 0.5 || d.RecoveredS != 0 {
		t.Errorf("an undisturbed drill: stall %g, recovered %g; want 0.5 and 0", d.LongestStallS, d.RecoveredS)
	}
	// b's window is 19..38: the gap from 19.75 to 26.25; windows below 1/s
	// end at the latest at 28 (23..28 holds 26.25, 26.75, 27.25, 27.75).
	if d := drills[1]; d.LongestStallS != 6.5 || d.RecoveredS != 28-19 {
		t.Errorf("a stalled drill: stall %g, recovered %g; want 6.5 and 9", d.LongestStallS, d.RecoveredS)
	}
	low := []Drill{{Name: "d", StartS: 15}}
	assessDrills(low, done[:40], 40) // nothing after 20 s
	if d := low[0]; d.RecoveredS != -1 || d.LongestStallS != 40-19.75 {
		t.Errorf("a fleet that never came back: stall %g, recovered %g; want 20.25 and -1", d.LongestStallS, d.RecoveredS)
	}
}

// TestAwaitLeader: an election under way is waited out; another error is
// returned at once.
func TestAwaitLeader(t *testing.T) {
	calls := 0
	name, err := awaitLeader(t.Context(), func(context.Context) (string, error) {
		calls++
		if calls < 3 {
			return "", fmt.Errorf("leader of stream: %w", stack.ErrNoLeader)
		}
		return "n2", nil
	})
	if name != "n2" || err != nil || calls != 3 {
		t.Errorf("got %q, %v after %d calls; want n2 after 3", name, err, calls)
	}
	calls = 0
	if _, err := awaitLeader(t.Context(), func(context.Context) (string, error) { calls++; return "", errors.New("refused") }); err == nil || calls != 1 {
		t.Errorf("another error: %v after %d calls; want it after 1", err, calls)
	}
}
