package report

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// GitLabSchemaVersion is the version of GitLab's security report schemas
// (gitlab-org/security-products/security-report-schemas) the GitLab
// reports conform to; report/testdata/gitlab holds its copies.
const GitLabSchemaVersion = "15.2.1"

const gitlabSchemaBase = "https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/v" + GitLabSchemaVersion + "/dist/"

// GitLabSAST renders the report's code findings as a GitLab SAST report
// (artifacts:reports:sast): code weaknesses, IaC misconfigurations and
// secrets (their location only, never the value), each with a stable id
// derived from what it is and where, so GitLab tracks it across pipelines.
func GitLabSAST(r Report, toolVersion string) ([]byte, error) {
	out := gitlabReport(r, toolVersion, "sast")
	for _, w := range r.Weaknesses {
		ids := []gitlabIdentifier{{Type: "tollgate_rule", Name: w.Rule, Value: w.Rule}}
		for _, cwe := range w.CWE {
			if n, ok := strings.CutPrefix(cwe, "CWE-"); ok {
				if _, err := strconv.Atoi(n); err == nil {
					ids = append(ids, gitlabIdentifier{Type: "cwe", Name: cwe, Value: n, URL: "https://cwe.mitre.org/data/definitions/" + n + ".html"})
				}
			}
		}
		desc := w.Message
		if len(w.CWE) > 0 {
			desc += " (" + strings.Join(w.CWE, ", ") + ")"
		}
		out.Vulnerabilities = append(out.Vulnerabilities, gitlabVuln{
			ID:          gitlabID("weakness", w.Rule, w.File, w.Fingerprint),
			Name:        clip(w.Message, 255),
			Description: clip(desc, 1<<20),
			Severity:    gitlabSeverity(w.Severity),
			Solution:    clip(w.Fix, 7000),
			Identifiers: ids,
			Links:       gitlabLinks(w.References),
			Location:    gitlabLocation{File: w.File, StartLine: max(w.Line, 1), EndLine: max(w.EndLine, w.Line, 1)},
		})
	}
	for _, m := range r.Misconfigurations {
		var refs []string
		if m.PrimaryURL != "" {
			refs = append(refs, m.PrimaryURL)
		}
		out.Vulnerabilities = append(out.Vulnerabilities, gitlabVuln{
			ID:          gitlabID("misconfiguration", m.ID, m.File, strconv.Itoa(m.StartLine), m.Resource),
			Name:        clip(cmp.Or(m.Title, m.ID), 255),
			Description: clip(m.Message, 1<<20),
			Severity:    gitlabSeverity(m.Severity),
			Solution:    clip(m.Resolution, 7000),
			Identifiers: []gitlabIdentifier{{Type: "trivy_check", Name: m.ID, Value: m.ID, URL: httpURL(m.PrimaryURL)}},
			Links:       gitlabLinks(refs),
			Location:    gitlabLocation{File: m.File, StartLine: max(m.StartLine, 1), EndLine: max(m.EndLine, m.StartLine, 1)},
		})
	}
	for _, s := range r.Secrets {
		out.Vulnerabilities = append(out.Vulnerabilities, gitlabVuln{
			ID:          gitlabID("secret", s.Rule, s.File, s.Fingerprint),
			Name:        clip("Secret found by gitleaks rule "+s.Rule, 255),
			Description: fmt.Sprintf("Secret (%s) found in %s:%d. The value is redacted.", s.Rule, s.File, s.Line),
			Severity:    "Critical",
			Solution:    "Rotate the secret and remove it from the code.",
			Identifiers: []gitlabIdentifier{{Type: "gitleaks_rule_id", Name: s.Rule, Value: s.Rule}},
			Location:    gitlabLocation{File: s.File, StartLine: max(s.Line, 1), EndLine: max(s.Line, 1)},
		})
	}
	return marshalGitLab(out)
}

// GitLabDependencyScanning renders the report's vulnerabilities as a GitLab
// dependency scanning report (artifacts:reports:dependency_scanning): one
// per advisory and package, located at the manifest or lock file that
// declares the package.
func GitLabDependencyScanning(r Report, toolVersion string) ([]byte, error) {
	out := gitlabReport(r, toolVersion, "dependency_scanning")
	for _, v := range r.Vulnerabilities {
		ids := []gitlabIdentifier{advisoryIdentifier(v.ID)}
		for _, a := range v.Aliases {
			ids = append(ids, advisoryIdentifier(a))
		}
		var solution string
		if len(v.FixedVersions) > 0 {
			solution = fmt.Sprintf("Upgrade %s to %s.", v.Package, strings.Join(v.FixedVersions, " or "))
		}
		out.Vulnerabilities = append(out.Vulnerabilities, gitlabVuln{
			ID:          gitlabID("vulnerability", v.ID, v.PURL, v.File),
			Name:        clip(cmp.Or(v.Title, v.ID), 255),
			Description: clip(fmt.Sprintf("%s %s@%s is affected by %s (%s).", v.Ecosystem, v.Package, v.Version, v.ID, v.Severity), 1<<20),
			Severity:    gitlabSeverity(v.Severity),
			Solution:    clip(solution, 7000),
			Identifiers: ids,
			Links:       gitlabLinks([]string{ids[0].URL}),
			Location: gitlabLocation{File: cmp.Or(v.File, "."), Dependency: &gitlabDependency{
				Package: gitlabPackage{Name: v.Package}, Version: v.Version}},
		})
	}
	return marshalGitLab(out)
}

