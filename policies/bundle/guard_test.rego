package tollgate.guard_test

import data.tollgate.guard

test_defaults_apply if {
	r := guard.rules with input as {"tenant": "acme", "app": "todo"}
	r.error_rate == 0.03
	r.error_window == "5m"
	r.latency_window == "3m"
}

test_tenant_then_app_override if {
	cfg := {"guard": {
		"defaults": {"error_rate": 0.03, "error_window": "5m", "dry_run": false},
		"tenants": {"acme": {"error_rate": 0.05, "dry_run": true}},
		"apps": {"acme/todo": {"error_window": "2m"}, "other/todo": {"error_rate": 0.5}},
	}}
	r := guard.rules with input as {"tenant": "acme", "app": "todo"} with data.tollgate.config as cfg
	r == {"error_rate": 0.05, "error_window": "2m", "dry_run": true}
}

test_no_guard_config_is_empty if {
	r := guard.rules with input as {"tenant": "acme", "app": "todo"} with data.tollgate.config as {}
	r == {}
}
