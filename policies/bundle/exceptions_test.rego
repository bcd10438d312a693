package tollgate.exceptions_test

import data.tollgate.deep
import data.tollgate.fast

now := "2026-11-22T12:00:00Z"

db := {"available": true}

critical := {"id": "GHSA-xvch-5gv4-984h", "aliases": ["CVE-2021-44906"], "package": "minimist", "version": "1.2.5", "severity": "CRITICAL", "fixed_versions": ["1.2.6"]}

fp_fixture := "tgfp1:5d1c0b3a9e7f44e2a6b8c0d2e4f61728"

secret := {"rule": "github-pat", "file": "a.js", "line": 3, "fingerprint": fp_fixture}

exc(finding, extra) := object.union(
	{
		"id": "exc-0000000000000001", "tenant": "acme", "scope": "app", "app": "todo",
		"finding": finding, "reason": "fixture", "approver": "sec@acme",
		"created_at": "2026-11-01T00:00:00Z", "expires_at": "2026-12-01T00:00:00Z",
	},
	extra,
)

vuln_exc := exc({"vulnerability": "CVE-2021-44906", "package": "minimist"}, {})

deep_with(excs) := d if {
	d := deep.decision with input as {
		"scan": {"app": "todo"}, "now": now, "exceptions": excs,
		"packages": [], "vulnerabilities": [critical], "vulndb": db,
	}
}

test_vulnerability_exception_by_alias_applies if {
	d := deep_with([vuln_exc])
	d.verdict == "pass"
	count(d.exceptions) == 1
	d.exceptions[0].id == "exc-0000000000000001"
	d.exceptions[0].expires_at == "2026-12-01T00:00:00Z"
}

test_expired_exception_stops_applying if {
	d := deep_with([exc({"vulnerability": "CVE-2021-44906", "package": "minimist"}, {"expires_at": "2026-11-22T12:00:00Z"})])
	d.verdict == "block"
	count(d.exceptions) == 0
}

test_exception_not_yet_created_does_not_apply if {
	d := deep_with([exc({"vulnerability": "CVE-2021-44906", "package": "minimist"}, {"created_at": "2026-11-23T00:00:00Z"})])
	d.verdict == "block"
}

test_revoked_exception_does_not_apply if {
	d := deep_with([exc({"vulnerability": "CVE-2021-44906", "package": "minimist"}, {"revoked": {"by": "x"}})])
	d.verdict == "block"
}

test_other_package_is_not_covered if {
	d := deep_with([exc({"vulnerability": "CVE-2021-44906", "package": "lodash"}, {})])
	d.verdict == "block"
}

test_other_app_is_not_covered if {
	d := deep_with([exc({"vulnerability": "CVE-2021-44906", "package": "minimist"}, {"app": "notes"})])
	d.verdict == "block"
}

test_tenant_wide_exception_covers_every_app if {
	d := deep_with([exc({"vulnerability": "GHSA-xvch-5gv4-984h", "package": "minimist"}, {"scope": "tenant", "app": ""})])
	d.verdict == "pass"
}

test_secret_exception_by_fingerprint if {
	d := fast.decision with input as {
		"scan": {"app": "todo", "commit": "", "labels": []}, "now": now,
		"exceptions": [exc({"secret_fingerprint": fp_fixture}, {})], "secrets": [secret],
	}
	d.verdict == "pass"
	d.exceptions[0].finding.secret_fingerprint == fp_fixture
}

# The accepted fixture's file:rule:line now holds another value: another
# fingerprint, which the fixture's exception does not cover.
test_secret_exception_does_not_cover_another_value_on_its_line if {
	d := fast.decision with input as {
		"scan": {"app": "todo", "commit": "", "labels": []}, "now": now,
		"exceptions": [exc({"secret_fingerprint": fp_fixture}, {})],
		"secrets": [object.union(secret, {"fingerprint": "tgfp1:99aa0b3a9e7f44e2a6b8c0d2e4f61728"})],
	}
	d.verdict == "block"
	count(d.exceptions) == 0
}

# An exception by place (the old file:rule:line form) covers nothing, even a
# finding that still carries such a fingerprint.
test_secret_exception_by_place_covers_nothing if {
	d := fast.decision with input as {
		"scan": {"app": "todo", "commit": "", "labels": []}, "now": now,
		"exceptions": [exc({"secret_fingerprint": "a.js:github-pat:3"}, {})],
		"secrets": [object.union(secret, {"fingerprint": "a.js:github-pat:3"})],
	}
	d.verdict == "block"
	count(d.exceptions) == 0
}

