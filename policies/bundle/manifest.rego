# The permission manifest (tollgate.yaml or app.manifest.json): what files,
# network destinations and LLM scopes an app declares it needs. The fast
# worker reads it and checks it against the JSON Schema (manifest/schema.json);
# these rules allow or deny what it declares.
#
# input.manifest: {"present", "file", "valid", "errors": [{path, message}],
#                  "ignored": [...], "permissions": {"files": [{path, access}],
#                  "network": [{host, ports}], "llm": [{provider, models, scopes}]}}
# (null when the fast worker did not look: then no rule here applies).
#
# data.tollgate.config.manifest: {"missing": "warn" | "block" | "pass",
#   "network_allow": ["api.openai.com", "*.example.com", ...],
#   "llm_providers_allow": ["openai", ...]}
package tollgate.fast

mcfg := data.tollgate.config.manifest

perms := object.get(input.manifest, "permissions", {}) if input.manifest.valid

missing := {
	"policy": "manifest.missing",
	"message": "no permission manifest (tollgate.yaml or app.manifest.json): what the app may touch is undeclared",
}

warn contains missing if {
	input.manifest.present == false
	mcfg.missing == "warn"
}

block contains missing if {
	input.manifest.present == false
	mcfg.missing == "block"
}

block contains {
	"policy": "manifest.invalid",
	"message": sprintf("%s does not match the manifest schema: %s", [input.manifest.file, concat("; ", errs)]),
} if {
	input.manifest.present
	not input.manifest.valid
	errs := [sprintf("%s: %s", [e.path, e.message]) | some e in object.get(input.manifest, "errors", [])]
}

warn contains {
	"policy": "manifest.ignored",
	"message": sprintf("%s is read; %s ignored: keep one manifest", [input.manifest.file, concat(", ", input.manifest.ignored)]),
} if {
	count(object.get(input.manifest, "ignored", [])) > 0
}

# Files: relative paths inside the app only.
block contains {
	"policy": "manifest.absolute_path",
	"message": sprintf("file permission %q must be a path relative to the app, inside it", [f.path]),
} if {
	some f in object.get(perms, "files", [])
	not relative(f.path)
}

relative(p) if {
	norm := replace(p, "\\", "/")
	not startswith(norm, "/")
	not startswith(norm, "~")
	not regex.match(`^[A-Za-z]:`, norm)
	not ".." in split(norm, "/")
}

# Network: only allow-listed destinations. An allow-list entry "*.example.com"
# admits any subdomain of example.com; a declared host never has wildcards.
block contains {
	"policy": "manifest.network_not_allowed",
	"message": sprintf("network destination %q is not on the allow list (%s)", [n.host, concat(", ", mcfg.network_allow)]),
} if {
	some n in object.get(perms, "network", [])
	not contains(n.host, "*")
	not host_allowed(lower(n.host))
}

host_allowed(h) if {
	some a in mcfg.network_allow
	not startswith(a, "*.")
	h == lower(a)
}

host_allowed(h) if {
	some a in mcfg.network_allow
	startswith(a, "*.")
	endswith(h, lower(substring(a, 1, -1)))
}

# LLM providers: only allow-listed ones.
block contains {
	"policy": "manifest.llm_provider_not_allowed",
	"message": sprintf("LLM provider %q is not on the allow list (%s)", [l.provider, concat(", ", mcfg.llm_providers_allow)]),
} if {
	some l in object.get(perms, "llm", [])
	not lower(l.provider) in {lower(p) | some p in mcfg.llm_providers_allow}
}

# No wildcards anywhere: every path, host, model and scope is named.
block contains {
	"policy": "manifest.wildcard",
	"message": sprintf("%s has a wildcard: name each one", [w]),
} if {
	some w in wildcards
}

wildcards contains sprintf("file path %q", [f.path]) if {
	some f in object.get(perms, "files", [])
	contains(f.path, "*")
}

wildcards contains sprintf("network host %q", [n.host]) if {
	some n in object.get(perms, "network", [])
	contains(n.host, "*")
}

wildcards contains sprintf("LLM %s %q of %s", [kind, v, l.provider]) if {
	some l in object.get(perms, "llm", [])
	some kind in ["models", "scopes"]
	some v in object.get(l, kind, [])
	contains(v, "*")
}
