# Rules per OpenAPI operation (package envoy.authz, read by authz.rego's allow).
#
# input.operation is present only when an `openapi` spec of envoy-authz matched the request
# (like input.identity, it is ours: opa-envoy-plugin has no such field):
#   {spec, operation_id, method, path_template, tags, security, extensions, deprecated}
# security is the operation's security requirements (or the document's), e.g.
#   [{"bearer": ["orders:write"]}, {"mtls": []}]: any one requirement, with all of its scopes.
#
# Example rules:
#   - operations tagged "admin" need the role admin;
#   - the caller must hold every scope of at least one of the operation's security requirements.
package envoy.authz

import rego.v1

operation := object.get(input, "operation", null)

# An operation the caller may not call, whatever the path rules say.
operation_denied if {
	operation != null
	"admin" in operation.tags
	not is_admin
}

operation_denied if {
	operation != null
	count(operation.security) > 0
	not security_met
}

security_met if {
	some requirement in operation.security
	every _, wanted in requirement {
		every scope in wanted {
			scope in scopes
		}
	}
}
