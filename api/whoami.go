package api

import (
	"net/http"
)

// WhoAmI is the body of GET /v1/whoami: the caller and what the policy lets
// it do in its own tenant, one entry per action of the authorization
// policy. A client (the console) shows an action only where Can says so;
// the route that does it asks the policy again anyway.
type WhoAmI struct {
	Principal Principal       `json:"principal"`
	Can       map[string]bool `json:"can"`
}

// whoami answers any authenticated principal: each action is decided by
// the server's Authorizer for the principal's own tenant, never by a copy
// of the policy here.
func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	out := WhoAmI{Principal: p, Can: make(map[string]bool, len(s.actions))}
	if out.Principal.Roles == nil {
		out.Principal.Roles = []string{}
	}
	for _, action := range s.actions {
		out.Can[action], _ = s.authorize(ctx, p, action, p.Tenant)
	}
	writeJSON(w, http.StatusOK, out)
}
