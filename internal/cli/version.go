package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/tollgate/tollgate/policies"
	"github.com/tollgate/tollgate/sast"
	"github.com/tollgate/tollgate/vulndb"
)

// Commit is the source revision, set at build time with -ldflags
// "-X .../internal/cli.Commit=..."; without it, the vcs.revision the go
// command stamped (none under -buildvcs=false).
var Commit = ""

// scannerModules are the modules whose versions decide what a scan finds,
// named as `tollgate version` prints them.
var scannerModules = []struct{ name, module string }{
	{"gitleaks", "github.com/zricethezav/gitleaks/v8"},
	{"opa", "github.com/open-policy-agent/opa"},
	{"syft", "github.com/anchore/syft"},
	{"trivy", "github.com/aquasecurity/trivy"},
}

// versionReport is what this binary is and carries: `tollgate version`.
type versionReport struct {
	Version  string `json:"version"`
	Commit   string `json:"commit,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	// PolicyBundle and SASTRules are the embedded policy bundle and SAST
	// rules, each named by the dirhash of its files (h1:, as in go.sum).
	PolicyBundle treeDigest `json:"policy_bundle"`
	SASTRules    treeDigest `json:"sast_rules"`
	// VulnDBSchema is the trivy-db schema of the vulnerability DBs this
	// build reads.
	VulnDBSchema int               `json:"vulndb_schema"`
	Scanners     map[string]string `json:"scanners"`
}

// treeDigest names a tree of embedded files.
type treeDigest struct {
	Digest string `json:"digest"`
	Files  int    `json:"files"`
}

// newVersionReport reads the build info and digests the embedded trees.
func newVersionReport() (versionReport, error) {
	r := versionReport{
		Version:      Version,
		Commit:       Commit,
		Go:           runtime.Version(),
		Platform:     runtime.GOOS + "/" + runtime.GOARCH,
		VulnDBSchema: vulndb.SchemaVersion,
		Scanners:     map[string]string{},
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		// `go install .../cmd/tollgate@v1.2.3` stamps the module version.
		if r.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			r.Version = bi.Main.Version
		}
		if r.Commit == "" {
			r.Commit = vcsRevision(bi.Settings)
		}
		for _, dep := range bi.Deps {
			for _, s := range scannerModules {
				if dep.Path == s.module {
					r.Scanners[s.name] = dep.Version
				}
			}
		}
	}
	var err error
	if r.PolicyBundle, err = digestTree(policies.EmbeddedFS()); err != nil {
		return versionReport{}, fmt.Errorf("digest the embedded policy bundle: %w", err)
	}
	if r.SASTRules, err = digestTree(sast.EmbeddedFS()); err != nil {
		return versionReport{}, fmt.Errorf("digest the embedded sast rules: %w", err)
	}
	return r, nil
}

func vcsRevision(settings []debug.BuildSetting) string {
	var rev string
	var modified bool
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev != "" && modified {
		rev += "-dirty"
	}
	return rev
}

// digestTree is the dirhash (h1:) of every file in fsys: the sha256 of the
// sorted "sha256  path" lines, the digest go.sum records for a module.
func digestTree(fsys fs.FS) (treeDigest, error) {
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		return treeDigest{}, err
	}
	h, err := dirhash.Hash1(files, func(name string) (io.ReadCloser, error) { return fsys.Open(name) })
	if err != nil {
		return treeDigest{}, err
	}
	return treeDigest{Digest: h, Files: len(files)}, nil
}

// text is the report as `tollgate --version` prints it.
func (r versionReport) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tollgate %s\n", r.Version)
	row := func(k, v string) { fmt.Fprintf(&b, "  %-14s %s\n", k, v) }
	row("commit", cmpOr(r.Commit, "unknown"))
	row("go", r.Go+" "+r.Platform)
	row("policy bundle", fmt.Sprintf("%s (embedded, %d files)", r.PolicyBundle.Digest, r.PolicyBundle.Files))
	row("sast rules", fmt.Sprintf("%s (embedded, %d files)", r.SASTRules.Digest, r.SASTRules.Files))
	row("vulndb schema", fmt.Sprintf("%d (trivy-db)", r.VulnDBSchema))
	var scanners []string
	for _, s := range scannerModules {
		if v, ok := r.Scanners[s.name]; ok {
			scanners = append(scanners, s.name+" "+v)
		}
	}
	row("scanners", cmpOr(strings.Join(scanners, ", "), "unknown"))
	return b.String()
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func init() {
	// Read only when --version is asked for: digesting the embedded trees
	// is not every command's cost.
	cobra.AddTemplateFunc("tollgateVersionReport", func() string {
		r, err := newVersionReport()
		if err != nil {
			return fmt.Sprintf("tollgate %s\n  error: %s\n", Version, err)
		}
		return r.text()
	})
}

// setVersion makes `tollgate --version` print the version report.
func setVersion(root *cobra.Command) {
	root.SetVersionTemplate("{{tollgateVersionReport}}")
}

func newVersionCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, and the policy bundle, SAST rules and vulnerability DB schema built in",
		Long: `Version prints what this binary is and carries: its version and commit, the Go
version and platform it was built for, the digests (dirhash h1:, as in go.sum)
of the embedded policy bundle and SAST rules, the trivy-db schema of the
vulnerability DBs it reads, and the versions of the scanners it links.
tollgate --version prints the same text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := newVersionReport()
			if err != nil {
				return err
			}
			switch format {
			case "text":
				_, err = io.WriteString(g.stdout, r.text())
			case "json":
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				err = enc.Encode(r)
			default:
				return usageErrf("--format %q: want text or json", format)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "output format: text or json")
	return cmd
}