type gitlabDoc struct {
	Schema          string       `json:"schema"`
	Version         string       `json:"version"`
	Scan            gitlabScan   `json:"scan"`
	Vulnerabilities []gitlabVuln `json:"vulnerabilities"`
}

type gitlabScan struct {
	Analyzer  gitlabTool `json:"analyzer"`
	Scanner   gitlabTool `json:"scanner"`
	Type      string     `json:"type"`
	StartTime string     `json:"start_time"`
	EndTime   string     `json:"end_time"`
	Status    string     `json:"status"`
}

type gitlabTool struct {
	ID      string       `json:"id"`
	Name    string       `json:"name"`
	URL     string       `json:"url"`
	Version string       `json:"version"`
	Vendor  gitlabVendor `json:"vendor"`
}

type gitlabVendor struct {
	Name string `json:"name"`
}

type gitlabVuln struct {
	ID          string             `json:"id"`
	Name        string             `json:"name,omitempty"`
	Description string             `json:"description,omitempty"`
	Severity    string             `json:"severity"`
	Solution    string             `json:"solution,omitempty"`
	Identifiers []gitlabIdentifier `json:"identifiers"`
	Links       []gitlabLink       `json:"links,omitempty"`
	Location    gitlabLocation     `json:"location"`
}

type gitlabIdentifier struct {
	Type  string `json:"type"`
	Name  string `json:"name"`
	Value string `json:"value"`
	URL   string `json:"url,omitempty"`
}

type gitlabLink struct {
	URL string `json:"url"`
}

type gitlabLocation struct {
	File       string            `json:"file"`
	StartLine  int               `json:"start_line,omitempty"`
	EndLine    int               `json:"end_line,omitempty"`
	Dependency *gitlabDependency `json:"dependency,omitempty"`
}

type gitlabDependency struct {
	Package gitlabPackage `json:"package"`
	Version string        `json:"version"`
}

type gitlabPackage struct {
	Name string `json:"name"`
}

func gitlabReport(r Report, toolVersion, scanType string) gitlabDoc {
	tool := gitlabTool{ID: "tollgate", Name: "tollgate", URL: "https://github.com/tollgate/tollgate",
		Version: cmp.Or(toolVersion, "dev"), Vendor: gitlabVendor{Name: "tollgate"}}
	const stamp = "2006-01-02T15:04:05"
	schema := map[string]string{"sast": "sast-report-format.json", "dependency_scanning": "dependency-scanning-report-format.json"}[scanType]
	return gitlabDoc{
		Schema: gitlabSchemaBase + schema, Version: GitLabSchemaVersion,
		Scan: gitlabScan{Analyzer: tool, Scanner: tool, Type: scanType, Status: "success",
			StartTime: r.StartedAt.UTC().Format(stamp), EndTime: r.FinishedAt.UTC().Format(stamp)},
		Vulnerabilities: []gitlabVuln{},
	}
}

func marshalGitLab(doc gitlabDoc) ([]byte, error) {
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode gitlab %s report: %w", doc.Scan.Type, err)
	}
	return append(b, '\n'), nil
}

// gitlabID is a UUID (the schema recommends one) named by the finding's
// parts, so the same finding keeps its id from pipeline to pipeline.
func gitlabID(parts ...string) string {
	return uuid.NewSHA1(gitlabNamespace, []byte(strings.Join(parts, "\x00"))).String()
}

var gitlabNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://github.com/tollgate/tollgate/gitlab-report"))

// advisoryIdentifier types an advisory id by its prefix and links it to
// its database.
func advisoryIdentifier(id string) gitlabIdentifier {
	ident := gitlabIdentifier{Type: "advisory", Name: id, Value: id}
	switch {
	case strings.HasPrefix(id, "CVE-"):
		ident.Type, ident.URL = "cve", "https://nvd.nist.gov/vuln/detail/"+id
	case strings.HasPrefix(id, "GHSA-"):
		ident.Type, ident.URL = "ghsa", "https://github.com/advisories/"+id
	case strings.HasPrefix(id, "GO-"):
		ident.Type, ident.URL = "go", "https://pkg.go.dev/vuln/"+id
	case strings.HasPrefix(id, "PYSEC-"):
		ident.Type, ident.URL = "pysec", "https://osv.dev/vulnerability/"+id
	}
	return ident
}

// gitlabLinks keeps the http(s) links: the schema refuses any other.
func gitlabLinks(urls []string) []gitlabLink {
	var out []gitlabLink
	for _, u := range urls {
		if u = httpURL(u); u != "" {
			out = append(out, gitlabLink{URL: u})
		}
	}
	return out
}

func httpURL(u string) string {
	if (strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")) && !strings.ContainsAny(u, " \t\r\n") {
		return u
	}
	return ""
}

func gitlabSeverity(s string) string {
	switch strings.ToUpper(s) {
	case "CRITICAL":
		return "Critical"
	case "HIGH":
		return "High"
	case "MEDIUM":
		return "Medium"
	case "LOW":
		return "Low"
	case "INFO":
		return "Info"
	default:
		return "Unknown"
	}
}

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	// Drop a rune the cut split (at most its first three bytes).
	for i := 0; i < utf8.UTFMax-1 && s != ""; i++ {
		if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size > 1 {
			break
		}
		s = s[:len(s)-1]
	}
	return s
}
