package scanners

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aquasecurity/trivy/pkg/fanal/analyzer"
	ftypes "github.com/aquasecurity/trivy/pkg/fanal/types"
	"github.com/aquasecurity/trivy/pkg/fanal/walker"
	"github.com/aquasecurity/trivy/pkg/iac/detection"
	"github.com/aquasecurity/trivy/pkg/iac/rego"
	"github.com/aquasecurity/trivy/pkg/iac/scanners/options"
	"github.com/aquasecurity/trivy/pkg/iac/scanners/terraform"
	"github.com/aquasecurity/trivy/pkg/mapfs"
	"github.com/aquasecurity/trivy/pkg/misconf"
	"github.com/aquasecurity/trivy/pkg/scan/local"
	"github.com/aquasecurity/trivy/pkg/types"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/tollgate/tollgate/report"
	"github.com/tollgate/tollgate/workers"
)

// Misconfig finds misconfigurations in Dockerfiles, Kubernetes manifests,
// Terraform and Helm charts with the checks built into trivy (the
// trivy-checks bundle embedded in the trivy module), in-process and offline:
// no check bundle is downloaded and no Terraform module is fetched. It finds
// what `trivy config --skip-check-update --misconfig-scanners
// dockerfile,helm,kubernetes,terraform` finds, failures only.
//
// The checks are compiled once, in NewMisconfig, and shared by every scan;
// the per-file-type scanners around them are cheap and made per scan, since
// trivy's Terraform scanner keeps state between scans. Scan is safe for
// concurrent use.
type Misconfig struct {
	checks *rego.Scanner
}

// NewMisconfig compiles trivy's embedded checks, as `trivy config` does when
// it cannot or may not download the checks bundle.
func NewMisconfig() (*Misconfig, error) {
	checks, err := misconf.InitRegoScanner(checkOptions(nil))
	if err != nil {
		return nil, fmt.Errorf("compile trivy's embedded misconfiguration checks: %w", err)
	}
	return &Misconfig{checks: checks}, nil
}

// checkOptions are the options `trivy config` gives its scanners by default,
// with the embedded checks and libraries (no PolicyPaths, nothing downloaded).
func checkOptions(checks *rego.Scanner) misconf.ScannerOption {
	return misconf.ScannerOption{
		Namespaces:     rego.BuiltinNamespaces(),
		RegoErrorLimit: rego.DefaultAllowedRegoErrors,
		RegoScanner:    checks,
	}
}

// iacKind is one type of configuration file: which files of a tree its
// scanner reads, and the scanner.
type iacKind struct {
	name string
	// required is trivy's config analyzer's choice of files for this type
	// (pkg/fanal/analyzer/config/*); the scanner then keeps those whose
	// content is of the type (pkg/iac/detection).
	required func(relPath string, info fs.FileInfo, open analyzer.Opener) bool
	scanner  func(opt misconf.ScannerOption) (iacScanner, error)
}

type iacScanner interface {
	Scan(ctx context.Context, fsys fs.FS) ([]ftypes.Misconfiguration, error)
}

var _ iacScanner = (*misconf.Scanner)(nil)
var _ iacScanner = (*offlineTerraform)(nil)

var iacKinds = []iacKind{
	{name: "dockerfile", required: isDockerfile, scanner: trivyScanner(detection.FileTypeDockerfile)},
	{name: "helm", required: isHelmFile, scanner: trivyScanner(detection.FileTypeHelm)},
	{name: "kubernetes", required: isKubernetesCandidate, scanner: trivyScanner(detection.FileTypeKubernetes)},
	{name: "terraform", required: isTerraformFile, scanner: newOfflineTerraform},
}

func trivyScanner(t detection.FileType) func(misconf.ScannerOption) (iacScanner, error) {
	return func(opt misconf.ScannerOption) (iacScanner, error) { return misconf.NewScanner(t, opt) }
}

