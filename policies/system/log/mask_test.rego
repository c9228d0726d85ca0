package system.log_test

import rego.v1

import data.system.log

event(identity) := {
	"decision_id": "d1",
	"path": "envoy/authz/allow",
	"input": {"attributes": {"request": {"http": {"body": "{\"card\":\"4111\"}"}}}, "identity": identity},
	"result": {"allowed": true},
}

test_bodies_erased if {
	"/input/attributes/request/http/body" in log.mask with input as event(null)
	"/input/parsed_body" in log.mask with input as event(null)
}

test_email_upserted_when_present if {
	m := log.mask with input as event({"subject": "alice", "claims": {"email": "alice@example.com"}})
	{"op": "upsert", "path": "/input/identity/claims/email", "value": "**REDACTED**"} in m
}

test_no_upsert_without_email if {
	m := log.mask with input as event({"subject": "alice", "claims": {}})
	count({r | some r in m; is_object(r)}) == 0
}
