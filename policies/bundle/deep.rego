# The deep stage: SBOM, vulnerabilities, IaC misconfigurations and licences.
#
# input: {"scan": {...}, "packages": [{name, version, ecosystem, purl, licenses}],
#         "vulnerabilities": [{id, aliases, package, version, severity, fixed_versions}],
#         "misconfigurations": [{id, title, severity, type, file, start_line, end_line, ...}],
#         "vulndb": {"available": bool, ...}}
package tollgate.deep

import data.tollgate.lib

decision := lib.decide(block, warn)

block contains {
	"policy": "vulnerabilities.critical",
	"message": sprintf("%s in %s@%s is CRITICAL%s", [v.id, v.package, v.version, fix_hint(v)]),
	"baseline": lib.state(v),
} if {
	some v in input.vulnerabilities
	v.severity == "CRITICAL"
	not lib.excepted_vulnerability(v)
}

warn contains {
	"policy": "vulnerabilities.high",
	"message": sprintf("%s in %s@%s is HIGH%s", [v.id, v.package, v.version, fix_hint(v)]),
	"baseline": lib.state(v),
} if {
	some v in input.vulnerabilities
	v.severity == "HIGH"
	not lib.excepted_vulnerability(v)
}

# An advisory nobody scored is not a low one.
warn contains {
	"policy": "vulnerabilities.unknown_severity",
	"message": sprintf("%s in %s@%s has no severity: review it%s", [v.id, v.package, v.version, fix_hint(v)]),
	"baseline": lib.state(v),
} if {
	some v in input.vulnerabilities
	not v.severity in {"CRITICAL", "HIGH", "MEDIUM", "LOW"}
	not lib.excepted_vulnerability(v)
}

# No vulnerability data means nothing was checked, never that nothing is vulnerable.
warn contains {
	"policy": "vulnerabilities.no_db",
	"message": "no vulnerability database: vulnerabilities were not checked (run `tollgate db import` or `tollgate db update`)",
} if {
	not input.vulndb.available
}

# Misconfigurations are failed checks of trivy's built-in IaC checks
# (Dockerfile, Kubernetes, Terraform, Helm).
block contains {
	"policy": "misconfig.critical",
	"check": m.id,
	"message": sprintf("%s in %s is CRITICAL: %s", [m.id, where(m), m.title]),
	"baseline": lib.state(m),
} if {
	some m in input.misconfigurations
	m.severity == "CRITICAL"
}

warn contains {
	"policy": "misconfig.high",
	"check": m.id,
	"message": sprintf("%s in %s is HIGH: %s", [m.id, where(m), m.title]),
	"baseline": lib.state(m),
} if {
	some m in input.misconfigurations
	m.severity == "HIGH"
}

block contains {
	"policy": "licenses.denied",
	"message": sprintf("%s@%s is licensed %q, which is on the deny list", [p.name, p.version, license]),
} if {
	some p in input.packages
	some license in p.licenses
	denied(license)
}

fix_hint(v) := sprintf(" (fixed in %s)", [concat(", ", fixes)]) if {
	fixes := object.get(v, "fixed_versions", [])
	is_array(fixes)
	count(fixes) > 0
} else := ""

# where is file:line, or the file alone when the check is about all of it.
where(m) := sprintf("%s:%d", [m.file, m.start_line]) if {
	object.get(m, "start_line", 0) > 0
} else := m.file

deny_set := {lower(id) | some id in data.tollgate.config.license_deny}

# A licence expression is denied when every alternative of an OR has a denied
# licence in it: "MIT OR AGPL-3.0-only" can be taken as MIT, but
# "MIT AND AGPL-3.0-only" cannot.
denied(expr) if {
	alternatives := split(lower(replace(replace(expr, "(", " "), ")", " ")), " or ")
	every alt in alternatives {
		some id in split(trim_space(alt), " ")
		id in deny_set
	}
}
