package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/tollgate/tollgate/exceptions"
)

// Exceptions keeps accepted risks; *exceptions.Store is one.
type Exceptions interface {
	Add(ctx context.Context, e exceptions.Exception) (exceptions.Exception, error)
	List(ctx context.Context, tenant string) ([]exceptions.Exception, error)
	Revoke(ctx context.Context, tenant, id, by, reason string) (exceptions.Exception, error)
}

// ExceptionRequest is the body of POST /v1/exceptions. The approver is the
// caller.
type ExceptionRequest struct {
	// Scope is "app" (App names it) or "tenant".
	Scope     string             `json:"scope"`
	App       string             `json:"app,omitempty"`
	Finding   exceptions.Finding `json:"finding"`
	Reason    string             `json:"reason"`
	ExpiresAt time.Time          `json:"expires_at"`
}

// RevokeRequest is the body of POST /v1/exceptions/{id}/revoke.
type RevokeRequest struct {
	Reason string `json:"reason"`
}

// ExceptionList is the body of GET /v1/exceptions.
type ExceptionList struct {
	Exceptions []exceptions.Exception `json:"exceptions"`
}

// exceptionRequest authorizes a call on the tenant's exceptions and decodes
// its body into v (when v is not nil).
func (s *Server) exceptionRequest(w http.ResponseWriter, r *http.Request, action string, v any) (Principal, bool) {
	p, ok := s.tenantAction(w, r, action, s.deps.Exceptions != nil, "this server keeps no exceptions")
	if !ok || v == nil {
		return p, ok
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
	if err != nil {
		s.bodyError(w, r, err)
		return p, false
	}
	if err := decodeStrict(body, v); err != nil {
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return p, false
	}
	return p, true
}

// tenantAction authorizes action on the caller's own tenant's things, which
// a server without them (served false) answers 501 with none.
func (s *Server) tenantAction(w http.ResponseWriter, r *http.Request, action string, served bool, none string) (Principal, bool) {
	ctx := r.Context()
	p := principalFrom(ctx)
	if !served {
		writeProblem(w, r, http.StatusNotImplemented, "not-implemented", none)
		return p, false
	}
	if ok, reason := s.authorize(ctx, p, action, p.Tenant); !ok {
		writeProblem(w, r, http.StatusForbidden, "forbidden", reason)
		return p, false
	}
	return p, true
}

func (s *Server) createException(w http.ResponseWriter, r *http.Request) {
	var in ExceptionRequest
	p, ok := s.exceptionRequest(w, r, "exception.create", &in)
	if !ok {
		return
	}
	e, err := s.deps.Exceptions.Add(r.Context(), exceptions.Exception{
		Tenant: p.Tenant, Scope: in.Scope, App: in.App, Finding: in.Finding,
		Reason: in.Reason, Approver: p.Name, ExpiresAt: in.ExpiresAt,
	})
	switch {
	case errors.Is(err, exceptions.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	case err != nil:
		s.internal(w, r, "add exception", err)
		return
	}
	s.deps.Logger.InfoContext(r.Context(), "exception added", "tenant", p.Tenant, "id", e.ID, "finding", e.Finding.String(), "scope", e.Scope, "app", e.App, "expires_at", e.ExpiresAt, "approver", p.Name)
	writeJSON(w, http.StatusCreated, e)
}

func (s *Server) listExceptions(w http.ResponseWriter, r *http.Request) {
	p, ok := s.exceptionRequest(w, r, "exception.read", nil)
	if !ok {
		return
	}
	all, err := s.deps.Exceptions.List(r.Context(), p.Tenant)
	if err != nil {
		s.internal(w, r, "list exceptions", err)
		return
	}
	app := r.URL.Query().Get("app")
	out := ExceptionList{Exceptions: []exceptions.Exception{}}
	for _, e := range all {
		if app == "" || e.Covers(app) {
			out.Exceptions = append(out.Exceptions, e)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) revokeException(w http.ResponseWriter, r *http.Request) {
	var in RevokeRequest
	p, ok := s.exceptionRequest(w, r, "exception.revoke", &in)
	if !ok {
		return
	}
	e, err := s.deps.Exceptions.Revoke(r.Context(), p.Tenant, r.PathValue("id"), p.Name, in.Reason)
	switch {
	case errors.Is(err, exceptions.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "not-found", err.Error())
		return
	case errors.Is(err, exceptions.ErrRevoked):
		writeProblem(w, r, http.StatusConflict, "already-revoked", err.Error())
		return
	case errors.Is(err, exceptions.ErrInvalid):
		writeProblem(w, r, http.StatusBadRequest, "bad-request", err.Error())
		return
	case err != nil:
		s.internal(w, r, "revoke exception", err)
		return
	}
	s.deps.Logger.InfoContext(r.Context(), "exception revoked", "tenant", p.Tenant, "id", e.ID, "by", p.Name)
	writeJSON(w, http.StatusOK, e)
}
