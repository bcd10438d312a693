package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// DiffSchema is the value of Diff.Schema.
const DiffSchema = "tollgate/diff/v1"

// Diff is what changed from one scan of an app to another: packages added,
// removed and changed (versions), licence changes of the packages in both,
// vulnerabilities introduced and fixed, and the other findings new and
// gone. Findings are matched by the identity Baseline describes, so a
// finding that moved lines, or a vulnerability whose package changed version
// and kept the advisory, is in neither list.
type Diff struct {
	Schema            string                    `json:"schema"`
	App               string                    `json:"app"`
	From              DiffSide                  `json:"from"`
	To                DiffSide                  `json:"to"`
	Packages          PackageChanges            `json:"packages"`
	Licenses          []LicenseChange           `json:"licenses"`
	Vulnerabilities   Changes[Vulnerability]    `json:"vulnerabilities"`
	Secrets           Changes[Secret]           `json:"secrets"`
	Misconfigurations Changes[Misconfiguration] `json:"misconfigurations"`
	Weaknesses        Changes[Weakness]         `json:"weaknesses"`
}

// DiffSide is one of the two scans compared.
type DiffSide struct {
	ScanID string `json:"scan_id"`
	// ReleaseID is set when the scan was named by a release.
	ReleaseID string  `json:"release_id,omitempty"`
	Verdict   Verdict `json:"verdict"`
}

// PackageChanges are the package changes of a diff. A package is its name
// in its ecosystem; one whose set of versions differs is changed.
type PackageChanges struct {
	Added   []Package       `json:"added"`
	Removed []Package       `json:"removed"`
	Changed []PackageChange `json:"changed"`
}

// PackageChange is a package in both scans with other versions.
type PackageChange struct {
	Name      string   `json:"name"`
	Ecosystem string   `json:"ecosystem"`
	From      []string `json:"from"`
	To        []string `json:"to"`
}

// LicenseChange is a package in both scans whose licences differ.
type LicenseChange struct {
	Name      string   `json:"name"`
	Ecosystem string   `json:"ecosystem"`
	From      []string `json:"from"`
	To        []string `json:"to"`
}

// Changes are the findings of one kind the second scan has and the first
// had not (New; for vulnerabilities "introduced"), and those the first had
// and the second has not (Gone; "fixed").
type Changes[T any] struct {
	New  []T `json:"new"`
	Gone []T `json:"gone"`
}

// Empty says whether a diff has no change at all.
func (d Diff) Empty() bool {
	return len(d.Packages.Added)+len(d.Packages.Removed)+len(d.Packages.Changed)+len(d.Licenses)+
		len(d.Vulnerabilities.New)+len(d.Vulnerabilities.Gone)+len(d.Secrets.New)+len(d.Secrets.Gone)+
		len(d.Misconfigurations.New)+len(d.Misconfigurations.Gone)+len(d.Weaknesses.New)+len(d.Weaknesses.Gone) == 0
}

// Compare is the diff from report a to report b (of one app).
func Compare(a, b Report) Diff {
	d := Diff{
		Schema: DiffSchema, App: b.App,
		From: DiffSide{ScanID: a.ScanID, Verdict: a.Verdict}, To: DiffSide{ScanID: b.ScanID, Verdict: b.Verdict},
		Licenses:          []LicenseChange{},
		Vulnerabilities:   changes(a.Vulnerabilities, b.Vulnerabilities, Vulnerability.identity, func(v *Vulnerability) { v.Baseline = "" }),
		Secrets:           changes(a.Secrets, b.Secrets, Secret.identity, func(s *Secret) { s.Baseline = "" }),
		Misconfigurations: changes(a.Misconfigurations, b.Misconfigurations, Misconfiguration.identity, func(m *Misconfiguration) { m.Baseline = "" }),
		Weaknesses:        changes(a.Weaknesses, b.Weaknesses, Weakness.identity, func(w *Weakness) { w.Baseline = "" }),
	}
	d.Packages, d.Licenses = comparePackages(a.Packages, b.Packages)
	return d
}

