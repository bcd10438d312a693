package cli

import (
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/report"
)

func newDiffCmd(g *globals) *cobra.Command {
	var s serverFlags
	cmd := &cobra.Command{
		Use:   "diff A B --server URL [--app APP] [--json]",
		Short: "Show what changed from scan (or release) A to scan (or release) B of one app",
		Long: `diff compares two finished scans of one app (GET /v1/scans/{a}/diff/{b}):
packages added, removed and changed (versions), licence changes, vulnerabilities
introduced and fixed, secrets, misconfigurations and code weaknesses new and gone.
With --app, A and B may also be release ids of that app. Findings are matched by
identity: a vulnerability by advisory id and package name (any version), any other
finding by rule and file (line numbers ignored).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newAPIClient(s.server, s.token, time.Minute)
			if err != nil {
				return err
			}
			ref := "/v1/scans/" + url.PathEscape(args[0]) + "/diff/" + url.PathEscape(args[1])
			if s.app != "" {
				ref += "?app=" + url.QueryEscape(s.app)
			}
			var d report.Diff
			if err := c.get(cmd.Context(), ref, &d); err != nil {
				return err
			}
			if s.json {
				return writeJSONTo(g.stdout, d)
			}
			return report.WriteDiffTable(g.stdout, d)
		},
	}
	s.add(cmd)
	cmd.Flags().Lookup("app").Usage = "app whose release ids A and B may name"
	return cmd
}
