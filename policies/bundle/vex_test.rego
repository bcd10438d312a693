package tollgate.vex_test

import data.tollgate.deep

db := {"available": true}

# GO-2024-2512 (docker/docker), as a deep stage reports it.
docker := {
	"id": "GO-2024-2512", "aliases": ["CVE-2024-24557", "GHSA-xw73-rw38-6vjc"],
	"package": "github.com/docker/docker", "version": "v24.0.7+incompatible",
	"purl": "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible",
	"severity": "CRITICAL", "fixed_versions": ["25.0.2"],
}

stmt(extra) := object.union(
	{
		"record": "vex-00000000000000a1", "format": "openvex",
		"vulnerability": "GO-2024-2512", "package": "github.com/docker/docker", "version": "v24.0.7+incompatible",
		"purl": "pkg:golang/github.com/docker/docker@v24.0.7%2Bincompatible",
		"product": "pkg:golang/github.com/aquasecurity/trivy",
		"status": "not_affected", "justification": "vulnerable_code_not_present",
		"added_by": "sec@acme", "added_at": "2026-11-01T00:00:00Z",
	},
	extra,
)

deep_with(statements) := d if {
	d := deep.decision with input as {
		"scan": {"app": "todo"}, "now": "2026-11-22T12:00:00Z", "exceptions": [], "vex": statements,
		"packages": [], "vulnerabilities": [docker], "vulndb": db,
	}
}

test_not_affected_with_justification_silences_and_shows if {
	d := deep_with([stmt({})])
	d.verdict == "pass"
	count(d.vex) == 1
	d.vex[0].record == "vex-00000000000000a1"
	d.vex[0].added_by == "sec@acme"
	d.vex[0].justification == "vulnerable_code_not_present"
}

test_fixed_silences if {
	d := deep_with([stmt({"status": "fixed", "justification": ""})])
	d.verdict == "pass"
	d.vex[0].status == "fixed"
}

test_not_affected_without_justification_silences_nothing if {
	d := deep_with([stmt({"justification": ""})])
	d.verdict == "block"
	count(d.vex) == 0
}

test_affected_and_under_investigation_silence_nothing if {
	every status in ["affected", "under_investigation", "false_positive"] {
		d := deep_with([stmt({"status": status})])
		d.verdict == "block"
		count(d.vex) == 0
	}
}

test_statement_for_another_vulnerability_silences_nothing if {
	d := deep_with([stmt({"vulnerability": "GO-2023-1765"})])
	d.verdict == "block"
}

test_statement_for_another_package_silences_nothing if {
	d := deep_with([stmt({"purl": "pkg:golang/github.com/docker/docker@v25.0.0"})])
	d.verdict == "block"
}

test_no_vex_input_is_no_vex if {
	d := deep.decision with input as {
		"scan": {"app": "todo"}, "now": "2026-11-22T12:00:00Z",
		"packages": [], "vulnerabilities": [docker], "vulndb": db,
	}
	d.verdict == "block"
	d.vex == []
}
