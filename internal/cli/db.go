package cli

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	xos "github.com/aquasecurity/trivy/pkg/x/os"
	"github.com/spf13/cobra"

	"github.com/tollgate/tollgate/vulndb"
)

func newDBCmd(g *globals) *cobra.Command {
	var dbDir string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the vulnerability DB (Trivy format)",
	}
	cmd.PersistentFlags().StringVar(&dbDir, "db", vulndb.DefaultDir(), "vulnerability DB directory ($TOLLGATE_DB_DIR)")

	var osvDirs []string
	importCmd := &cobra.Command{
		Use:   "import --osv DIR... [--db DIR]",
		Short: "Build the DB from OSV advisories (npm, PyPI, Go, Maven), for air-gapped sites and tests",
		// --osv a b c: the usage line promises several directories after one
		// flag, so the arguments that follow it are directories too.
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(osvDirs) == 0 {
				if len(args) > 0 {
					return usageErrf("db import: %q: directories follow --osv (--osv DIR...)", args[0])
				}
				return usageErrf("db import: give at least one --osv DIR")
			}
			dirs := append(slices.Clone(osvDirs), args...)
			for _, d := range dirs {
				if st, err := os.Stat(d); err != nil || !st.IsDir() {
					return usageErrf("db import: --osv %q is not a directory", d)
				}
			}
			stats, err := vulndb.ImportOSV(cmd.Context(), g.logger, dbDir, dirs...)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "built vulnerability DB in %s from %d files: %d vulnerabilities, advisories %v; skipped %d withdrawn, %d invalid, other ecosystems %v\n",
				dbDir, stats.Files, stats.Vulnerabilities, stats.Advisories, stats.Withdrawn, stats.Invalid, stats.SkippedEcosystems)
			return nil
		},
	}
	importCmd.Flags().StringArrayVar(&osvDirs, "osv", nil, "directory of OSV JSON records, searched recursively (repeatable, or --osv DIR DIR...)")

	var repo string
	var insecure bool
	updateCmd := &cobra.Command{
		Use:   "update [--db DIR] [--repository REPO]",
		Short: "Download the official Trivy DB (or a mirror's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts []vulndb.UpdateOption
			if insecure {
				opts = append(opts, vulndb.WithInsecure())
			}
			// trivy's download leaves a per-process temporary directory behind.
			defer xos.Cleanup()
			if err := vulndb.Update(cmd.Context(), g.logger, dbDir, repo, opts...); err != nil {
				return err
			}
			return printInfo(g, dbDir)
		},
	}
	updateCmd.Flags().StringVar(&repo, "repository", envOr("TOLLGATE_DB_REPOSITORY", vulndb.DefaultRepository), "OCI repository of the DB ($TOLLGATE_DB_REPOSITORY)")
	updateCmd.Flags().BoolVar(&insecure, "insecure", false, "allow a plain-HTTP or self-signed mirror")

	infoCmd := &cobra.Command{
		Use:   "info [--db DIR]",
		Short: "Show which DB is in use, its sources and its age",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return printInfo(g, dbDir) },
	}
	cmd.AddCommand(importCmd, updateCmd, infoCmd)
	return cmd
}

func printInfo(g *globals, dbDir string) error {
	info, err := vulndb.ReadInfo(dbDir)
	if errors.Is(err, vulndb.ErrNoDB) {
		return usageErrf("%v: build one with `tollgate db import --osv DIR` or fetch one with `tollgate db update`", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "DB:          %s\n", dbDir)
	fmt.Fprintf(g.stdout, "Schema:      %d\n", info.SchemaVersion)
	fmt.Fprintf(g.stdout, "Updated at:  %s (%s ago)\n", info.UpdatedAt.Format(time.RFC3339), info.Age.Round(time.Second))
	if !info.DownloadedAt.IsZero() {
		fmt.Fprintf(g.stdout, "Downloaded:  %s\n", info.DownloadedAt.Format(time.RFC3339))
	}
	fmt.Fprintf(g.stdout, "Next update: %s\n", info.NextUpdate.Format(time.RFC3339))
	fmt.Fprintf(g.stdout, "Sources (%d):\n", len(info.DataSources))
	for _, s := range info.DataSources {
		fmt.Fprintf(g.stdout, "  %-40s %s %s\n", s.Bucket, s.Name, s.URL)
	}
	return nil
}
