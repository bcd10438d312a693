package api

import "testing"

// A review is bound to a person: a second token does not make the
// submitter, or the commit's author, someone else. On 9ae75cb only the
// token name was compared, and every case below but the first was allowed.
func TestReviewerMustBeAnotherPerson(t *testing.T) {
	sub := submission{Submitter: "ci-dana", Person: "dana@example.com", Author: "Ada@Example.com"}
	for name, c := range map[string]struct {
		p       Principal
		refused bool
	}{
		"the submitting token":            {Principal{Name: "ci-dana", Person: "rita@example.com"}, true},
		"the submitter's second token":    {Principal{Name: "dana-reviewer", Person: "DANA@example.com"}, true},
		"the commit author's token":       {Principal{Name: "ada", Person: "ada@example.com"}, true},
		"another person":                  {Principal{Name: "rita", Person: "rita@example.com"}, false},
		"another person, oidc by subject": {Principal{Name: "oidc:123", Person: "123"}, false},
	} {
		if got := sub.refuses(c.p) != ""; got != c.refused {
			t.Errorf("%s: refused %v, want %v", name, got, c.refused)
		}
	}
}

// A static token's person reaches the principal; an OIDC login is its
// verified email, else its subject.
func TestPrincipalPerson(t *testing.T) {
	s := testServer(t, Config{Tokens: []Token{
		{Name: "rita", SHA256: HashToken("r"), Tenant: "a", Roles: []string{RoleReviewer}, Person: "rita@example.com"},
		{Name: "bot", SHA256: HashToken("b"), Tenant: "a", Roles: []string{RoleCI}},
	}})
	if p, _ := s.staticPrincipal("r"); p.Person != "rita@example.com" || p.Auth != AuthStatic {
		t.Fatalf("rita: %+v", p)
	}
	if p, _ := s.staticPrincipal("b"); p.Person != "" {
		t.Fatalf("bot: %+v", p)
	}
	if got := oidcPerson("sub-1", map[string]any{"email": "a@example.com", "email_verified": true}); got != "a@example.com" {
		t.Fatalf("verified email: %q", got)
	}
	if got := oidcPerson("sub-1", map[string]any{"email": "a@example.com"}); got != "sub-1" {
		t.Fatalf("unverified email: %q", got)
	}
	if err := (Token{Name: "x", SHA256: HashToken("x"), Tenant: "a", Person: "not an email"}).Validate(); err == nil {
		t.Fatal("a token with a person that is not an email was accepted")
	}
	if err := (Metadata{App: "todo", Author: "Robert <bob@example.com>"}).Validate(); err == nil {
		t.Fatal("an author with a display name was accepted")
	}
}
