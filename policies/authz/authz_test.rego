package tollgate.authz_test

import data.tollgate.authz

ci := {"name": "ci-a", "tenant": "a", "roles": ["ci"]}

sre := {"name": "sre-a", "tenant": "a", "roles": ["sre"]}

admin := {"name": "root", "tenant": "ops", "roles": ["admin"]}

test_ci_creates_in_own_tenant if authz.allow with input as {"principal": ci, "action": "scan.create", "resource": {"tenant": "a"}}

test_ci_cannot_create_in_other_tenant if not authz.allow with input as {"principal": ci, "action": "scan.create", "resource": {"tenant": "b"}}

test_sre_cannot_create if not authz.allow with input as {"principal": sre, "action": "scan.create", "resource": {"tenant": "a"}}

test_reads_own_tenant if authz.allow with input as {"principal": sre, "action": "scan.read", "resource": {"tenant": "a"}}

test_no_read_across_tenants if not authz.allow with input as {"principal": ci, "action": "scan.read", "resource": {"tenant": "b"}}

test_no_roles_reads_nothing if not authz.allow with input as {"principal": {"name": "x", "tenant": "a", "roles": []}, "action": "scan.read", "resource": {"tenant": "a"}}

test_admin_acts_in_own_tenant if {
	authz.allow with input as {"principal": admin, "action": "scan.read", "resource": {"tenant": "ops"}}
	authz.allow with input as {"principal": admin, "action": "rollback.create", "resource": {"tenant": "ops"}}
}

test_admin_does_not_act_in_other_tenants if {
	not authz.allow with input as {"principal": admin, "action": "scan.read", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": admin, "action": "scan.list", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": admin, "action": "rollback.create", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": admin, "action": "exception.revoke", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": admin, "action": "pools.read", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": admin, "action": "rematch.run", "resource": {"tenant": "b"}}
}

test_unknown_action_denied if not authz.allow with input as {"principal": ci, "action": "scan.delete", "resource": {"tenant": "a"}}

test_denial_has_reason if {
	d := authz.decision with input as {"principal": ci, "action": "scan.read", "resource": {"tenant": "b"}}
	not d.allow
	contains(d.reason, "ci-a may not scan.read")
}

oncall := {"name": "alice", "tenant": "a", "roles": ["oncall"]}

deployer := {"name": "deploy-bot", "tenant": "a", "roles": ["deployer"]}

test_ci_and_deployer_record_releases if {
	authz.allow with input as {"principal": ci, "action": "release.create", "resource": {"tenant": "a"}}
	authz.allow with input as {"principal": deployer, "action": "release.create", "resource": {"tenant": "a"}}
}

test_oncall_does_not_record_releases if not authz.allow with input as {"principal": oncall, "action": "release.create", "resource": {"tenant": "a"}}

test_no_release_across_tenants if not authz.allow with input as {"principal": ci, "action": "release.create", "resource": {"tenant": "b"}}

test_oncall_rolls_back_and_freezes if {
	authz.allow with input as {"principal": oncall, "action": "rollback.create", "resource": {"tenant": "a"}}
	authz.allow with input as {"principal": oncall, "action": "guard.freeze", "resource": {"tenant": "a"}}
}

test_only_oncall_rolls_back if {
	not authz.allow with input as {"principal": ci, "action": "rollback.create", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": deployer, "action": "guard.freeze", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": sre, "action": "rollback.create", "resource": {"tenant": "a"}}
}

test_oncall_only_in_own_tenant if not authz.allow with input as {"principal": oncall, "action": "rollback.create", "resource": {"tenant": "b"}}

test_only_oncall_revives_idle_apps_in_its_own_tenant if {
	authz.allow with input as {"principal": oncall, "action": "app.revive", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": oncall, "action": "app.revive", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": ci, "action": "app.revive", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": deployer, "action": "app.revive", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": sre, "action": "app.revive", "resource": {"tenant": "a"}}
}

test_health_push_needs_the_health_role if {
	health := {"name": "exporter-a", "tenant": "a", "roles": ["health"]}
	authz.allow with input as {"principal": health, "action": "health.push", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": health, "action": "health.push", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": ci, "action": "health.push", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": deployer, "action": "health.push", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": sre, "action": "health.push", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": health, "action": "scan.create", "resource": {"tenant": "a"}}
}

test_any_role_reads_apps if authz.allow with input as {"principal": sre, "action": "app.read", "resource": {"tenant": "a"}}

test_sre_reads_pools if authz.allow with input as {"principal": sre, "action": "pools.read", "resource": {"tenant": "a"}}

test_sre_reads_pools_only_for_own_tenant if not authz.allow with input as {"principal": sre, "action": "pools.read", "resource": {"tenant": "b"}}

test_ci_does_not_read_pools if not authz.allow with input as {"principal": ci, "action": "pools.read", "resource": {"tenant": "a"}}

security := {"name": "sec", "tenant": "a", "roles": ["security"]}

reviewer := {"name": "rev", "tenant": "a", "roles": ["reviewer"]}

test_security_manages_exceptions if {
	authz.allow with input as {"principal": security, "action": "exception.create", "resource": {"tenant": "a"}}
	authz.allow with input as {"principal": security, "action": "exception.revoke", "resource": {"tenant": "a"}}
}

test_only_security_manages_exceptions if {
	not authz.allow with input as {"principal": ci, "action": "exception.create", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": reviewer, "action": "exception.revoke", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": security, "action": "exception.create", "resource": {"tenant": "b"}}
}

test_any_role_reads_exceptions if {
	authz.allow with input as {"principal": ci, "action": "exception.read", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": ci, "action": "exception.read", "resource": {"tenant": "b"}}
}

test_only_security_adds_vex_and_any_role_reads_it if {
	authz.allow with input as {"principal": security, "action": "vex.create", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": security, "action": "vex.create", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": ci, "action": "vex.create", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": reviewer, "action": "vex.create", "resource": {"tenant": "a"}}
	authz.allow with input as {"principal": ci, "action": "vex.read", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": ci, "action": "vex.read", "resource": {"tenant": "b"}}
}

test_reviewer_decides_reviews if {
	authz.allow with input as {"principal": reviewer, "action": "review.decide", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": reviewer, "action": "review.decide", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": ci, "action": "review.decide", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": security, "action": "review.decide", "resource": {"tenant": "a"}}
}

test_sre_and_security_run_rematch if {
	authz.allow with input as {"principal": sre, "action": "rematch.run", "resource": {"tenant": "a"}}
	authz.allow with input as {"principal": security, "action": "rematch.run", "resource": {"tenant": "a"}}
	not authz.allow with input as {"principal": ci, "action": "rematch.run", "resource": {"tenant": "a"}}
}

test_rematch_only_for_own_tenant if {
	not authz.allow with input as {"principal": sre, "action": "rematch.run", "resource": {"tenant": "b"}}
	not authz.allow with input as {"principal": security, "action": "rematch.run", "resource": {"tenant": "b"}}
}
