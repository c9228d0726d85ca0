# Example policy for envoy-authz, in the opa-envoy-plugin decision format.
#
# input: the opa-envoy-plugin input (input.attributes, input.parsed_path, input.parsed_query,
# input.parsed_body, ...) plus input.identity - the canonical identity envoy-authz verified
# (null on public routes): {subject, issuer, kind, method, scopes, roles, workload}.
#
# Rules, driven by data.authz (policies/data.json):
#   - public paths are open to everyone;
#   - route- and method-based RBAC: a request is allowed when a rule for its path and method
#     names one of the caller's roles or scopes, or the caller itself (subjects);
#   - /admin is for the admin role only, answered with its own 403 body;
#   - API keys are read-only unless the key carries the "write" scope;
#   - allowed requests get the caller's roles injected for the upstream (x-authz-roles);
#   - per OpenAPI operation (input.operation, openapi.rego): admin-tagged operations need the
#     admin role, and the caller needs the scopes of one of the operation's security requirements.
package envoy.authz

import rego.v1

http := input.attributes.request.http

identity := input.identity

roles := object.get(identity, "roles", []) if identity != null

else := []

scopes := object.get(identity, "scopes", []) if identity != null

else := []

path := concat("/", ["", concat("/", input.parsed_path)])

default allow := {"allowed": false}

allow := {
	"allowed": true,
	"headers": {"x-authz-roles": concat(",", sort(roles))},
	"response_headers_to_add": {"x-authz-policy": "example-rbac"},
} if {
	permitted
	not operation_denied
}

allow := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json"},
	"body": "{\"error\":\"forbidden\",\"message\":\"Administrators only.\"}",
} if {
	admin_path
	not is_admin
}

permitted if {
	public_path
}

permitted if {
	not admin_path
	identity != null
	rbac_allows
	not api_key_write_blocked
}

permitted if {
	admin_path
	is_admin
}

public_path if {
	some p in data.authz.public_paths
	path == p
}

admin_path if {
	path_under(path, "/admin")
}

is_admin if "admin" in roles

rbac_allows if {
	some rule in data.authz.rules
	path_under(path, rule.path_prefix)
	http.method in rule.methods
	granted(rule)
}

granted(rule) if {
	some r in rule.roles
	r in roles
}

granted(rule) if {
	some s in rule.scopes
	s in scopes
}

granted(rule) if {
	identity.subject in object.get(rule, "subjects", [])
}

api_key_write_blocked if {
	identity.workload.method == "api_key"
	not http.method in {"GET", "HEAD"}
	not "write" in scopes
}

# Segment-aware prefix: /orders matches /orders and /orders/1, not /ordersX.
path_under(p, prefix) if p == prefix

path_under(p, prefix) if startswith(p, concat("", [trim_suffix(prefix, "/"), "/"]))
