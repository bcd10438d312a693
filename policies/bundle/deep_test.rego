package tollgate.deep_test

import data.tollgate.deep

db := {"available": true}

vuln(sev) := {"id": "GHSA-test", "aliases": ["CVE-2020-1"], "package": "lodash", "version": "4.17.4", "severity": sev, "fixed_versions": ["4.17.21"]}

misconfig(sev) := {"id": "KSV-0017", "title": "Privileged", "severity": sev, "type": "kubernetes", "file": "k8s/deployment.yaml", "start_line": 17, "end_line": 22, "message": "Container 'web' should set 'securityContext.privileged' to false", "references": []}

pkg(licenses) := {"name": "somelib", "version": "1.0.0", "ecosystem": "npm", "purl": "pkg:npm/somelib@1.0.0", "licenses": licenses}

test_clean_passes if {
	d := deep.decision with input as {"packages": [pkg(["MIT"])], "vulnerabilities": [], "vulndb": db}
	d.verdict == "pass"
}

test_critical_blocks if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("CRITICAL")], "vulndb": db}
	d.verdict == "block"
	d.reasons[0].policy == "vulnerabilities.critical"
	contains(d.reasons[0].message, "fixed in 4.17.21")
}

test_high_warns if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("HIGH")], "vulndb": db}
	d.verdict == "warn"
	d.reasons[0].policy == "vulnerabilities.high"
}

test_medium_and_low_pass if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("MEDIUM"), vuln("LOW")], "vulndb": db}
	d.verdict == "pass"
}

test_unknown_severity_warns if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("UNKNOWN")], "vulndb": db}
	d.verdict == "warn"
	d.reasons[0].policy == "vulnerabilities.unknown_severity"
}

test_missing_db_warns if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "vulndb": {"available": false}}
	d.verdict == "warn"
	d.reasons[0].policy == "vulnerabilities.no_db"
}

test_denied_license_blocks if {
	d := deep.decision with input as {"packages": [pkg(["AGPL-3.0-only"])], "vulnerabilities": [], "vulndb": db}
	d.verdict == "block"
	d.reasons[0].policy == "licenses.denied"
}

test_denied_license_is_case_insensitive if {
	d := deep.decision with input as {"packages": [pkg(["agpl-3.0-ONLY"])], "vulnerabilities": [], "vulndb": db}
	d.verdict == "block"
}

test_or_with_allowed_alternative_passes if {
	d := deep.decision with input as {"packages": [pkg(["(MIT OR AGPL-3.0-only)"])], "vulnerabilities": [], "vulndb": db}
	d.verdict == "pass"
}

test_and_with_denied_part_blocks if {
	d := deep.decision with input as {"packages": [pkg(["MIT AND AGPL-3.0-only"])], "vulnerabilities": [], "vulndb": db}
	d.verdict == "block"
}

test_deny_list_is_configurable if {
	d := deep.decision with input as {"packages": [pkg(["MIT"])], "vulnerabilities": [], "vulndb": db}
		with data.tollgate.config.license_deny as ["MIT"]
	d.verdict == "block"
}

test_block_reasons_come_before_warn_reasons if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("HIGH"), vuln("CRITICAL")], "vulndb": db}
	d.verdict == "block"
	d.reasons[0].verdict == "block"
	d.reasons[1].verdict == "warn"
}

test_critical_misconfig_blocks if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "misconfigurations": [misconfig("CRITICAL")], "vulndb": db}
	d.verdict == "block"
	d.reasons[0].policy == "misconfig.critical"
	d.reasons[0].message == "KSV-0017 in k8s/deployment.yaml:17 is CRITICAL: Privileged"
}

test_high_misconfig_warns if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "misconfigurations": [misconfig("HIGH")], "vulndb": db}
	d.verdict == "warn"
	d.reasons[0].policy == "misconfig.high"
	d.reasons[0].message == "KSV-0017 in k8s/deployment.yaml:17 is HIGH: Privileged"
}

test_medium_and_low_misconfigs_pass if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "misconfigurations": [misconfig("MEDIUM"), misconfig("LOW")], "vulndb": db}
	d.verdict == "pass"
}

# A check about a whole file (a Dockerfile without USER) has no line.
test_misconfig_without_line_names_the_file if {
	m := {"id": "DS-0002", "title": "Image user should not be 'root'", "severity": "HIGH", "type": "dockerfile", "file": "Dockerfile", "message": "Specify at least 1 USER command in Dockerfile with non-root user as argument", "references": []}
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "misconfigurations": [m], "vulndb": db}
	d.verdict == "warn"
	d.reasons[0].message == "DS-0002 in Dockerfile is HIGH: Image user should not be 'root'"
}

# Inputs from before misconfigurations were checked have no such list.
test_input_without_misconfigs_passes if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [], "vulndb": db}
	d.verdict == "pass"
}

test_critical_misconfig_blocks_before_high_vulnerability_warns if {
	d := deep.decision with input as {"packages": [], "vulnerabilities": [vuln("HIGH")], "misconfigurations": [misconfig("CRITICAL")], "vulndb": db}
	d.verdict == "block"
	d.reasons[0].policy == "misconfig.critical"
	d.reasons[1].policy == "vulnerabilities.high"
}
