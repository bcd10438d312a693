# Shared helpers of the default tollgate policy bundle.
package tollgate.lib

# decide turns a stage's block and warn sets into its decision. Every verdict
# carries its reasons, the blocking ones first.
decide(block, warn) := {"verdict": "block", "reasons": reasons(block, warn)} if count(block) > 0

decide(block, warn) := {"verdict": "warn", "reasons": reasons(block, warn)} if {
	count(block) == 0
	count(warn) > 0
}

decide(block, warn) := {"verdict": "pass", "reasons": []} if {
	count(block) == 0
	count(warn) == 0
}

reasons(block, warn) := array.concat(
	[object.union(r, {"verdict": "block"}) | some r in block],
	[object.union(r, {"verdict": "warn"}) | some r in warn],
)
