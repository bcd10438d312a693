package eval

import (
	"slices"
	"sort"
	"strings"
)

// familyCWEs maps each family of weakness to the CWE ids that belong to it.
// A finding belongs to the families of its rule's CWEs; a truth line
// matches a finding of the same family even when their CWE ids differ
// (CWE-327 for an MD5 password hash documented as CWE-328, say).
var familyCWEs = map[string][]string{
	"sql-injection":        {"CWE-89", "CWE-564"},
	"nosql-injection":      {"CWE-943"},
	"command-injection":    {"CWE-78", "CWE-77", "CWE-88"},
	"code-injection":       {"CWE-94", "CWE-95", "CWE-96", "CWE-1336"},
	"deserialization":      {"CWE-502"},
	"path-traversal":       {"CWE-22", "CWE-23", "CWE-36", "CWE-73"},
	"ssrf":                 {"CWE-918"},
	"open-redirect":        {"CWE-601"},
	"xss":                  {"CWE-79", "CWE-80"},
	"weak-hash":            {"CWE-327", "CWE-328", "CWE-916", "CWE-759", "CWE-760"},
	"insecure-random":      {"CWE-338", "CWE-330", "CWE-331"},
	"tls-off":              {"CWE-295", "CWE-297"},
	"jwt":                  {"CWE-347"},
	"cors":                 {"CWE-942", "CWE-346"},
	"cookie":               {"CWE-614", "CWE-1004", "CWE-1275"},
	"debug":                {"CWE-489", "CWE-215"},
	"llm-prompt-injection": {"CWE-1427"},
	"llm-output":           {"CWE-1426"},
	"llm-secrets":          {},
	"llm-excessive-agency": {},
	// Documented in the apps and visible in code, but not among issue 13's
	// families.
	"xxe":                 {"CWE-611", "CWE-776"},
	"hardcoded-secret":    {"CWE-798", "CWE-259", "CWE-321"},
	"cleartext-transport": {"CWE-319"},
	"log-injection":       {"CWE-117"},
	"prototype-pollution": {"CWE-1321"},
	"error-disclosure":    {"CWE-209"},
	"xpath-injection":     {"CWE-643"},
	"header-injection":    {"CWE-113", "CWE-93"},
}

// outOfScope lists the families issue 13 does not ask the engine for.
var outOfScope = []string{"xxe", "hardcoded-secret", "cleartext-transport", "log-injection", "prototype-pollution", "error-disclosure", "xpath-injection", "header-injection"}

// Families returns every known family, sorted.
func Families() []string {
	fs := make([]string, 0, len(familyCWEs))
	for f := range familyCWEs {
		fs = append(fs, f)
	}
	sort.Strings(fs)
	return fs
}

// KnownFamily reports whether f is a family of the table.
func KnownFamily(f string) bool {
	_, ok := familyCWEs[f]
	return ok
}

// InScope reports whether issue 13 asks the engine to find family f.
func InScope(f string) bool {
	return KnownFamily(f) && !slices.Contains(outOfScope, f)
}

// FamiliesOf returns the families of a list of CWE ids, sorted and
// without repeats; an id of no family contributes nothing.
func FamiliesOf(cwes []string) []string {
	var out []string
	for f, ids := range familyCWEs {
		for _, c := range cwes {
			if slices.Contains(ids, strings.ToUpper(strings.TrimSpace(c))) {
				out = append(out, f)
				break
			}
		}
	}
	sort.Strings(out)
	return out
}