test_secret_without_exception_blocks if {
	d := fast.decision with input as {
		"scan": {"app": "todo", "commit": "", "labels": []}, "now": now,
		"exceptions": [exc({"secret_fingerprint": "tgfp1:00000000000000000000000000000000"}, {})], "secrets": [secret],
	}
	d.verdict == "block"
	count(d.exceptions) == 0
}

test_rule_exception_drops_the_rule if {
	d := deep.decision with input as {
		"scan": {"app": "todo"}, "now": now, "exceptions": [exc({"rule": "vulnerabilities.no_db"}, {})],
		"packages": [], "vulnerabilities": [], "vulndb": {"available": false},
	}
	d.verdict == "pass"
	d.exceptions[0].finding.rule == "vulnerabilities.no_db"
}

test_rule_exception_by_check_id_drops_a_misconfiguration if {
	m := {"id": "DS-0002", "title": "Image user should not be root", "severity": "HIGH", "type": "dockerfile", "file": "Dockerfile", "start_line": 1, "end_line": 1}
	d := deep.decision with input as {
		"scan": {"app": "todo"}, "now": now, "exceptions": [exc({"rule": "DS-0002"}, {})],
		"packages": [], "vulnerabilities": [], "misconfigurations": [m], "vulndb": db,
	}
	d.verdict == "pass"
	d.exceptions[0].finding.rule == "DS-0002"
}

# Code weaknesses: covered by their fingerprint, or every one of a rule by
# the rule id.

weakness := {
	"rule": "js-sql-injection", "cwe": ["CWE-89"], "severity": "high", "confidence": "high",
	"file": "src/db.js", "line": 14, "end_line": 14, "message": "SQL query built from request data",
	"fingerprint": "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9", "trace": [],
}

fast_weaknesses(excs, weaknesses) := d if {
	d := fast.decision with input as {
		"scan": {"app": "todo", "commit": "", "labels": []}, "now": now,
		"exceptions": excs, "secrets": [], "weaknesses": weaknesses,
	}
}

test_weakness_exception_by_fingerprint if {
	d := fast_weaknesses([exc({"weakness_fingerprint": weakness.fingerprint}, {})], [weakness])
	d.verdict == "pass"
	d.exceptions[0].finding.weakness_fingerprint == weakness.fingerprint
}

# The fingerprint follows the span, not the line: moved down, it is still
# covered; another span of the same rule is not.
test_weakness_exception_follows_the_span if {
	excs := [exc({"weakness_fingerprint": weakness.fingerprint}, {})]
	fast_weaknesses(excs, [object.union(weakness, {"line": 40, "end_line": 40})]).verdict == "pass"
	other := object.union(weakness, {"fingerprint": "tgw1:0000000000000000000000000000000000000000000000000000000000000001"})
	d := fast_weaknesses(excs, [other])
	d.verdict == "block"
	count(d.exceptions) == 0
}

test_weakness_exception_by_rule_id if {
	d := fast_weaknesses([exc({"rule": "js-sql-injection"}, {})], [weakness, object.union(weakness, {"line": 30, "fingerprint": "tgw1:00000000000000000000000000000000000000000000000000000000000000aa"})])
	d.verdict == "pass"
	count(d.exceptions) == 1
	d.exceptions[0].finding.rule == "js-sql-injection"
}

test_weakness_exception_by_other_rule_covers_nothing if {
	d := fast_weaknesses([exc({"rule": "js-eval"}, {})], [weakness])
	d.verdict == "block"
	count(d.exceptions) == 0
}

# A fingerprint of another format (a secret's, or a bare hash) covers no
# weakness, even one that carries it.
test_weakness_exception_needs_a_weakness_fingerprint if {
	odd := object.union(weakness, {"fingerprint": "3f0c2a9d5e7b41c8"})
	d := fast_weaknesses([exc({"weakness_fingerprint": "3f0c2a9d5e7b41c8"}, {})], [odd])
	d.verdict == "block"
	count(d.exceptions) == 0
}

test_expired_weakness_exception_stops_applying if {
	d := fast_weaknesses([exc({"weakness_fingerprint": weakness.fingerprint}, {"expires_at": "2026-11-22T12:00:00Z"})], [weakness])
	d.verdict == "block"
}