// Scan returns the failed checks of the configuration files in dir, sorted
// by file, line and check id.
func (m *Misconfig) Scan(ctx context.Context, dir string) ([]report.Misconfiguration, error) {
	// What trivy's filesystem artifact does: one walk (skipping .git), and for
	// each type a virtual filesystem of the files it reads, linked to the real
	// ones. tollgate walks itself, rather than through the artifact and its
	// config analyzers, to give Terraform a scanner that fetches nothing.
	trees := make([]*mapfs.FS, len(iacKinds))
	err := walker.NewFS().Walk(dir, walker.Option{}, func(rel string, info os.FileInfo, open analyzer.Opener) error {
		for i, k := range iacKinds {
			if !k.required(rel, info, open) {
				continue
			}
			if trees[i] == nil {
				trees[i] = mapfs.New(mapfs.WithUnderlyingRoot(dir))
			}
			if d := path.Dir(rel); d != "." {
				if err := trees[i].MkdirAll(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
					return err
				}
			}
			if err := trees[i].WriteFile(rel, filepath.Join(dir, rel)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list configuration files in %q: %w", dir, err)
	}
	opt := checkOptions(m.checks)
	var found []ftypes.Misconfiguration
	for i, k := range iacKinds {
		if trees[i] == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s, err := k.scanner(opt)
		if err != nil {
			return nil, fmt.Errorf("new trivy %s scanner: %w", k.name, err)
		}
		mc, err := s.Scan(ctx, trees[i])
		if err != nil {
			return nil, fmt.Errorf("check %s files in %q with trivy: %w", k.name, dir, err)
		}
		found = append(found, mc...)
	}

	// trivy's own conversion gives the severities, messages and links the CLI
	// reports; passed checks are dropped, as the CLI drops them.
	out := []report.Misconfiguration{}
	for _, res := range (local.Service{}).MisconfsToResults(found) {
		for _, dm := range res.Misconfigurations {
			if dm.Status != types.MisconfStatusFailure {
				continue
			}
			out = append(out, report.Misconfiguration{
				ID:         dm.ID,
				Title:      dm.Title,
				Severity:   cmp.Or(dm.Severity, "UNKNOWN"),
				Type:       string(res.Type),
				File:       res.Target,
				StartLine:  dm.CauseMetadata.StartLine,
				EndLine:    dm.CauseMetadata.EndLine,
				Resource:   dm.CauseMetadata.Resource,
				Message:    dm.Message,
				Resolution: dm.Resolution,
				PrimaryURL: dm.PrimaryURL,
				References: orEmpty(dm.References),
			})
		}
	}
	slices.SortFunc(out, func(a, b report.Misconfiguration) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.StartLine, b.StartLine), strings.Compare(a.ID, b.ID),
			cmp.Compare(a.EndLine, b.EndLine), strings.Compare(a.Resource, b.Resource), strings.Compare(a.Message, b.Message))
	})
	return out, nil
}

// isDockerfile is trivy's dockerfile analyzer's choice: Dockerfile,
// Containerfile, Dockerfile.*, *.Dockerfile, any case.
func isDockerfile(rel string, _ fs.FileInfo, _ analyzer.Opener) bool {
	base := path.Base(rel)
	ext := path.Ext(base)
	for _, name := range []string{"Dockerfile", "Containerfile"} {
		if strings.EqualFold(base, name+ext) || strings.EqualFold(ext, "."+name) {
			return true
		}
	}
	return false
}

// isHelmFile is trivy's helm analyzer's choice: chart files, templates and
// chart archives up to 200 MB.
func isHelmFile(rel string, info fs.FileInfo, _ analyzer.Opener) bool {
	if info.Size() > 209_715_200 { // trivy's maxTarSize
		return false
	}
	lower := strings.ToLower(rel)
	for _, ext := range []string{".tpl", ".json", ".yml", ".yaml", ".tar", ".tgz", ".tar.gz"} {
		if strings.HasSuffix(lower, ext) {
			return true
		}
	}
	base := path.Base(rel)
	return strings.EqualFold(base, "Chart.yaml") || strings.EqualFold(base, ".helmignore")
}

// isKubernetesCandidate is the choice of trivy's generic config analyzers,
// the kubernetes one among them (.json, .yaml, .yml, .tfvars), less the JSON
// files trivy's detection cannot take for a manifest: it decodes a JSON
// file and wants the top-level members apiVersion, kind and metadata, so a
// file without those three names in its bytes (nor a \u escape, which
// could spell one) is never one. That keeps lockfiles (package-lock.json:
// megabytes, validated twice and decoded into a map by the detection) out
// of the Kubernetes scanner, with the same findings.
func isKubernetesCandidate(rel string, _ fs.FileInfo, open analyzer.Opener) bool {
	switch path.Ext(rel) {
	case ".yaml", ".yml", ".tfvars":
		return true
	case ".json":
		return open == nil || jsonMayBeKubernetes(open)
	}
	return false
}

// jsonMayBeKubernetes reads a JSON file and says whether it holds the names
// of a Kubernetes manifest's members (or an escape that could spell them).
// A file it cannot read is left to trivy.
func jsonMayBeKubernetes(open analyzer.Opener) bool {
	f, err := open()
	if err != nil {
		return true
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return true
	}
	if bytes.Contains(data, []byte(`\u`)) {
		return true
	}
	for _, name := range []string{`"apiVersion"`, `"kind"`, `"metadata"`} {
		if !bytes.Contains(data, []byte(name)) {
			return false
		}
	}
	return true
}

func isTerraformFile(rel string, _ fs.FileInfo, _ analyzer.Opener) bool {
	return detection.IsTerraformFile(rel)
}

