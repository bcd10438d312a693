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

test_admin_reads_any_tenant if authz.allow with input as {"principal": admin, "action": "scan.read", "resource": {"tenant": "b"}}

test_unknown_action_denied if not authz.allow with input as {"principal": ci, "action": "scan.delete", "resource": {"tenant": "a"}}

test_denial_has_reason if {
	d := authz.decision with input as {"principal": ci, "action": "scan.read", "resource": {"tenant": "b"}}
	not d.allow
	contains(d.reason, "ci-a may not scan.read")
}
