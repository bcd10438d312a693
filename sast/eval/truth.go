// Package eval measures the SAST engine on real applications no one here
// wrote (issue 13): intentionally vulnerable apps whose flaws are
// documented, for recall, and popular well-kept apps, for false positives.
// The truth list (truth.yaml) names each app, the commit it was read at and
// its documented vulnerable lines; Evaluate matches a scan's weaknesses
// against it and Result renders the table.
package eval

import (
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kinds of app in the truth list.
const (
	KindVulnerable = "vulnerable"
	KindControl    = "control"
)

// Truth is the parsed truth list.
type Truth struct {
	Apps []App `json:"apps"`
}

// App is one application of the truth list.
type App struct {
	// Name is the folder the app is exported to, and its name in the table.
	Name string `json:"name"`
	// Repo is the GitHub owner/name it comes from.
	Repo string `json:"repo"`
	// Commit is the full commit id the list was written against.
	Commit   string `json:"commit"`
	Language string `json:"language"`
	Kind     string `json:"kind"`
	// HeldOut marks a vulnerable app added after rules were tuned on the
	// others' misses; the table totals these apart, as the fairer measure.
	HeldOut bool `json:"held_out,omitempty"`
	// Flaws are the documented vulnerable lines (vulnerable apps only).
	Flaws []Flaw `json:"flaws,omitempty"`
	// Excluded says which documented flaws were left out, and why.
	Excluded []Exclusion `json:"excluded,omitempty"`
}

// Flaw is one documented vulnerable line.
type Flaw struct {
	// File is relative to the app's root, with forward slashes.
	File string `json:"file"`
	Line int    `json:"line"`
	// CWE lists the ids that name the flaw; a finding with any of them, or
	// with a CWE of the same family, matches.
	CWE    []string `json:"cwe"`
	Family string   `json:"family"`
	// Source is where the flaw is documented: a URL, or "comment in FILE:LINE".
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
	// Also lists other places where a finding shows the same flaw: the
	// sink inside a helper the documented line calls, say.
	Also []Place `json:"also,omitempty"`
}

// Place is a line of a file.
type Place struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// Exclusion is a documented flaw left out of the list.
type Exclusion struct {
	What string `json:"what"`
	Why  string `json:"why"`
}

var (
	commitPattern = regexp.MustCompile(`^[0-9a-f]{40}$`)
	repoPattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	namePattern   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	cwePattern    = regexp.MustCompile(`^CWE-[0-9]+$`)
	languages     = []string{"javascript", "typescript", "python", "go"}
)

// LoadTruth reads and validates a truth list.
func LoadTruth(file string) (Truth, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Truth{}, fmt.Errorf("read truth list %q: %w", file, err)
	}
	var t Truth
	if err := yaml.UnmarshalStrict(b, &t); err != nil {
		return Truth{}, fmt.Errorf("parse truth list %q: %w", file, err)
	}
	if err := t.Validate(); err != nil {
		return Truth{}, fmt.Errorf("truth list %q: %w", file, err)
	}
	return t, nil
}

// Validate reports every malformed entry, joined.
func (t Truth) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i, a := range t.Apps {
		where := fmt.Sprintf("app %d (%s)", i, a.Name)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
		}
		if !namePattern.MatchString(a.Name) {
			bad("name %q is not a folder name", a.Name)
		}
		if seen[a.Name] {
			bad("name %q is used twice", a.Name)
		}
		seen[a.Name] = true
		if !repoPattern.MatchString(a.Repo) {
			bad("repo %q is not owner/name", a.Repo)
		}
		if !commitPattern.MatchString(a.Commit) {
			bad("commit %q is not a full commit id", a.Commit)
		}
		if !slices.Contains(languages, a.Language) {
			bad("language %q is not one of %v", a.Language, languages)
		}
		switch a.Kind {
		case KindVulnerable:
			if len(a.Flaws) == 0 {
				bad("a vulnerable app lists no flaws")
			}
		case KindControl:
			if len(a.Flaws) > 0 {
				bad("a control app lists flaws")
			}
			if a.HeldOut {
				bad("only a vulnerable app is held out")
			}
		default:
			bad("kind %q is neither %q nor %q", a.Kind, KindVulnerable, KindControl)
		}
		lines := map[string]bool{}
		for j, f := range a.Flaws {
			at := fmt.Sprintf("flaw %d (%s:%d)", j, f.File, f.Line)
			for _, pl := range append([]Place{{f.File, f.Line}}, f.Also...) {
				if !cleanRelative(pl.File) {
					bad("%s: file %q must be a clean relative path with forward slashes", at, pl.File)
				}
				if pl.Line < 1 {
					bad("%s: line must be positive", at)
				}
			}
			key := fmt.Sprintf("%s:%d:%s", f.File, f.Line, f.Family)
			if lines[key] {
				bad("%s: listed twice", at)
			}
			lines[key] = true
			if len(f.CWE) == 0 {
				bad("%s: no CWE", at)
			}
			for _, c := range f.CWE {
				if !cwePattern.MatchString(c) {
					bad("%s: CWE %q is not like CWE-89", at, c)
				}
			}
			if !KnownFamily(f.Family) {
				bad("%s: family %q is not one of %v", at, f.Family, Families())
			}
			if strings.TrimSpace(f.Source) == "" {
				bad("%s: no source says where it is documented", at)
			}
		}
		for j, x := range a.Excluded {
			if strings.TrimSpace(x.What) == "" || strings.TrimSpace(x.Why) == "" {
				bad("exclusion %d: needs both what and why", j)
			}
		}
	}
	if len(t.Apps) == 0 {
		errs = append(errs, errors.New("no apps"))
	}
	return errors.Join(errs...)
}

func cleanRelative(p string) bool {
	return p != "" && !path.IsAbs(p) && path.Clean(p) == p && p != ".." && !strings.HasPrefix(p, "../") && !strings.Contains(p, `\`)
}

// App returns the app with the given name.
func (t Truth) App(name string) (App, bool) {
	i := slices.IndexFunc(t.Apps, func(a App) bool { return a.Name == name })
	if i < 0 {
		return App{}, false
	}
	return t.Apps[i], true
}
