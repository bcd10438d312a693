package tollgate.baseline_test

import data.tollgate.deep
import data.tollgate.fast

db := {"available": true}

vuln(id, sev, state) := {"id": id, "aliases": [], "package": "lodash", "version": "4.17.4", "severity": sev, "fixed_versions": [], "baseline": state}

secret(state) := {"rule": "github-pat", "file": "a.js", "line": 3, "fingerprint": "tgfp1:00000000000000000000000000000000", "baseline": state}

new_only := {"defaults": {"block_new_only": false}, "tenants": {"strict": {"block_new_only": true}}}

scan(tenant) := {"app": "todo", "commit": "", "labels": [], "full": false, "tenant": tenant}

findings := [vuln("GHSA-known", "HIGH", "known"), vuln("GHSA-new", "HIGH", "new")]

# The default tenant warns on a HIGH vulnerability, new or known, and says
# which it is.
test_default_tenant_warns_on_new_and_known if {
	d := deep.decision with input as {"scan": scan("other"), "packages": [], "vulnerabilities": findings, "vulndb": db}
		with data.tollgate.config.baseline as new_only
	d.verdict == "warn"
	{[r.verdict, r.baseline] | some r in d.reasons} == {["warn", "known"], ["warn", "new"]}
}

# A "new only" tenant blocks on the new HIGH and warns on the known one.
test_new_only_tenant_blocks_on_new_only if {
	d := deep.decision with input as {"scan": scan("strict"), "packages": [], "vulnerabilities": findings, "vulndb": db}
		with data.tollgate.config.baseline as new_only
	d.verdict == "block"
	{[r.verdict, r.baseline, contains(r.message, "GHSA-new")] | some r in d.reasons} == {["warn", "known", false], ["block", "new", true]}
}

# Every CRITICAL vulnerability and every secret block, known or not.
test_new_only_still_blocks_known_critical_and_secret if {
	d := deep.decision with input as {"scan": scan("strict"), "packages": [], "vulnerabilities": [vuln("GHSA-c", "CRITICAL", "known")], "vulndb": db}
		with data.tollgate.config.baseline as new_only
	d.verdict == "block"
	f := fast.decision with input as {"scan": scan("strict"), "secrets": [secret("known")], "weaknesses": []}
		with data.tollgate.config.baseline as new_only
	f.verdict == "block"
}

# Without a baseline (an app's first scans) a "new only" tenant's rules are
# the default's: a HIGH warns, a CRITICAL blocks, and the reasons say
# nothing of a baseline.
test_new_only_without_baseline_keeps_the_rules_and_says_nothing if {
	v := object.remove(vuln("GHSA-x", "HIGH", ""), ["baseline"])
	c := object.remove(vuln("GHSA-c", "CRITICAL", ""), ["baseline"])
	d := deep.decision with input as {"scan": scan("strict"), "packages": [], "vulnerabilities": [v], "vulndb": db}
		with data.tollgate.config.baseline as new_only
	d.verdict == "warn"
	dc := deep.decision with input as {"scan": scan("strict"), "packages": [], "vulnerabilities": [c], "vulndb": db}
		with data.tollgate.config.baseline as new_only
	dc.verdict == "block"
	every r in d.reasons {
		not "baseline" in object.keys(r)
	}
}

# A reason about no finding (no vulnerability DB) keeps its verdict.
test_new_only_leaves_other_reasons if {
	d := deep.decision with input as {"scan": scan("strict"), "packages": [], "vulnerabilities": [], "vulndb": {"available": false}}
		with data.tollgate.config.baseline as new_only
	d.verdict == "warn"
}
