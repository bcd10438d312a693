# The fast stage: runs on every scan before anything expensive. A block here
# ends the scan (fast-fail) unless the scan asked for the full run.
#
# input: {"scan": {app, commit, labels, full}, "secrets": [{rule, file, line, fingerprint}]}
package tollgate.fast

import data.tollgate.lib

# The permission manifest's rules (manifest.rego) add to block and warn.
decision := lib.decide(block, warn)

# Any secret in the code blocks, unless an exception accepts it by its
# fingerprint (a test fixture, a revoked key kept in history).
block contains {
	"policy": "secrets.none",
	"message": sprintf("secret found by rule %q in %s:%d (fingerprint %s)", [s.rule, s.file, s.line, s.fingerprint]),
} if {
	some s in input.secrets
	not lib.excepted_secret(s)
}

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
