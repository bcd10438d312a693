# The idle-app TTL's periods for an app: the defaults in
# data.tollgate.config.ttl.defaults, overridden by the tenant's entry in
# .tenants, then by the app's in .apps (keyed "tenant/app"), as the guard's
# rules are. idle_after: how long an app may go without a scan, a release
# or health traffic before it is marked idle; grace: how long it then stays
# idle, still served, before it is archived (disabled, its guard stopped).
# Input: {"tenant": "...", "app": "..."}. Durations are Go duration strings
# ("720h"); "0s" for idle_after turns the TTL off for that scope.
package tollgate.ttl

ttl_config := object.get(data.tollgate.config, "ttl", {})

defaults := object.get(ttl_config, "defaults", {})

tenant_periods := object.get(ttl_config, ["tenants", input.tenant], {})

app_periods := object.get(ttl_config, ["apps", sprintf("%s/%s", [input.tenant, input.app])], {})

periods := object.union(object.union(defaults, tenant_periods), app_periods)