// changes are the findings of b whose identity a has not, and those of a
// whose identity b has not, in their reports' order, without their
// baseline state (clear), which belongs to their own scans.
func changes[T any](a, b []T, identity func(T) string, clear func(*T)) Changes[T] {
	in := func(list []T) map[string]bool {
		m := map[string]bool{}
		for _, f := range list {
			m[identity(f)] = true
		}
		return m
	}
	only := func(list []T, other map[string]bool) []T {
		out := []T{}
		for _, f := range list {
			if !other[identity(f)] {
				clear(&f)
				out = append(out, f)
			}
		}
		return out
	}
	return Changes[T]{New: only(b, in(a)), Gone: only(a, in(b))}
}

// comparePackages compares packages by ecosystem and name: their versions,
// and the licences of those in both.
func comparePackages(a, b []Package) (PackageChanges, []LicenseChange) {
	type entry struct {
		pkgs     []Package
		versions []string
		licenses []string
	}
	key := func(p Package) string { return p.Ecosystem + "\x00" + p.Name }
	index := func(list []Package) (map[string]*entry, []string) {
		m, order := map[string]*entry{}, []string{}
		for _, p := range list {
			e := m[key(p)]
			if e == nil {
				e = &entry{}
				m[key(p)] = e
				order = append(order, key(p))
			}
			e.pkgs = append(e.pkgs, p)
			e.versions = append(e.versions, p.Version)
			e.licenses = append(e.licenses, p.Licenses...)
		}
		for _, e := range m {
			slices.Sort(e.versions)
			e.versions = slices.Compact(e.versions)
			slices.Sort(e.licenses)
			e.licenses = slices.Compact(e.licenses)
		}
		return m, order
	}
	am, aOrder := index(a)
	bm, bOrder := index(b)
	out := PackageChanges{Added: []Package{}, Removed: []Package{}, Changed: []PackageChange{}}
	licenses := []LicenseChange{}
	for _, k := range bOrder {
		be, ae := bm[k], am[k]
		p := be.pkgs[0]
		switch {
		case ae == nil:
			out.Added = append(out.Added, be.pkgs...)
			continue
		case !slices.Equal(ae.versions, be.versions):
			out.Changed = append(out.Changed, PackageChange{Name: p.Name, Ecosystem: p.Ecosystem, From: ae.versions, To: be.versions})
		}
		if !slices.Equal(ae.licenses, be.licenses) {
			licenses = append(licenses, LicenseChange{Name: p.Name, Ecosystem: p.Ecosystem, From: orNone(ae.licenses), To: orNone(be.licenses)})
		}
	}
	for _, k := range aOrder {
		if bm[k] == nil {
			out.Removed = append(out.Removed, am[k].pkgs...)
		}
	}
	sortPackages(out.Added)
	sortPackages(out.Removed)
	slices.SortFunc(out.Changed, func(x, y PackageChange) int {
		return cmp.Or(strings.Compare(x.Ecosystem, y.Ecosystem), strings.Compare(x.Name, y.Name))
	})
	slices.SortFunc(licenses, func(x, y LicenseChange) int {
		return cmp.Or(strings.Compare(x.Ecosystem, y.Ecosystem), strings.Compare(x.Name, y.Name))
	})
	return out, licenses
}

func sortPackages(ps []Package) {
	slices.SortFunc(ps, func(x, y Package) int {
		return cmp.Or(strings.Compare(x.Ecosystem, y.Ecosystem), strings.Compare(x.Name, y.Name), strings.Compare(x.Version, y.Version))
	})
}

