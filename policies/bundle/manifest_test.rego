package tollgate.manifest_test

import data.tollgate.fast

scan := {"app": "todo", "commit": "", "labels": [], "full": false}

manifest(perms) := {"present": true, "file": "tollgate.yaml", "valid": true, "permissions": perms}

decide(m) := d if {
	d := fast.decision with input as {"scan": scan, "secrets": [], "manifest": m}
}

policies(d) := {r.policy | some r in d.reasons}

test_allowed_manifest_passes if {
	d := decide(manifest({
		"files": [{"path": "data/todos.json", "access": "write"}],
		"network": [{"host": "api.openai.com", "ports": [443]}, {"host": "eastus.openai.azure.com"}],
		"llm": [{"provider": "openai", "models": ["gpt-4o-mini"], "scopes": ["chat.completions"]}],
	}))
	d.verdict == "pass"
}

test_missing_manifest_warns_by_default if {
	d := decide({"present": false, "valid": false})
	d.verdict == "warn"
	policies(d) == {"manifest.missing"}
}

test_missing_manifest_can_block if {
	d := fast.decision with input as {"scan": scan, "secrets": [], "manifest": {"present": false, "valid": false}}
		with data.tollgate.config.manifest.missing as "block"
	d.verdict == "block"
}

test_missing_manifest_can_pass if {
	d := fast.decision with input as {"scan": scan, "secrets": [], "manifest": {"present": false, "valid": false}}
		with data.tollgate.config.manifest.missing as "pass"
	d.verdict == "pass"
}

test_not_looked_for_is_no_finding if {
	d := fast.decision with input as {"scan": scan, "secrets": []}
	d.verdict == "pass"
}

test_invalid_manifest_blocks_with_the_schema_errors if {
	d := decide({"present": true, "file": "tollgate.yaml", "valid": false, "errors": [{"path": "/permissions/files/0/access", "message": "value must be one of 'read', 'write'"}]})
	d.verdict == "block"
	d.reasons[0].policy == "manifest.invalid"
	contains(d.reasons[0].message, "/permissions/files/0/access")
}

test_absolute_and_escaping_paths_block if {
	every p in ["/etc/passwd", "../secrets", "data/../../x", "C:\\Windows", "~/.ssh/id_rsa", "\\\\server\\share"] {
		d := decide(manifest({"files": [{"path": p, "access": "read"}]}))
		d.verdict == "block"
		"manifest.absolute_path" in policies(d)
	}
}

test_relative_paths_pass if {
	every p in ["data/", "./uploads", "cache/tmp.db"] {
		d := decide(manifest({"files": [{"path": p, "access": "write"}]}))
		d.verdict == "pass"
	}
}

test_unlisted_network_blocks if {
	d := decide(manifest({"network": [{"host": "evil.example.net"}]}))
	d.verdict == "block"
	policies(d) == {"manifest.network_not_allowed"}
}

test_suffix_entry_is_not_a_bare_domain if {
	d := decide(manifest({"network": [{"host": "openai.azure.com.evil.net"}]}))
	d.verdict == "block"
}

test_unlisted_llm_provider_blocks if {
	d := decide(manifest({"llm": [{"provider": "shady-llm"}]}))
	d.verdict == "block"
	policies(d) == {"manifest.llm_provider_not_allowed"}
}

test_wildcards_block if {
	every perms in [
		{"files": [{"path": "data/*", "access": "read"}]},
		{"network": [{"host": "*.openai.com"}]},
		{"llm": [{"provider": "openai", "models": ["*"]}]},
		{"llm": [{"provider": "openai", "scopes": ["chat.*"]}]},
	] {
		d := decide(manifest(perms))
		d.verdict == "block"
		"manifest.wildcard" in policies(d)
	}
}

test_two_manifests_warn if {
	d := decide(object.union(manifest({}), {"ignored": ["app.manifest.json"]}))
	d.verdict == "warn"
	policies(d) == {"manifest.ignored"}
}
