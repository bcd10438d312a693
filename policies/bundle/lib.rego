# Shared helpers of the default tollgate policy bundle.
package tollgate.lib

# decide turns a stage's block and warn sets into its decision. Every verdict
# carries its reasons, the blocking ones first, and the exceptions it applied.
# A reason whose rule (its "policy", or its "check" id) an exception in force
# covers is dropped; so are findings the stage's rules skip with
# excepted_vulnerability, excepted_secret and excepted_weakness.
#
# A reason about a finding carries the finding's baseline state (state(f):
# "new" or "known" against the app's baseline scan, "unmarked" when the scan
# had none). For a tenant that blocks on new findings only (block_new_only,
# see gate), new findings of every rule but always_block_policies block, and
# known ones only warn. A scan without a baseline (an app's first, before any
# release is known-good) has nothing to compare with: its findings are
# unmarked and keep their rules' own verdicts, as for every other tenant, so
# the first release can set the baseline. "unmarked" is dropped from the
# reason.
decide(block, warn) := {
	"verdict": verdict(b, w),
	"reasons": reasons(b, w),
	"exceptions": [a | some a in applied(block, warn)],
	"vex": [s | some s in applied_vex],
} if {
	b0 := {r | some r in block; not rule_excepted(r)}
	w0 := {r | some r in warn; not rule_excepted(r)}
	b := {shown(r) | some r in b0; gate(r, "block") == "block"} | {shown(r) | some r in w0; gate(r, "warn") == "block"}
	w := {shown(r) | some r in w0; gate(r, "warn") == "warn"} | {shown(r) | some r in b0; gate(r, "block") == "warn"}
}

# state is a finding's baseline state for its reason.
state(f) := object.get(f, "baseline", "unmarked")

# The rules that block whatever the baseline: every CRITICAL vulnerability
# and every secret.
always_block_policies := {"vulnerabilities.critical", "secrets.none"}

# baseline_settings are data.tollgate.config.baseline.defaults, overridden
# field by field by the scan's tenant's entry in .tenants.
baseline_config := object.get(data.tollgate.config, "baseline", {})

baseline_settings := object.union(
	object.union({"block_new_only": false}, object.get(baseline_config, "defaults", {})),
	object.get(baseline_config, ["tenants", object.get(object.get(input, "scan", {}), "tenant", "")], {}),
)

# gate is where reason r goes ("block" or "warn"), from where its rule put
# it (orig).
gate(r, orig) := "block" if {
	baseline_settings.block_new_only == true
	object.get(r, "baseline", "") == "new"
	not r.policy in always_block_policies
} else := "warn" if {
	baseline_settings.block_new_only == true
	object.get(r, "baseline", "") == "known"
	not r.policy in always_block_policies
} else := orig

shown(r) := object.remove(r, ["baseline"]) if {
	r.baseline == "unmarked"
} else := r

verdict(b, _) := "block" if count(b) > 0

verdict(b, w) := "warn" if {
	count(b) == 0
	count(w) > 0
}

verdict(b, w) := "pass" if {
	count(b) == 0
	count(w) == 0
}

reasons(block, warn) := array.concat(
	[object.union(r, {"verdict": "block"}) | some r in block],
	[object.union(r, {"verdict": "warn"}) | some r in warn],
)

# Exceptions (input.exceptions, loaded for the scan's tenant) in force at
# input.now for the scan's app: not revoked, not expired, app- or
# tenant-wide. An expired exception stops applying here, by itself.
in_force contains e if {
	some e in object.get(input, "exceptions", [])
	not e.revoked
	time.parse_rfc3339_ns(e.created_at) <= time.parse_rfc3339_ns(input.now)
	time.parse_rfc3339_ns(input.now) < time.parse_rfc3339_ns(e.expires_at)
	covers(e)
}

covers(e) if e.scope == "tenant"

covers(e) if {
	e.scope == "app"
	e.app == input.scan.app
}

# The exceptions in force that accept vulnerability v (by id or alias, in
# its package), secret s (by fingerprint), or every finding of a rule.
vulnerability_exceptions(v) := {e |
	some e in in_force
	e.finding.package == v.package
	e.finding.vulnerability in ({v.id} | {a | some a in object.get(v, "aliases", [])})
}

# A secret is accepted by the keyed hash of its value (tgfp1:...), never by
# its place: an exception naming a file:rule:line (the old gitleaks-style
# fingerprint) would cover any secret later put on that line, and covers
# nothing.
secret_exceptions(s) := {e |
	some e in in_force
	regex.match(`^tgfp1:[0-9a-f]{32}$`, e.finding.secret_fingerprint)
	e.finding.secret_fingerprint == s.fingerprint
}

rule_exceptions(r) := {e |
	some e in in_force
	e.finding.rule != ""
	e.finding.rule in {r.policy, object.get(r, "check", "")}
}

# A code weakness is accepted by its fingerprint (tgw1:..., a hash of its
# rule and normalised code span), wherever the span moves in the file. Every
# weakness of a rule is accepted by the rule id, through the reason's check
# (rule_exceptions).
weakness_exceptions(w) := {e |
	some e in in_force
	regex.match(`^tgw1:[0-9a-f]{16,64}$`, e.finding.weakness_fingerprint)
	e.finding.weakness_fingerprint == w.fingerprint
}

excepted_vulnerability(v) if count(vulnerability_exceptions(v)) > 0

# A VEX statement silences vulnerability v when tollgate resolved it against
# v (input.vex: the statement names v's id or an alias, and v's package by
# purl, as a product or as a subcomponent of a product in the scan's SBOM)
# and it says fixed, or not_affected with a justification. affected,
# under_investigation, false_positive and a bare not_affected silence
# nothing.
excepted_vulnerability(v) if count(vex_statements(v)) > 0

vex_statements(v) := {s |
	some s in object.get(input, "vex", [])
	s.vulnerability == v.id
	s.purl == v.purl
	vex_silences(s)
}

vex_silences(s) if s.status == "fixed"

vex_silences(s) if {
	s.status == "not_affected"
	s.justification != ""
}

excepted_weakness(w) if count(weakness_exceptions(w)) > 0

excepted_secret(s) if count(secret_exceptions(s)) > 0

rule_excepted(r) if count(rule_exceptions(r)) > 0

# What a verdict says of an exception it applied.
summary(e) := {"id": e.id, "scope": e.scope, "finding": e.finding, "expires_at": e.expires_at, "approver": e.approver}

applied(block, warn) := (({summary(e) | some v in object.get(input, "vulnerabilities", []); some e in vulnerability_exceptions(v)} |
	{summary(e) | some s in object.get(input, "secrets", []); some e in secret_exceptions(s)}) |
	{summary(e) | some w in object.get(input, "weaknesses", []); some e in weakness_exceptions(w)}) |
	{summary(e) | some r in (block | warn); some e in rule_exceptions(r)}

# What a verdict says of a VEX statement it applied: the finding it
# silenced and the document it came from, with who added it and when.
applied_vex contains vex_summary(s) if {
	some v in object.get(input, "vulnerabilities", [])
	some s in vex_statements(v)
}

vex_summary(s) := {
	"record": s.record, "format": s.format, "vulnerability": s.vulnerability, "package": s.package,
	"purl": s.purl, "product": s.product, "status": s.status, "justification": s.justification,
	"added_by": s.added_by, "added_at": s.added_at,
}
