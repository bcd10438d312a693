package api

import (
	"testing"

	"github.com/tollgate/tollgate/control"
)

// TestGuardStateNamesWhereTheGuardStands: a running rollback (or a guard
// awaiting the release it rolled back to) comes first, then frozen, then
// breached, else watching.
func TestGuardStateNamesWhereTheGuardStands(t *testing.T) {
	st := func(f func(*control.GuardStatus)) control.GuardStatus {
		var s control.GuardStatus
		f(&s)
		return s
	}
	for _, c := range []struct {
		name string
		st   control.GuardStatus
		want string
	}{
		{"healthy", st(func(*control.GuardStatus) {}), StateWatching},
		{"breached", st(func(s *control.GuardStatus) { s.Guard.Breaches = 1 }), StateBreached},
		{"frozen and breached", st(func(s *control.GuardStatus) { s.Guard.Frozen, s.Guard.Breaches = true, 3 }), StateFrozen},
		{"rollback running", st(func(s *control.GuardStatus) { s.RollbackRunning, s.Guard.Frozen = true, true }), StateRollingBack},
		{"awaiting the rolled-back release", st(func(s *control.GuardStatus) { s.Guard.AwaitingRelease = true }), StateRollingBack},
	} {
		if got := guardState(c.st); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
