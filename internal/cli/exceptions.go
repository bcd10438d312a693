package cli

import (
	"cmp"
	"fmt"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/exceptions"
)

// exceptionFlags are the API flags of the exception commands.
type exceptionFlags struct {
	server, token string
	json          bool
}

func (f *exceptionFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.server, "server", os.Getenv("TOLLGATE_SERVER"), "API base URL ($TOLLGATE_SERVER)")
	fs.StringVar(&f.token, "token", os.Getenv("TOLLGATE_TOKEN"), "bearer token ($TOLLGATE_TOKEN)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON answer")
}

func newExceptionCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exception",
		Short: "Accept a risk until a date: add, list and revoke exceptions",
		Long: `An exception accepts one finding (a vulnerability in a package, a secret or a code
weakness by its fingerprint, or every finding of a policy rule, check or SAST rule)
for one app or the whole tenant, with a reason, until it expires. It is stored as
evidence; the policy applies it while it is in force, and every verdict lists the
exceptions it applied and when each expires. Adding and revoking need the security role; the caller is the approver.`,
	}
	cmd.AddCommand(newExceptionAddCmd(g), newExceptionListCmd(g), newExceptionRevokeCmd(g))
	return cmd
}

func newExceptionAddCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	var in api.ExceptionRequest
	var tenantWide bool
	var expires string
	cmd := &cobra.Command{
		Use:   "add (--app A | --tenant-wide) (--vulnerability ID --package P | --secret FINGERPRINT | --weakness FINGERPRINT | --rule NAME) --reason TEXT --expires 720h|2027-01-31",
		Short: "Accept a finding until a date",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case tenantWide && in.App != "":
				return usageErrf("--app and --tenant-wide exclude each other")
			case tenantWide:
				in.Scope = exceptions.ScopeTenant
			case in.App != "":
				in.Scope = exceptions.ScopeApp
			default:
				return usageErrf("--app or --tenant-wide is required")
			}
			if strings.TrimSpace(in.Reason) == "" {
				return usageErrf("--reason is required")
			}
			at, err := parseExpiry(expires, time.Now())
			if err != nil {
				return err
			}
			in.ExpiresAt = at
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			var out exceptions.Exception
			if err := c.post(cmd.Context(), "/v1/exceptions", in, &out); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "%s: %s accepted for %s until %s (approver %s)\n", out.ID, out.Finding, scopeOf(out), out.ExpiresAt.Format(time.RFC3339), out.Approver)
			return nil
		},
	}
	f.add(cmd)
	fs := cmd.Flags()
	fs.StringVar(&in.App, "app", "", "the app the exception covers")
	fs.BoolVar(&tenantWide, "tenant-wide", false, "cover every app of the tenant")
	fs.StringVar(&in.Finding.Vulnerability, "vulnerability", "", "advisory id or alias (with --package)")
	fs.StringVar(&in.Finding.Package, "package", "", "the package the vulnerability is in")
	fs.StringVar(&in.Finding.SecretFingerprint, "secret", "", "a secret's fingerprint, as the report shows it")
	fs.StringVar(&in.Finding.WeaknessFingerprint, "weakness", "", "a code weakness's fingerprint (tgw1:...), as the report shows it")
	fs.StringVar(&in.Finding.Rule, "rule", "", "a policy rule (licenses.denied), check id (DS-0002) or SAST rule id (js-sql-injection): every finding of it")
	fs.StringVar(&in.Reason, "reason", "", "why the risk is accepted (required)")
	fs.StringVar(&expires, "expires", "", "when it stops applying: a duration from now (720h) or a date (2027-01-31, or RFC 3339)")
	return cmd
}

// parseExpiry reads --expires: a duration from now, a date (the end of that
// day, UTC) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, usageErrf("--expires is required: exceptions always end")
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usageErrf("--expires %s: want a positive duration", s)
		}
		return now.Add(d).UTC(), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.Add(24*time.Hour - time.Second).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, usageErrf("--expires %q: want a duration (720h), a date (2027-01-31) or an RFC 3339 time", s)
}

func scopeOf(e exceptions.Exception) string {
	if e.Scope == exceptions.ScopeTenant {
		return "every app of tenant " + e.Tenant
	}
	return "app " + e.App
}

func newExceptionListCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	var app string
	cmd := &cobra.Command{
		Use:   "list [--app A]",
		Short: "List the tenant's exceptions, with whether each is in force",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			ref := "/v1/exceptions"
			if app != "" {
				ref += "?app=" + url.QueryEscape(app)
			}
			var out api.ExceptionList
			if err := c.get(cmd.Context(), ref, &out); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, out)
			}
			now := time.Now()
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tSCOPE\tFINDING\tEXPIRES\tAPPROVER\tREASON")
			for _, e := range out.Exceptions {
				state := "in force"
				switch {
				case e.Revoked != nil:
					state = "revoked"
				case !now.Before(e.ExpiresAt):
					state = "expired"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, state, cmp.Or(e.App, "(tenant)"), e.Finding, e.ExpiresAt.Format(time.RFC3339), e.Approver, e.Reason)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&app, "app", "", "only the exceptions that cover this app")
	return cmd
}

func newExceptionRevokeCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	var in api.RevokeRequest
	cmd := &cobra.Command{
		Use:   "revoke ID --reason TEXT",
		Short: "End an exception now",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(in.Reason) == "" {
				return usageErrf("--reason is required")
			}
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			var out exceptions.Exception
			if err := c.post(cmd.Context(), "/v1/exceptions/"+url.PathEscape(args[0])+"/revoke", in, &out); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, out)
			}
			fmt.Fprintf(g.stdout, "%s revoked: %s no longer accepted\n", out.ID, out.Finding)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why (required)")
	return cmd
}
