package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// xsdNode is an element of an XSD document, or of a document it checks.
type xsdNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Nodes   []xsdNode  `xml:",any"`
	Text    string     `xml:",chardata"`
}

func (n xsdNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n xsdNode) children(local string) []xsdNode {
	var out []xsdNode
	for _, c := range n.Nodes {
		if c.XMLName.Local == local {
			out = append(out, c)
		}
	}
	return out
}

func (n xsdNode) child(local string) (xsdNode, bool) {
	c := n.children(local)
	if len(c) == 0 {
		return xsdNode{}, false
	}
	return c[0], true
}

// xsd checks a document structurally against the constructs JUnit.xsd uses
// (named and inline complex and simple types, sequence, choice,
// complexContent and simpleContent extensions, required attributes,
// restrictions by pattern and minLength, xs:int and xs:decimal). No XSD
// validator is available here (testdata/junit/README.md says why); this is
// the XSD's own rules read from the file, not a copy of them.
type xsd struct {
	root  xsdNode
	types map[string]xsdNode
}

func loadXSD(t *testing.T, path string) *xsd {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var root xsdNode
	if err := xml.Unmarshal(b, &root); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	s := &xsd{root: root, types: map[string]xsdNode{}}
	for _, c := range root.Nodes {
		if name := c.attr("name"); name != "" && (c.XMLName.Local == "complexType" || c.XMLName.Local == "simpleType") {
			s.types[name] = c
		}
	}
	return s
}

// check returns the ways doc breaks the schema.
func (s *xsd) check(doc []byte) []string {
	var root xsdNode
	if err := xml.Unmarshal(doc, &root); err != nil {
		return []string{"not XML: " + err.Error()}
	}
	for _, decl := range s.root.children("element") {
		if decl.attr("name") == root.XMLName.Local {
			var errs []string
			s.element(decl, root, "/"+root.XMLName.Local, &errs)
			return errs
		}
	}
	return []string{"no top-level element " + root.XMLName.Local}
}

func (s *xsd) element(decl, n xsdNode, path string, errs *[]string) {
	typ, hasInline := decl.child("complexType")
	if !hasInline {
		if st, ok := decl.child("simpleType"); ok {
			s.simple(st, n.Text, path, errs)
			s.noChildren(n, path, errs)
			return
		}
		name := decl.attr("type")
		if t, ok := s.types[name]; ok && t.XMLName.Local == "complexType" {
			typ = t
		} else {
			s.value(name, n.Text, path, errs)
			s.noChildren(n, path, errs)
			return
		}
	}
	s.complex(typ, n, path, errs)
}

func (s *xsd) noChildren(n xsdNode, path string, errs *[]string) {
	for _, c := range n.Nodes {
		*errs = append(*errs, fmt.Sprintf("%s: unexpected element %s", path, c.XMLName.Local))
	}
}

// complex checks attributes and children against a complex type, its
// extension's base first.
func (s *xsd) complex(typ, n xsdNode, path string, errs *[]string) {
	var attrs []xsdNode
	var particles []xsdNode
	textOnly := false
	var collect func(t xsdNode)
	collect = func(t xsdNode) {
		for _, c := range t.Nodes {
			switch c.XMLName.Local {
			case "attribute":
				attrs = append(attrs, c)
			case "sequence", "choice":
				particles = append(particles, c)
			case "complexContent", "simpleContent":
				textOnly = textOnly || c.XMLName.Local == "simpleContent"
				ext, _ := c.child("extension")
				if base, ok := s.types[ext.attr("base")]; ok && base.XMLName.Local == "complexType" {
					collect(base)
				} else if ok && base.XMLName.Local == "simpleType" {
					s.simple(base, n.Text, path, errs)
				}
				collect(ext)
			}
		}
	}
	collect(typ)
	declared := map[string]bool{}
	for _, a := range attrs {
		name := a.attr("name")
		declared[name] = true
		v, present := "", false
		for _, have := range n.Attrs {
			if have.Name.Local == name {
				v, present = have.Value, true
			}
		}
		if !present {
			if a.attr("use") == "required" {
				*errs = append(*errs, fmt.Sprintf("%s: missing required attribute %s", path, name))
			}
			continue
		}
		if st, ok := a.child("simpleType"); ok {
			s.simple(st, v, path+"/@"+name, errs)
		} else {
			s.value(a.attr("type"), v, path+"/@"+name, errs)
		}
	}
	for _, have := range n.Attrs {
		if !declared[have.Name.Local] && have.Name.Space != "xmlns" && have.Name.Local != "xmlns" {
			*errs = append(*errs, fmt.Sprintf("%s: undeclared attribute %s", path, have.Name.Local))
		}
	}
	if textOnly {
		s.noChildren(n, path, errs)
		return
	}
	rest := n.Nodes
	for _, p := range particles {
		rest = s.particle(p, rest, path, errs)
	}
	for _, c := range rest {
		*errs = append(*errs, fmt.Sprintf("%s: unexpected element %s", path, c.XMLName.Local))
	}
}

