package report

import "reflect"

// Findings are what a scan's scanners found, in one type: a stage's task
// result (tasks.Result) carries them, the policy decides on them
// (policies.Input), a re-match carries the deep ones (workflows.RematchItem)
// and the report lists them (Report). Each embeds Findings, so a new kind of
// finding is a field here and a line in Add; the report, the policy input and
// the task payload get it from there.
//
// The JSON names are the report contract's, in the report's order. A list is
// left out when it is nil (omitzero), so a task's payload carries only what
// its scanners set; Normalize gives the lists the report and the policies
// print as [] when there are none. The files left unscanned are "skipped"
// here as in the report, and are left out when there are none (omitempty):
// a task's payload names them "unscanned" (tasks.Result's JSON), since its
// "skipped" is the re-match flag.
type Findings struct {
	// Touches lists, per sensitive area (auth, secrets, egress), the files
	// that touch it (fast stage).
	Touches map[string][]string `json:"touches,omitzero"`
	// Manifest is the app's permission manifest as the fast stage read it
	// (absent in reports of scans from before manifests were checked).
	Manifest *Manifest `json:"manifest,omitzero"`
	Secrets  []Secret  `json:"secrets,omitzero"`
	// Unscanned lists the nested archives (a .tgz Helm chart, a .jar) that
	// were not scanned because they break the archive limits, sorted by
	// file; absent when none was.
	Unscanned       []Skipped       `json:"skipped,omitempty"`
	Vulnerabilities []Vulnerability `json:"vulnerabilities,omitzero"`
	// Misconfigurations are failed IaC checks (deep stage), sorted by file,
	// line and id.
	Misconfigurations []Misconfiguration `json:"misconfigurations,omitzero"`
	// Weaknesses are the code weaknesses the SAST engine found (fast stage),
	// sorted by file, line and rule: [] in a report whose fast stage ran and
	// found none.
	Weaknesses []Weakness `json:"weaknesses,omitzero"`
	// CodeScan says what the SAST engine read (files and lines per
	// language, files skipped by reason); absent when the code was not
	// scanned. A fast task sets it, if empty, whenever the code scanner ran.
	CodeScan *CodeScan `json:"code_scan,omitzero"`
	Packages []Package `json:"packages,omitzero"`
}

// Add merges more into f: lists are appended (the unscanned files once per
// file, sorted), each area's touches appended, and a manifest or code-scan
// summary in more replaces f's. It is the one merge of findings: the policy
// input and the report are both built with it.
func (f *Findings) Add(more Findings) {
	for area, files := range more.Touches {
		if f.Touches == nil {
			f.Touches = map[string][]string{}
		}
		f.Touches[area] = append(f.Touches[area], files...)
	}
	if more.Manifest != nil {
		f.Manifest = more.Manifest
	}
	f.Secrets = append(f.Secrets, more.Secrets...)
	f.Unscanned = MergeSkipped(f.Unscanned, more.Unscanned)
	f.Vulnerabilities = append(f.Vulnerabilities, more.Vulnerabilities...)
	f.Misconfigurations = append(f.Misconfigurations, more.Misconfigurations...)
	f.Weaknesses = append(f.Weaknesses, more.Weaknesses...)
	if more.CodeScan != nil {
		f.CodeScan = more.CodeScan
	}
	f.Packages = append(f.Packages, more.Packages...)
}

// Normalize makes f print as the report contract says: every list that is
// nil becomes empty, so that it prints [] (omitzero leaves out only nil
// ones), and so do a weakness's cwe and trace. The unscanned files stay
// absent when there are none (omitempty), and touches, the manifest and the
// code-scan summary when they are nil. It works on every list field by
// reflection, so a new kind of finding needs no line here.
func (f *Findings) Normalize() {
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		if fv := v.Field(i); fv.Kind() == reflect.Slice && fv.IsNil() {
			fv.Set(reflect.MakeSlice(fv.Type(), 0, 0))
		}
	}
	f.Weaknesses = MergeWeaknesses(nil, f.Weaknesses)
}