func orNone(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// WriteDiffTable writes a diff for a person at a terminal: one line per
// change, + for added, new or introduced, - for removed, gone or fixed,
// ~ for changed.
func WriteDiffTable(w io.Writer, d Diff) error {
	ew := &errWriter{w: w}
	side := func(s DiffSide) string {
		if s.ReleaseID != "" {
			return fmt.Sprintf("release %s (scan %s, %s)", s.ReleaseID, s.ScanID, s.Verdict)
		}
		return fmt.Sprintf("scan %s (%s)", s.ScanID, s.Verdict)
	}
	ew.printf("tollgate diff of %s\n  from %s\n  to   %s\n", d.App, side(d.From), side(d.To))
	if d.Empty() {
		ew.printf("\nNo changes\n")
		return ew.err
	}
	section := func(title string, n int, rows func(tw io.Writer)) {
		if n == 0 {
			return
		}
		ew.printf("\n%s\n", title)
		tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
		rows(tw)
		tw.Flush()
	}
	p := d.Packages
	section(fmt.Sprintf("Packages: %d added, %d removed, %d changed", len(p.Added), len(p.Removed), len(p.Changed)),
		len(p.Added)+len(p.Removed)+len(p.Changed), func(tw io.Writer) {
			for _, x := range p.Added {
				fmt.Fprintf(tw, "  +\t%s\t%s\t%s\t%s\n", x.Ecosystem, x.Name, x.Version, strings.Join(x.Licenses, ", "))
			}
			for _, x := range p.Removed {
				fmt.Fprintf(tw, "  -\t%s\t%s\t%s\t%s\n", x.Ecosystem, x.Name, x.Version, strings.Join(x.Licenses, ", "))
			}
			for _, x := range p.Changed {
				fmt.Fprintf(tw, "  ~\t%s\t%s\t%s -> %s\t\n", x.Ecosystem, x.Name, strings.Join(x.From, ", "), strings.Join(x.To, ", "))
			}
		})
	section(fmt.Sprintf("Licences: %d changed", len(d.Licenses)), len(d.Licenses), func(tw io.Writer) {
		for _, x := range d.Licenses {
			fmt.Fprintf(tw, "  ~\t%s\t%s\t%s -> %s\n", x.Ecosystem, x.Name, licenseList(x.From), licenseList(x.To))
		}
	})
	v := d.Vulnerabilities
	section(fmt.Sprintf("Vulnerabilities: %d introduced, %d fixed", len(v.New), len(v.Gone)), len(v.New)+len(v.Gone), func(tw io.Writer) {
		row := func(sign string, x Vulnerability) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s@%s\n", sign, x.Severity, x.ID, x.Package, x.Version)
		}
		for _, x := range v.New {
			row("+", x)
		}
		for _, x := range v.Gone {
			row("-", x)
		}
	})
	s := d.Secrets
	section(fmt.Sprintf("Secrets: %d new, %d gone", len(s.New), len(s.Gone)), len(s.New)+len(s.Gone), func(tw io.Writer) {
		for _, x := range s.New {
			fmt.Fprintf(tw, "  +\t%s\t%s:%d\n", x.Rule, x.File, x.Line)
		}
		for _, x := range s.Gone {
			fmt.Fprintf(tw, "  -\t%s\t%s:%d\n", x.Rule, x.File, x.Line)
		}
	})
	m := d.Misconfigurations
	section(fmt.Sprintf("Misconfigurations: %d new, %d gone", len(m.New), len(m.Gone)), len(m.New)+len(m.Gone), func(tw io.Writer) {
		row := func(sign string, x Misconfiguration) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", sign, x.Severity, x.ID, x.File, x.Title)
		}
		for _, x := range m.New {
			row("+", x)
		}
		for _, x := range m.Gone {
			row("-", x)
		}
	})
	wk := d.Weaknesses
	section(fmt.Sprintf("Code weaknesses: %d new, %d gone", len(wk.New), len(wk.Gone)), len(wk.New)+len(wk.Gone), func(tw io.Writer) {
		row := func(sign string, x Weakness) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s:%d\t%s\n", sign, x.Severity, x.Rule, x.File, x.Line, x.Message)
		}
		for _, x := range wk.New {
			row("+", x)
		}
		for _, x := range wk.Gone {
			row("-", x)
		}
	})
	return ew.err
}

func licenseList(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, ", ")
}
