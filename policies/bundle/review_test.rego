package tollgate.review_test

import data.tollgate.review

touching(area) := {area: ["src/auth/login.js"]}

test_ai_generated_auth_change_needs_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": touching("auth")}
	d.verdict == "review"
	d.reasons[0].policy == "review.ai_sensitive"
	contains(d.reasons[0].message, "src/auth/login.js")
	d.timeout == "24h"
}

test_secrets_and_egress_need_review if {
	review.decision.verdict == "review" with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": touching("secrets")}
	review.decision.verdict == "review" with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": touching("egress")}
}

test_without_the_label_no_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["team:web"]}, "touches": touching("auth")}
	d.verdict == "pass"
}

test_label_without_sensitive_change_no_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": {"auth": []}}
	d.verdict == "pass"
}

test_no_touches_at_all_no_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}}
	d.verdict == "pass"
}

test_rule_exception_waives_review if {
	d := review.decision with input as {
		"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": touching("auth"), "now": "2026-11-22T00:00:00Z",
		"exceptions": [{
			"id": "exc-0000000000000002", "scope": "app", "app": "todo", "finding": {"rule": "review.ai_sensitive"},
			"created_at": "2026-11-01T00:00:00Z", "expires_at": "2026-12-01T00:00:00Z", "approver": "sec",
		}],
	}
	d.verdict == "pass"
}

test_ai_generated_change_not_read_in_full_needs_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": {"truncated": ["more than 20000 files: the rest of the tree was not read"]}}
	d.verdict == "review"
	d.reasons[0].policy == "review.ai_unread"
	contains(d.reasons[0].message, "20000 files")
}

test_truncation_without_the_label_no_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": []}, "touches": {"truncated": ["big.js: only the first 1048576 bytes read"]}}
	d.verdict == "pass"
}

test_skipped_dependency_trees_alone_no_review if {
	d := review.decision with input as {"scan": {"app": "todo", "labels": ["ai-generated"]}, "touches": {"skipped": ["node_modules/"]}}
	d.verdict == "pass"
}