// offlineTerraform is trivy's Terraform scanner as misconf.NewScanner makes
// it, but with remote modules off: trivy would fetch a module block's
// registry, git, S3 or HTTP source, which a gate must not do for code it is
// checking. Such modules are left unresolved; local ones are read.
type offlineTerraform struct {
	scanner *terraform.Scanner
}

func newOfflineTerraform(opt misconf.ScannerOption) (iacScanner, error) {
	return &offlineTerraform{scanner: terraform.New(
		// What misconf.NewScanner passes for Terraform, with the defaults of `trivy config`.
		rego.WithRegoScanner(opt.RegoScanner),
		options.WithScanRawConfig(false),
		terraform.ScannerWithAllDirectories(true),
		terraform.ScannerWithSkipDownloaded(false),
		// tollgate's own: nothing from the network, nothing from the host's module cache.
		terraform.ScannerWithDownloadsAllowed(false),
		terraform.ScannerWithSkipCachedModules(true),
	)}, nil
}

// Scan is misconf.Scanner.Scan for Terraform: it keeps the files detected as
// Terraform and scans the tree from its root.
func (t *offlineTerraform) Scan(ctx context.Context, fsys fs.FS) ([]ftypes.Misconfiguration, error) {
	mfs, ok := fsys.(*mapfs.FS)
	if !ok {
		return nil, fmt.Errorf("terraform scan needs a mapfs, got %T", fsys)
	}
	relevant := false
	tree, err := mfs.FilterFunc(func(p string, _ fs.DirEntry) (bool, error) {
		f, err := mfs.Open(p)
		if err != nil {
			return false, err
		}
		defer f.Close()
		rs, ok := f.(io.ReadSeeker)
		if !ok {
			return false, fmt.Errorf("open %s: not seekable", p)
		}
		if !detection.IsType(p, rs, detection.FileTypeTerraform) {
			return true, nil
		}
		relevant = true
		return false, nil
	})
	if err != nil {
		return nil, fmt.Errorf("filter terraform files: %w", err)
	}
	if !relevant {
		return nil, nil
	}
	if at, err := terraformBomb(tree); err != nil {
		return nil, err
	} else if at != "" {
		return nil, workers.BadInput(fmt.Errorf("terraform at %s expands a block more than %d times: not evaluated (hostile or runaway count)", at, maxTerraformExpansion))
	}
	results, err := t.scanner.ScanFS(ctx, tree, ".")
	if err != nil {
		return nil, fmt.Errorf("scan terraform: %w", err)
	}
	return misconf.ResultsToMisconf(ftypes.Terraform, t.scanner.Name(), results), nil
}

// maxTerraformExpansion bounds what one count may expand a block to. trivy
// expands count (and for_each) while it evaluates a module, without a limit
// and without heeding cancellation: a four-line main.tf with a count of
// millions holds a worker for as long as the task may run.
const maxTerraformExpansion = 1000

// terraformBomb says which count in the tree would expand past
// maxTerraformExpansion, judged statically: literal counts, and counts from
// variables whose defaults are literals (the values trivy would use). It
// cannot see every expression (functions, locals); those go to trivy as they
// are.
func terraformBomb(fsys fs.FS) (string, error) {
	type countAt struct {
		file string
		expr hcl.Expression
	}
	vars := map[string]cty.Value{}
	var counts []countAt
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tf") {
			return err
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, diags := hclsyntax.ParseConfig(src, p, hcl.InitialPos)
		if diags.HasErrors() {
			return nil // trivy reports what it cannot parse
		}
		body, ok := f.Body.(*hclsyntax.Body)
		if !ok {
			return nil
		}
		for _, b := range body.Blocks {
			if b.Type == "variable" && len(b.Labels) == 1 {
				if a, ok := b.Body.Attributes["default"]; ok {
					if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
						vars[b.Labels[0]] = v
					}
				}
			}
			for _, name := range []string{"count", "for_each"} {
				if a, ok := b.Body.Attributes[name]; ok {
					counts = append(counts, countAt{file: p, expr: a.Expr})
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read terraform files: %w", err)
	}
	ectx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}}
	for _, c := range counts {
		v, diags := c.expr.Value(ectx)
		if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
			continue
		}
		n := 0
		switch {
		case v.Type() == cty.Number:
			bf := v.AsBigFloat()
			if !bf.IsInt() || bf.Cmp(big.NewFloat(maxTerraformExpansion)) > 0 {
				n = maxTerraformExpansion + 1
			}
		case v.CanIterateElements():
			n = v.LengthInt()
		}
		if n > maxTerraformExpansion {
			r := c.expr.Range()
			return fmt.Sprintf("%s:%d", c.file, r.Start.Line), nil
		}
	}
	return "", nil
}
