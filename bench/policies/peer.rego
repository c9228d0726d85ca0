# RBAC for the Check benchmark, peer side: the same rule, with the JWT verified inside Rego the
# way opa-envoy-plugin users do it (io.jwt.decode_verify against the same JWKS, issuer, audience).
package envoy.authz

import rego.v1

default allow := false

bearer := t if {
	v := input.attributes.request.http.headers.authorization
	startswith(v, "Bearer ")
	t := substring(v, 7, -1)
}

claims := payload if {
	[valid, _, payload] := io.jwt.decode_verify(bearer, {"cert": data.jwks, "iss": data.issuer, "aud": data.audience})
	valid
}

allow if {
	some role in claims.roles
	some grant in data.rbac.roles[role]
	grant.method == input.attributes.request.http.method
	startswith(input.attributes.request.http.path, grant.path_prefix)
}
