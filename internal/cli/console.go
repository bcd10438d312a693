package cli

import (
	"context"
	"net/http"

	"github.com/tollgate/tollgate/console"
)

// withConsole mounts the web console at /console/ beside the API's handler
// on one listener; the console calls apiHandler in process with each
// session's bearer, so it passes the API's own authentication and policy.
func withConsole(ctx context.Context, cfg console.Config, apiHandler http.Handler) (http.Handler, error) {
	c, err := console.New(ctx, cfg, apiHandler)
	if err != nil {
		return nil, usageErr(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	mux.Handle("/", apiHandler)
	return mux, nil
}

// consoleConfig is the console of `serve`: OIDC sign-in against the issuer
// the API trusts, as the client whose id is the API's audience.
func (c Config) consoleConfig(g *globals) console.Config {
	return console.Config{Issuer: c.API.OIDC.Issuer, Audience: c.API.OIDC.Audience, ClientID: c.Console.ClientID,
		ClientSecret: c.Console.ClientSecret, RedirectURL: c.Console.RedirectURL,
		AllowTokenSignin: c.Console.AllowTokenSignin, Logger: g.logger}
}
