package api

import (
	"net/http"
	"time"

	"github.com/tollgate/tollgate/tasks"
)

// PoolsStatus is the answer of GET /v1/pools.
type PoolsStatus struct {
	At    time.Time          `json:"at"`
	Pools []tasks.PoolStatus `json:"pools"`
}

// pools reports each worker pool's queue (role sre): the fleet's totals,
// which name no tenant, and the caller's own tenant's tasks. Other tenants'
// backlogs are theirs to see.
func (s *Server) pools(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	if ok, reason := s.authorize(ctx, p, "pools.read", p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return
	}
	if s.deps.Pools == nil {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", "this server does not see the task queues")
		return
	}
	st, err := s.deps.Pools.Status(ctx)
	if err != nil {
		s.internal(w, r, "read the pools", err)
		return
	}
	for i := range st {
		st[i] = st[i].ForTenant(p.Tenant)
	}
	writeJSON(w, http.StatusOK, PoolsStatus{At: time.Now().UTC(), Pools: st})
}
