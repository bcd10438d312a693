package cli

import (
	"cmp"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/api"
	"github.com/tollgate/tollgate/workflows"
)

func newAppCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "app",
		Short: "List the tenant's apps and revive idle or archived ones",
		Long: `The idle-app TTL marks an app with no scan, release or health traffic for a
policy-set period (default 30 days) idle, and archives it after a grace period
(default 7 days) with still none: its deploy target disables it and its guard
stops. list shows every app with its state (idle and archived first, else the
guard's); revive brings one back.`,
	}
	cmd.AddCommand(newAppListCmd(g), newAppReviveCmd(g))
	return cmd
}

func newAppListCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	var state string
	cmd := &cobra.Command{
		Use:   "list [--state idle|archived|watching|breached|frozen|rolling_back|unguarded]",
		Short: "List the tenant's apps with their state, since when, release and last scan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newAPIClient(f.server, f.token, time.Minute)
			if err != nil {
				return err
			}
			ref := "/v1/apps"
			if state != "" {
				ref += "?state=" + url.QueryEscape(state)
			}
			var out api.AppList
			if err := c.get(cmd.Context(), ref, &out); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, out)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "APP\tSTATE\tSINCE\tRELEASE\tKNOWN-GOOD\tLAST SCAN")
			for _, a := range out.Apps {
				since, rel, scan := "-", "-", "-"
				if a.Since != nil {
					since = a.Since.Format(time.RFC3339)
				}
				if a.Release != nil {
					rel = a.Release.ID
				}
				if a.LastScan != nil {
					scan = fmt.Sprintf("%s %s %s", a.LastScan.ScanID, a.LastScan.Verdict, a.LastScan.At.Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.App, a.State, since, rel, cmp.Or(a.KnownGood, "-"), scan)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&state, "state", "", "only the apps in this state")
	return cmd
}

func newAppReviveCmd(g *globals) *cobra.Command {
	var f exceptionFlags
	var in api.ReviveIn
	cmd := &cobra.Command{
		Use:   "revive APP --reason TEXT",
		Short: "Bring an idle or archived app back (role oncall)",
		Long: `revive clears the idle-app TTL's mark. An archived app is deployed again on its
live release through its deploy target and its guard restarted. The revive is
recorded as evidence with who asked and why, and announced as an app.revived
event. Needs the oncall role.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if in.Reason == "" {
				return usageErrf("--reason is required")
			}
			c, err := newAPIClient(f.server, f.token, 2*time.Minute)
			if err != nil {
				return err
			}
			var res workflows.ReviveResult
			if err := c.post(cmd.Context(), "/v1/apps/"+url.PathEscape(args[0])+"/revive", in, &res); err != nil {
				return err
			}
			if f.json {
				return writeJSONTo(g.stdout, res)
			}
			fmt.Fprintf(g.stdout, "app %s revived (was %s)", res.App, res.Previous)
			if res.Deploy != nil {
				fmt.Fprintf(g.stdout, "; release %s deployed again via %s", res.ReleaseID, res.Deploy.Target)
			}
			if res.GuardStarted {
				fmt.Fprint(g.stdout, "; the guard is watching it")
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&in.Reason, "reason", "", "why (required)")
	return cmd
}