// particle matches the leading children against a sequence or choice and
// returns the children left.
func (s *xsd) particle(p xsdNode, nodes []xsdNode, path string, errs *[]string) []xsdNode {
	occurs := func(n xsdNode) (int, int) {
		lo, hi := 1, 1
		if v := n.attr("minOccurs"); v != "" {
			lo, _ = strconv.Atoi(v)
		}
		if v := n.attr("maxOccurs"); v == "unbounded" {
			hi = 1 << 30
		} else if v != "" {
			hi, _ = strconv.Atoi(v)
		}
		return lo, hi
	}
	if p.XMLName.Local == "choice" {
		lo, _ := occurs(p)
		for _, alt := range p.children("element") {
			if len(nodes) > 0 && nodes[0].XMLName.Local == alt.attr("name") {
				s.element(alt, nodes[0], path+"/"+alt.attr("name"), errs)
				return nodes[1:]
			}
		}
		if lo > 0 {
			*errs = append(*errs, fmt.Sprintf("%s: none of the choice's elements", path))
		}
		return nodes
	}
	for _, decl := range p.children("element") {
		lo, hi := occurs(decl)
		name := decl.attr("name")
		n := 0
		for len(nodes) > 0 && nodes[0].XMLName.Local == name && n < hi {
			s.element(decl, nodes[0], fmt.Sprintf("%s/%s[%d]", path, name, n), errs)
			nodes = nodes[1:]
			n++
		}
		if n < lo {
			*errs = append(*errs, fmt.Sprintf("%s: %d %s elements, want at least %d", path, n, name, lo))
		}
	}
	return nodes
}

func (s *xsd) simple(st xsdNode, v, path string, errs *[]string) {
	r, _ := st.child("restriction")
	s.value(r.attr("base"), v, path, errs)
	for _, f := range r.Nodes {
		switch f.XMLName.Local {
		case "pattern":
			if !regexp.MustCompile("^(?:" + f.attr("value") + ")$").MatchString(v) {
				*errs = append(*errs, fmt.Sprintf("%s: %q does not match %s", path, v, f.attr("value")))
			}
		case "minLength":
			if n, _ := strconv.Atoi(f.attr("value")); len([]rune(v)) < n {
				*errs = append(*errs, fmt.Sprintf("%s: %q shorter than %d", path, v, n))
			}
		}
	}
}

var xsDecimal = regexp.MustCompile(`^[+-]?(\d+(\.\d*)?|\.\d+)$`)

func (s *xsd) value(typ, v, path string, errs *[]string) {
	switch typ {
	case "xs:int":
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			*errs = append(*errs, fmt.Sprintf("%s: %q is not an xs:int", path, v))
		}
	case "xs:decimal":
		if !xsDecimal.MatchString(v) {
			*errs = append(*errs, fmt.Sprintf("%s: %q is not an xs:decimal", path, v))
		}
	case "xs:string", "xs:token", "xs:dateTime", "":
	default:
		if st, ok := s.types[typ]; ok {
			s.simple(st, v, path, errs)
		} else {
			*errs = append(*errs, fmt.Sprintf("%s: type %s unknown to the checker", path, typ))
		}
	}
}

// TestJUnitMatchesTheXSD: the JUnit XML of the fixture, of a hostile report
// and of a passing one follows windyroad's JUnit.xsd, read from testdata.
func TestJUnitMatchesTheXSD(t *testing.T) {
	schema := loadXSD(t, filepath.Join("testdata", "junit", "JUnit.xsd"))
	pass := fixture()
	pass.Verdict, pass.Reasons, pass.Findings = VerdictPass, nil, Findings{}
	for name, r := range map[string]Report{"fixture": fixture(), "hostile": hostile(), "pass": pass} {
		t.Run(name, func(t *testing.T) {
			out, err := JUnit(r, "test")
			if err != nil {
				t.Fatal(err)
			}
			if errs := schema.check(out); len(errs) > 0 {
				t.Fatalf("does not follow JUnit.xsd:\n%s\n%s", strings.Join(errs, "\n"), out)
			}
		})
	}
}

// TestJUnitXSDCheckFails: the structural check finds what is missing.
func TestJUnitXSDCheckFails(t *testing.T) {
	schema := loadXSD(t, filepath.Join("testdata", "junit", "JUnit.xsd"))
	out, _ := JUnit(fixture(), "test")
	for _, c := range []struct{ from, to, want string }{
		{`hostname="tollgate"`, ``, "missing required attribute hostname"},
		{`<system-out></system-out>`, ``, "0 system-out elements"},
		{`<testsuites>`, `<testsuites tests="3">`, "undeclared attribute tests"},
		{`time="0.000"`, `time="soon"`, "is not an xs:decimal"},
	} {
		errs := schema.check(bytes.Replace(out, []byte(c.from), []byte(c.to), 1))
		if !strings.Contains(strings.Join(errs, "\n"), c.want) {
			t.Errorf("replacing %s: errors %v, want %q", c.from, errs, c.want)
		}
	}
}

// TestJUnitCountsFailures: the verdict test fails when the scan blocks,
// and every finding is a failed test typed by its severity.
func TestJUnitCountsFailures(t *testing.T) {
	out, err := JUnit(fixture(), "test")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Suites []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, s := range doc.Suites {
		got[s.Name] = [2]int{s.Tests, s.Failures}
	}
	want := map[string][2]int{"tollgate.policy": {5, 4}, "tollgate.secrets": {1, 1}, "tollgate.vulnerabilities": {2, 2},
		"tollgate.misconfigurations": {2, 2}, "tollgate.weaknesses": {2, 2}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("suites (tests, failures) %v, want %v", got, want)
	}
}
