package tollgate.ttl_test

import data.tollgate.ttl

test_defaults_are_30_days_and_7_days_of_grace if {
	p := ttl.periods with input as {"tenant": "acme", "app": "todo"}
	p == {"idle_after": "720h", "grace": "168h"}
}

test_tenant_then_app_override if {
	cfg := {"ttl": {
		"defaults": {"idle_after": "720h", "grace": "168h"},
		"tenants": {"acme": {"idle_after": "240h"}},
		"apps": {"acme/todo": {"grace": "24h"}, "other/todo": {"idle_after": "0s"}},
	}}
	p := ttl.periods with input as {"tenant": "acme", "app": "todo"} with data.tollgate.config as cfg
	p == {"idle_after": "240h", "grace": "24h"}
	q := ttl.periods with input as {"tenant": "acme", "app": "shop"} with data.tollgate.config as cfg
	q == {"idle_after": "240h", "grace": "168h"}
}

test_another_tenants_app_entry_does_not_apply if {
	cfg := {"ttl": {"defaults": {"idle_after": "720h"}, "apps": {"other/todo": {"idle_after": "0s"}}}}
	p := ttl.periods with input as {"tenant": "acme", "app": "todo"} with data.tollgate.config as cfg
	p == {"idle_after": "720h"}
}

test_no_ttl_config_is_empty if {
	p := ttl.periods with input as {"tenant": "acme", "app": "todo"} with data.tollgate.config as {}
	p == {}
}
