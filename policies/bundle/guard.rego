# The guard's rules for one release of an app: the defaults in
# data.tollgate.config.guard.defaults, overridden by the tenant's entry in
# .tenants, then by the app's in .apps (keyed "tenant/app").
# Input: {"tenant": "...", "app": "..."}. Durations are Go duration strings
# ("30s", "5m"); unset fields take tollgate's built-in defaults.
package tollgate.guard

guard_config := object.get(data.tollgate.config, "guard", {})

defaults := object.get(guard_config, "defaults", {})

tenant_rules := object.get(guard_config, ["tenants", input.tenant], {})

app_rules := object.get(guard_config, ["apps", sprintf("%s/%s", [input.tenant, input.app])], {})

rules := object.union(object.union(defaults, tenant_rules), app_rules)
