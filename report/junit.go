package report

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// JUnit renders the report as JUnit XML in the Apache Ant layout (the one
// windyroad's JUnit.xsd describes, which Jenkins, GitLab and most CI systems
// read): a <testsuites> with one <testsuite> for the policy, whose "verdict"
// test fails when the scan is blocked (or waits for a review) and whose
// reasons fail when they block, and one per kind of finding present, where
// every finding is a failed test (as trivy's JUnit template does), typed by
// its severity. Text from the scanned code is escaped by encoding/xml.
func JUnit(r Report, toolVersion string) ([]byte, error) {
	stamp := r.StartedAt.UTC().Format("2006-01-02T15:04:05")
	elapsed := r.Timings["total"]
	if elapsed == 0 && r.FinishedAt.After(r.StartedAt) {
		elapsed = r.FinishedAt.Sub(r.StartedAt).Seconds()
	}
	var suites junitSuites
	add := func(kind string, cases []junitCase) {
		s := junitSuite{
			Name: "tollgate." + kind, Package: "tollgate", ID: len(suites.Suites), Timestamp: stamp, Hostname: "tollgate",
			Tests: len(cases), Time: junitSeconds(0), Cases: cases,
			Properties: junitProperties{Property: []junitProperty{
				{Name: "scan_id", Value: r.ScanID}, {Name: "app", Value: r.App}, {Name: "commit", Value: r.Commit},
				{Name: "verdict", Value: string(r.Verdict)}, {Name: "stage", Value: r.Stage}, {Name: "tollgate_version", Value: toolVersion},
			}},
		}
		for _, c := range cases {
			if c.Failure != nil {
				s.Failures++
			}
		}
		if kind == "policy" {
			s.Time = junitSeconds(elapsed)
		}
		suites.Suites = append(suites.Suites, s)
	}

	verdict := junitCase{Name: "verdict", ClassName: "tollgate.policy"}
	if r.Verdict == VerdictBlock || r.Verdict == VerdictReview {
		verdict.Failure = &junitFailure{Type: string(r.Verdict),
			Message: fmt.Sprintf("scan %s of %s: %s in the %s stage", r.ScanID, r.App, strings.ToUpper(string(r.Verdict)), r.Stage)}
	}
	policy := []junitCase{verdict}
	for _, reason := range r.Reasons {
		c := junitCase{Name: reason.Policy + ": " + reason.Message, ClassName: "tollgate.policy." + reason.Policy}
		if reason.Verdict == VerdictBlock {
			c.Failure = &junitFailure{Type: string(reason.Verdict), Message: reason.Message}
		}
		policy = append(policy, c)
	}
	add("policy", policy)

	var cases []junitCase
	for _, s := range r.Secrets {
		cases = append(cases, findingCase("secrets", s.File, fmt.Sprintf("%s at %s:%d", s.Rule, s.File, s.Line), "secret",
			fmt.Sprintf("Secret (%s) found in %s:%d. The value is redacted; rotate it and remove it from the code.", s.Rule, s.File, s.Line)))
	}
	add("secrets", cases)
	cases = nil
	for _, v := range r.Vulnerabilities {
		msg := fmt.Sprintf("%s %s@%s is affected by %s (%s)", v.Ecosystem, v.Package, v.Version, v.ID, v.Severity)
		if len(v.FixedVersions) > 0 {
			msg += "; fixed in " + strings.Join(v.FixedVersions, ", ")
		}
		cases = append(cases, findingCase("vulnerabilities", v.File, fmt.Sprintf("%s in %s@%s", v.ID, v.Package, v.Version), v.Severity, msg))
	}
	add("vulnerabilities", cases)
	cases = nil
	for _, m := range r.Misconfigurations {
		cases = append(cases, findingCase("misconfigurations", m.File, fmt.Sprintf("%s at %s:%d", m.ID, m.File, m.StartLine), m.Severity,
			m.Title+": "+m.Message))
	}
	add("misconfigurations", cases)
	cases = nil
	for _, w := range r.Weaknesses {
		cases = append(cases, findingCase("weaknesses", w.File, fmt.Sprintf("%s at %s:%d", w.Rule, w.File, w.Line), strings.ToUpper(w.Severity),
			w.Message+" ("+strings.Join(w.CWE, ", ")+")"))
	}
	add("weaknesses", cases)

	// A kind with no findings has no suite, but for the policy's.
	kept := suites.Suites[:0]
	for _, s := range suites.Suites {
		if s.Tests > 0 {
			s.ID = len(kept)
			kept = append(kept, s)
		}
	}
	suites.Suites = kept

	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(suites); err != nil {
		return nil, fmt.Errorf("encode junit xml: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

func findingCase(kind, file, name, severity, msg string) junitCase {
	if file == "" {
		file = "."
	}
	return junitCase{Name: name, ClassName: "tollgate." + kind + "." + file,
		Failure: &junitFailure{Type: cmp.Or(severity, "UNKNOWN"), Message: msg, Text: msg}}
}

// junitSuites has no attributes: the XSD declares none on <testsuites>.
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

// junitSuite carries every attribute and element the XSD requires,
// system-out and system-err included (empty).
type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Package    string          `xml:"package,attr"`
	ID         int             `xml:"id,attr"`
	Timestamp  string          `xml:"timestamp,attr"`
	Hostname   string          `xml:"hostname,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       junitSeconds    `xml:"time,attr"`
	Properties junitProperties `xml:"properties"`
	Cases      []junitCase     `xml:"testcase"`
	SystemOut  string          `xml:"system-out"`
	SystemErr  string          `xml:"system-err"`
}

type junitProperties struct {
	Property []junitProperty `xml:"property"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Time      junitSeconds  `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junitSeconds prints as xs:decimal (no exponent).
type junitSeconds float64

func (s junitSeconds) MarshalXMLAttr(name xml.Name) (xml.Attr, error) {
	return xml.Attr{Name: name, Value: strconv.FormatFloat(float64(s), 'f', 3, 64)}, nil
}
