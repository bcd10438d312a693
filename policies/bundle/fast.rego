# The fast stage: runs on every scan before anything expensive. A block here
# ends the scan (fast-fail) unless the scan asked for the full run.
#
# input: {"scan": {app, commit, labels, full, tenant}, "secrets": [{rule, file, line, fingerprint}],
#         "weaknesses": [{rule, cwe, severity, confidence, file, line, message, fingerprint, trace, ...}]}
package tollgate.fast

import data.tollgate.lib

# The permission manifest's rules (manifest.rego) add to block and warn.
decision := lib.decide(block, warn)

# Any secret in the code blocks, unless an exception accepts it by its
# fingerprint (a test fixture, a revoked key kept in history).
block contains {
	"policy": "secrets.none",
	"message": sprintf("secret found by rule %q in %s:%d (fingerprint %s)", [s.rule, s.file, s.line, s.fingerprint]),
	"baseline": lib.state(s),
} if {
	some s in input.secrets
	not lib.excepted_secret(s)
}

# Code weaknesses (SAST). One that is severe enough (severity in
# block_severities) and sure enough (confidence in block_confidences) blocks;
# every other one warns. A rule id or CWE in disabled_rules / disabled_cwes is
# not reported. The settings are data.tollgate.config.weaknesses.defaults,
# overridden field by field by the scan's tenant's entry in .tenants; unset
# fields take the built-in defaults below. An exception covers a weakness by
# its fingerprint (tgw1:...), or every weakness of a rule by its rule id (the
# reason's "check").
block contains {
	"policy": "weaknesses.block",
	"check": w.rule,
	"message": weakness_message(w),
	"baseline": lib.state(w),
} if {
	some w in reported_weaknesses
	blocking_weakness(w)
}

warn contains {
	"policy": "weaknesses.warn",
	"check": w.rule,
	"message": weakness_message(w),
	"baseline": lib.state(w),
} if {
	some w in reported_weaknesses
	not blocking_weakness(w)
}

weakness_builtin := {
	"block_severities": ["critical", "high"],
	"block_confidences": ["high"],
	"disabled_rules": [],
	"disabled_cwes": [],
}

weakness_config := object.get(data.tollgate.config, "weaknesses", {})

weakness_settings := object.union(
	object.union(weakness_builtin, object.get(weakness_config, "defaults", {})),
	object.get(weakness_config, ["tenants", object.get(input.scan, "tenant", "")], {}),
)

reported_weaknesses contains w if {
	some w in object.get(input, "weaknesses", [])
	not w.rule in weakness_settings.disabled_rules
	not disabled_cwe(w)
	not lib.excepted_weakness(w)
}

disabled_cwe(w) if {
	some id in object.get(w, "cwe", [])
	upper(id) in {upper(d) | some d in weakness_settings.disabled_cwes}
}

blocking_weakness(w) if {
	lower(w.severity) in {lower(s) | some s in weakness_settings.block_severities}
	lower(w.confidence) in {lower(c) | some c in weakness_settings.block_confidences}
}

weakness_message(w) := sprintf("%s (%s) in %s:%d: %s (%s severity, %s confidence)", [
	w.rule, cwe_list(w), w.file, w.line, w.message, w.severity, w.confidence,
])

cwe_list(w) := concat(", ", w.cwe) if {
	count(object.get(w, "cwe", [])) > 0
} else := "no CWE"

# App names become bucket keys, metric labels and release names.
block contains {
	"policy": "metadata.app_name",
	"message": sprintf("app name %q must be 1-63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", [input.scan.app]),
} if {
	not regex.match(`^[a-z0-9][a-z0-9._-]{0,62}$`, input.scan.app)
}

block contains {
	"policy": "metadata.commit",
	"message": sprintf("commit %q is not a git object id (7 to 64 hex digits)", [input.scan.commit]),
} if {
	input.scan.commit != ""
	not regex.match(`^[0-9a-f]{7,64}$`, input.scan.commit)
}

block contains {
	"policy": "metadata.labels",
	"message": sprintf("%d labels given, at most %d allowed", [count(input.scan.labels), data.tollgate.config.max_labels]),
} if {
	count(input.scan.labels) > data.tollgate.config.max_labels
}

# A label the submitter uses to say "not for production".
block contains {
	"policy": "metadata.do_not_ship",
	"message": sprintf("the scan carries the label %q", [label]),
} if {
	some label in input.scan.labels
	label in data.tollgate.config.blocking_labels
}
