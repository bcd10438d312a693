package policies

import (
	"context"
	"embed"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

//go:embed authz/authz.rego
var authzFS embed.FS

// AuthzInput is what the authorization policy decides on.
type AuthzInput struct {
	Principal struct {
		Name   string   `json:"name"`
		Tenant string   `json:"tenant"`
		Roles  []string `json:"roles"`
	} `json:"principal"`
	Action   string `json:"action"`
	Resource struct {
		Tenant string `json:"tenant"`
	} `json:"resource"`
}

// AuthzDecision is the policy's answer.
type AuthzDecision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason"`
}

// Authz evaluates the embedded API authorization policy
// (policies/authz/authz.rego). It is safe for concurrent use.
type Authz struct {
	q rego.PreparedEvalQuery
}

// NewAuthz compiles the authorization policy once.
func NewAuthz(ctx context.Context) (*Authz, error) {
	src, err := authzFS.ReadFile("authz/authz.rego")
	if err != nil {
		return nil, err
	}
	q, err := rego.New(rego.Query("data.tollgate.authz.decision"), rego.Module("authz.rego", string(src)),
		rego.SetRegoVersion(ast.RegoV1), rego.StrictBuiltinErrors(true)).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("compile authz policy: %w", err)
	}
	return &Authz{q: q}, nil
}

// Decide evaluates one request. Anything but an explicit allow is a denial.
func (a *Authz) Decide(ctx context.Context, in AuthzInput) (AuthzDecision, error) {
	if in.Principal.Roles == nil {
		in.Principal.Roles = []string{}
	}
	rs, err := a.q.Eval(ctx, rego.EvalInput(in))
	if err != nil {
		return AuthzDecision{}, fmt.Errorf("evaluate authz policy: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return AuthzDecision{Reason: "no decision"}, nil
	}
	m, _ := rs[0].Expressions[0].Value.(map[string]any)
	allow, _ := m["allow"].(bool)
	reason, _ := m["reason"].(string)
	return AuthzDecision{Allow: allow, Reason: reason}, nil
}

// AuthzActions lists every action the embedded authorization policy
// decides (its "actions" set), sorted: the policy, not a copy of it in Go,
// names them.
func AuthzActions(ctx context.Context) ([]string, error) {
	src, err := authzFS.ReadFile("authz/authz.rego")
	if err != nil {
		return nil, err
	}
	rs, err := rego.New(rego.Query("data.tollgate.authz.actions"), rego.Module("authz.rego", string(src)),
		rego.SetRegoVersion(ast.RegoV1)).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the actions of the authz policy: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("read the actions of the authz policy: no actions set")
	}
	set, _ := rs[0].Expressions[0].Value.([]any)
	out := make([]string, 0, len(set))
	for _, v := range set {
		if a, ok := v.(string); ok {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out, nil
}
