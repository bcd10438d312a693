# Who may do what through the API. Input:
#   {"principal": {"name", "tenant", "roles": [...]},
#    "action": "scan.create" | "scan.read" | "scan.list" | "release.create" |
#              "app.read" | "health.push" | "rollback.create" | "guard.freeze" |
#              "pools.read" | "exception.create" | "exception.read" |
#              "exception.revoke" | "review.decide" | "rematch.run" |
#              "vex.create" | "vex.read" | "app.revive",
#    "resource": {"tenant": "..."}}
# A decision is {"allow": bool, "reason": "..."}.
# Role health (pushing health samples) grants health.push and nothing else.
# Every rule, admin's included, requires resource.tenant ==
# principal.tenant: no role that spans tenants comes from a token.
package tollgate.authz

default allow := false

# actions are every action this policy decides: GET /v1/whoami asks it about
# each one for the caller's own tenant.
actions := {
	"scan.create", "scan.read", "scan.list", "release.create", "app.read", "health.push",
	"rollback.create", "guard.freeze", "pools.read", "exception.create", "exception.read",
	"exception.revoke", "review.decide", "rematch.run", "vex.create", "vex.read", "app.revive",
}

# Admins may do anything, in their own tenant only: no role that spans
# tenants comes from a token.
allow if {
	"admin" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# CI submits scans for its own tenant.
allow if {
	input.action == "scan.create"
	"ci" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Anyone with a role reads and lists its own tenant's scans, and only those.
allow if {
	input.action in {"scan.read", "scan.list"}
	count(input.principal.roles) > 0
	input.resource.tenant == input.principal.tenant
}

# CI and deployers record releases of their own tenant's apps.
allow if {
	input.action == "release.create"
	some role in {"ci", "deployer"}
	role in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Health samples steer the guard's rollbacks, so pushing them is a role of
# its own (health), given to the exporter that pushes and nothing else: a CI
# or deployer token cannot keep a failing release "healthy".
allow if {
	input.action == "health.push"
	"health" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Only on-call rolls back, freezes and unfreezes.
allow if {
	input.action in {"rollback.create", "guard.freeze"}
	"oncall" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# On-call revives its own tenant's idle or archived apps (the TTL's undo:
# the app is deployed again and its guard restarted).
allow if {
	input.action == "app.revive"
	"oncall" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# SRE reads the worker pools' queues: fleet totals and its own tenant's
# rows only, so the request is for its own tenant.
allow if {
	input.action == "pools.read"
	"sre" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Anyone with a role reads its own tenant's releases and guard status.
allow if {
	input.action == "app.read"
	count(input.principal.roles) > 0
	input.resource.tenant == input.principal.tenant
}

# Security accepts risks (exceptions) for its own tenant, and revokes them.
allow if {
	input.action in {"exception.create", "exception.revoke"}
	"security" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Security adds VEX statements (vendors' not_affected and fixed) for its
# own tenant: like an exception, a statement silences findings.
allow if {
	input.action == "vex.create"
	"security" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# Anyone with a role reads its own tenant's exceptions and VEX documents.
allow if {
	input.action in {"exception.read", "vex.read"}
	count(input.principal.roles) > 0
	input.resource.tenant == input.principal.tenant
}

# Reviewers approve or reject scans waiting for a human review in their own
# tenant (the API also refuses the scan's own submitter).
allow if {
	input.action == "review.decide"
	"reviewer" in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

# SRE and security run the re-matching of their own tenant's live releases
# now (after a DB update); it changes no verdict by itself.
allow if {
	input.action == "rematch.run"
	some role in {"sre", "security"}
	role in input.principal.roles
	input.resource.tenant == input.principal.tenant
}

reason := "allowed" if allow

reason := sprintf("%s may not %s in tenant %q", [input.principal.name, input.action, input.resource.tenant]) if not allow

decision := {"allow": allow, "reason": reason}
