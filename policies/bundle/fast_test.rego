package tollgate.fast_test

import data.tollgate.fast

scan := {"app": "todo", "commit": "", "labels": [], "full": false}

test_clean_scan_passes if {
	d := fast.decision with input as {"scan": scan, "secrets": []}
	d.verdict == "pass"
	d.reasons == []
}

test_any_secret_blocks if {
	s := {"rule": "github-pat", "file": "src/config.js", "line": 3, "fingerprint": "tgfp1:5d1c0b3a9e7f44e2a6b8c0d2e4f61728"}
	d := fast.decision with input as {"scan": scan, "secrets": [s]}
	d.verdict == "block"
	d.reasons[0].policy == "secrets.none"
	d.reasons[0].verdict == "block"
	contains(d.reasons[0].message, "src/config.js:3")
}

test_bad_app_name_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"app": "../Evil App"}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.app_name"
}

test_good_commit_passes if {
	d := fast.decision with input as {"scan": object.union(scan, {"commit": "0123abc"}), "secrets": []}
	d.verdict == "pass"
}

test_bad_commit_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"commit": "main; rm -rf"}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.commit"
}

test_too_many_labels_block if {
	labels := [sprintf("l%d", [i]) | some i in numbers.range(1, 40)]
	d := fast.decision with input as {"scan": object.union(scan, {"labels": labels}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.labels"
}

test_do_not_ship_label_blocks if {
	d := fast.decision with input as {"scan": object.union(scan, {"labels": ["do-not-ship"]}), "secrets": []}
	d.verdict == "block"
	d.reasons[0].policy == "metadata.do_not_ship"
}

# Code weaknesses (SAST).

sqli := {
	"rule": "js-sql-injection", "cwe": ["CWE-89"], "severity": "high", "confidence": "high",
	"file": "src/db.js", "line": 14, "end_line": 14, "message": "SQL query built from request data",
	"fingerprint": "tgw1:3f0c2a9d5e7b41c8a6d2e0f4b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9",
	"trace": [{"file": "src/db.js", "line": 11, "step": "source: req.query.id"}, {"file": "src/db.js", "line": 14, "step": "sink: db.query"}],
}

weak(fields) := object.union(sqli, fields)

fast_with(weaknesses) := d if {
	d := fast.decision with input as {"scan": scan, "secrets": [], "weaknesses": weaknesses}
}

test_high_severity_high_confidence_weakness_blocks if {
	d := fast_with([sqli])
	d.verdict == "block"
	d.reasons == [{
		"policy": "weaknesses.block", "check": "js-sql-injection", "verdict": "block",
		"message": "js-sql-injection (CWE-89) in src/db.js:14: SQL query built from request data (high severity, high confidence)",
	}]
}

test_critical_weakness_with_high_confidence_blocks if {
	fast_with([weak({"severity": "critical"})]).verdict == "block"
}

test_high_severity_medium_confidence_weakness_warns if {
	d := fast_with([weak({"confidence": "medium"})])
	d.verdict == "warn"
	d.reasons[0].policy == "weaknesses.warn"
	d.reasons[0].check == "js-sql-injection"
	contains(d.reasons[0].message, "src/db.js:14")
}

test_medium_severity_high_confidence_weakness_warns if {
	fast_with([weak({"severity": "medium"})]).verdict == "warn"
}

test_no_weaknesses_passes if {
	fast_with([]).verdict == "pass"
	# An input from before the code scanner (no weaknesses at all) too.
	d := fast.decision with input as {"scan": scan, "secrets": []}
	d.verdict == "pass"
}

test_weakness_without_cwe_says_so if {
	d := fast_with([weak({"cwe": [], "confidence": "low"})])
	contains(d.reasons[0].message, "js-sql-injection (no CWE) in src/db.js:14")
}

test_one_reason_per_weakness if {
	d := fast_with([sqli, weak({"line": 20}), weak({"rule": "js-eval", "cwe": ["CWE-95"], "severity": "low"})])
	count(d.reasons) == 3
	[r.verdict | some r in d.reasons] == ["block", "block", "warn"]
}

# A tenant tunes the thresholds and silences rules or CWEs in data; other
# tenants keep the defaults.
tuned := {
	"defaults": {"block_severities": ["critical", "high"], "block_confidences": ["high"], "disabled_rules": [], "disabled_cwes": []},
	"tenants": {
		"acme": {"disabled_rules": ["js-sql-injection"]},
		"globex": {"disabled_cwes": ["cwe-89"]},
		"initech": {"block_severities": ["critical", "high", "medium"], "block_confidences": ["high", "medium"]},
	},
}

tenant_fast(tenant, weaknesses) := d if {
	d := fast.decision with input as {"scan": object.union(scan, {"tenant": tenant}), "secrets": [], "weaknesses": weaknesses}
		with data.tollgate.config.weaknesses as tuned
}

test_tenant_disables_a_rule if {
	tenant_fast("acme", [sqli]).verdict == "pass"
	tenant_fast("acme", [weak({"rule": "js-eval", "cwe": ["CWE-95"]})]).verdict == "block"
	tenant_fast("other", [sqli]).verdict == "block"
}

test_tenant_disables_a_cwe if {
	tenant_fast("globex", [sqli]).verdict == "pass"
	tenant_fast("globex", [weak({"cwe": ["CWE-78"]})]).verdict == "block"
}

test_tenant_lowers_the_block_threshold if {
	tenant_fast("initech", [weak({"severity": "medium", "confidence": "medium"})]).verdict == "block"
	tenant_fast("initech", [weak({"severity": "low"})]).verdict == "warn"
	tenant_fast("other", [weak({"severity": "medium", "confidence": "medium"})]).verdict == "warn"
}

# A bundle whose data has no weakness settings takes the built-in ones.
test_weakness_defaults_without_data if {
	d := fast.decision with input as {"scan": scan, "secrets": [], "weaknesses": [sqli]}
		with data.tollgate.config.weaknesses as {}
	d.verdict == "block"
}
