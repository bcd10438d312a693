# Human review: some changes need a person before they ship. The scan then
# waits for a reviewer (role reviewer, not the submitter) to approve or
# reject it; no decision within the timeout blocks it.
#
# input: {"scan": {app, labels, ...}, "touches": {"auth": [files], "secrets": [files], "egress": [files],
#         "truncated": [what was not read in full], "skipped": [dependency trees not read]}, ...}
package tollgate.review

import data.tollgate.lib

cfg := data.tollgate.config.review

# An AI-generated change that touches authentication, secrets handling or
# network egress.
review contains {
	"policy": "review.ai_sensitive",
	"message": sprintf("labelled %q and touches %s (%s): a reviewer must approve it", [label, area, concat(", ", array.slice(files, 0, 3))]),
} if {
	some label in input.scan.labels
	label in cfg.labels
	some area in cfg.areas
	files := object.get(object.get(input, "touches", {}), area, [])
	count(files) > 0
}

# An AI-generated change whose tree the trigger could not read in full (too
# many files, a file over the byte cap, an unreadable file): what was not
# read may touch anything, so a reviewer must look. Truncation never means
# "touches nothing".
review contains {
	"policy": "review.ai_unread",
	"message": sprintf("labelled %q and not read in full (%s): a reviewer must approve it", [label, concat(", ", array.slice(unread, 0, 3))]),
} if {
	some label in input.scan.labels
	label in cfg.labels
	unread := object.get(object.get(input, "touches", {}), "truncated", [])
	count(unread) > 0
}

kept := {r | some r in review; not lib.rule_excepted(r)}

decision := {
	"verdict": "review",
	"reasons": [object.union(r, {"verdict": "review"}) | some r in kept],
	"timeout": cfg.timeout,
} if count(kept) > 0

decision := {"verdict": "pass", "reasons": []} if count(kept) == 0
