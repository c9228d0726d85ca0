# Decision-log masking, as OPA's system.log.mask: evaluated with the decision-log event as input
# (input.input is the policy input, input.result the decision), it names JSON pointers to erase
# (strings) or to overwrite ({"op": "upsert", "path": ..., "value": ...}). envoy-authz applies
# them to its decision-log events and to the audit record's fields taken from the input
# (docs/policy-authoring.md). `make policies` adds system/log/mask as an entrypoint when a
# policy defines this package. Credential headers need no rule: they are always masked.
package system.log

import rego.v1

# Request bodies may carry personal data: never logged.
mask contains "/input/attributes/request/http/body"

mask contains "/input/parsed_body"

# The caller's e-mail address (a token claim) is replaced, keeping that there was one.
mask contains {"op": "upsert", "path": "/input/identity/claims/email", "value": "**REDACTED**"} if {
	input.input.identity.claims.email
}
