# RBAC for the Check benchmark, envoy-authz side: the JWT was verified before the policy runs,
# so the policy reads the canonical identity.
package envoy.authz

import rego.v1

default allow := false

allow if {
	some role in input.identity.roles
	some grant in data.rbac.roles[role]
	grant.method == input.attributes.request.http.method
	startswith(input.attributes.request.http.path, grant.path_prefix)
}
