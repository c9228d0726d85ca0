// Pure translator: Decision -> Envoy's CheckResponse. Denials carry a uniform body per status
// that never says which check failed (REC-API-23); the reason goes to the log instead.
import type { Decision } from '../check/decision.js';
import type { HeaderValueOption } from '../gen/envoy/config/core/v3/HeaderValueOption.js';
import type { CheckResponse } from '../gen/envoy/service/auth/v3/CheckResponse.js';
import type { Struct } from '../gen/google/protobuf/Struct.js';
import type { StatusCode } from '../gen/envoy/type/v3/StatusCode.js';

// google.rpc.Code values.
const RPC_OK = 0;
const RPC_PERMISSION_DENIED = 7;
const RPC_UNAVAILABLE = 14;
const RPC_UNAUTHENTICATED = 16;

const DENY_BODIES: Readonly<Record<number, string>> = {
  401: '{"error":"unauthenticated","message":"Valid credentials are required."}',
  403: '{"error":"forbidden","message":"Access denied."}',
};
const UNAVAILABLE_BODY = '{"error":"unavailable","message":"Authorization is temporarily unavailable."}';

/** Envoy overwrites an existing header of the same name: a client cannot pre-set our headers. */
function overwrite(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

function stringStruct(fields: Record<string, string>): Struct {
  return { fields: Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, { stringValue: v }])) };
}

export function denyBody(status: number): string {
  return DENY_BODIES[status] ?? (status >= 500 ? UNAVAILABLE_BODY : DENY_BODIES[403]!);
}

export function toCheckResponse(d: Decision): CheckResponse {
  if (d.allowed) {
    const meta: Record<string, string> = { route: d.route };
    const id = d.identity;
    if (id) {
      meta.subject = id.subject;
      meta.issuer = id.issuer;
      meta.subject_kind = id.kind;
      meta.auth_method = id.method;
      if (id.workload) meta.workload = id.workload.id;
    }
    return {
      status: { code: RPC_OK },
      ok_response: {
        headers: Object.entries(d.upstreamHeaders).map(([k, v]) => overwrite(k, v)),
        headers_to_remove: [...d.removeHeaders],
      },
      // Read by later filters (e.g. rate limits keyed on the verified subject).
      dynamic_metadata: stringStruct(meta),
    };
  }
  const headers = [overwrite('content-type', 'application/json'), overwrite('cache-control', 'no-store')];
  if (d.status === 401) headers.push(overwrite('www-authenticate', d.challenge ?? 'Bearer'));
  const rpc = d.status === 401 ? RPC_UNAUTHENTICATED : d.status >= 500 ? RPC_UNAVAILABLE : RPC_PERMISSION_DENIED;
  return {
    status: { code: rpc },
    // proto3 enums are open: any HTTP status number encodes, named in Envoy's enum or not.
    denied_response: { status: { code: d.status as StatusCode }, headers, body: denyBody(d.status) },
  };
}
