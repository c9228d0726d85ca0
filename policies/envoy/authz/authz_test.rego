package envoy.authz_test

import rego.v1

import data.envoy.authz

req(method, path, identity) := {
	"attributes": {"request": {"http": {"method": method, "path": path, "headers": {}}}},
	"parsed_path": array.slice(split(path, "/"), 1, count(split(path, "/"))),
	"parsed_query": {},
	"identity": identity,
}

user(roles, scopes) := {"subject": "alice", "kind": "user", "method": "jwt", "roles": roles, "scopes": scopes, "workload": null}

api_key(scopes) := {"subject": "svc", "kind": "service_account", "method": "api_key", "roles": [], "scopes": scopes, "workload": {"id": "svc", "method": "api_key"}}

test_public_path_open_to_anonymous if {
	authz.allow.allowed with input as req("GET", "/healthz", null)
}

test_anonymous_denied_elsewhere if {
	not authz.allow.allowed with input as req("GET", "/orders", null)
}

test_buyer_reads_orders if {
	d := authz.allow with input as req("GET", "/orders/1", user(["buyer"], []))
	d.allowed
	d.headers["x-authz-roles"] == "buyer"
	d.response_headers_to_add["x-authz-policy"] == "example-rbac"
}

test_scope_grants_read if {
	authz.allow.allowed with input as req("GET", "/orders", user([], ["orders:read"]))
}

test_buyer_cannot_write if {
	not authz.allow.allowed with input as req("POST", "/orders", user(["buyer"], []))
}

test_prefix_is_segment_aware if {
	not authz.allow.allowed with input as req("GET", "/ordersX", user(["buyer"], []))
}

test_admin_path_admin_only if {
	authz.allow.allowed with input as req("GET", "/admin/users", user(["admin"], []))
	d := authz.allow with input as req("GET", "/admin/users", user(["buyer"], []))
	not d.allowed
	d.http_status == 403
	contains(d.body, "Administrators only")
}

test_api_key_read_only_without_write_scope if {
	authz.allow.allowed with input as req("GET", "/orders", api_key(["orders:read"]))
	not authz.allow.allowed with input as req("DELETE", "/orders/1", api_key(["orders:write"]))
	authz.allow.allowed with input as req("DELETE", "/orders/1", api_key(["orders:write", "write"]))
}

test_named_subject_granted if {
	authz.allow.allowed with input as req("GET", "/hello", {"subject": "spiffe://dev.local/ns/demo/sa/client", "roles": [], "scopes": [], "workload": {"method": "mtls"}})
	not authz.allow.allowed with input as req("GET", "/hello", {"subject": "spiffe://dev.local/ns/demo/sa/other", "roles": [], "scopes": [], "workload": {"method": "mtls"}})
}

# input.operation, as envoy-authz adds it when an OpenAPI spec matched the request.
op(tags, security) := {"spec": "demo", "operation_id": "x", "method": "GET", "path_template": "/orders/{orderId}", "tags": tags, "security": security, "extensions": {}, "deprecated": false}

with_op(r, o) := object.union(r, {"operation": o})

test_operation_tagged_admin_needs_admin_role if {
	not authz.allow.allowed with input as with_op(req("GET", "/orders/1", user(["buyer"], [])), op(["admin"], []))
	authz.allow.allowed with input as with_op(req("GET", "/orders/1", user(["admin"], [])), op(["admin"], []))
}

test_operation_scopes_from_security_requirements if {
	# One requirement with all its scopes is enough; a requirement without scopes is met by authentication.
	reqs := [{"bearer": ["orders:read", "orders:audit"]}, {"mtls": []}]
	authz.allow.allowed with input as with_op(req("GET", "/orders/1", user(["buyer"], ["orders:read", "orders:audit"])), op([], [{"bearer": ["orders:read", "orders:audit"]}]))
	not authz.allow.allowed with input as with_op(req("GET", "/orders/1", user(["buyer"], ["orders:read"])), op([], [{"bearer": ["orders:read", "orders:audit"]}]))
	authz.allow.allowed with input as with_op(req("GET", "/orders/1", user(["buyer"], [])), op([], reqs))
}

test_no_operation_no_operation_rules if {
	# Without an OpenAPI match (no input.operation) the path rules alone decide.
	authz.allow.allowed with input as req("GET", "/orders/1", user(["buyer"], []))
}
