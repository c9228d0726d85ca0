// Pure translator: Decision -> Envoy's CheckResponse. Denials carry a uniform body per status
// that never says which check failed (REC-API-23) unless a policy sets its own; the reason goes
// to the log instead.
import type { Decision } from '../check/decision.js';
import type { HeaderValueOption } from '../gen/envoy/config/core/v3/HeaderValueOption.js';
import type { CheckResponse } from '../gen/envoy/service/auth/v3/CheckResponse.js';
import type { StatusCode } from '../gen/envoy/type/v3/StatusCode.js';
import type { HeaderList } from '../policy/decision.js';
import { jsonToStruct } from './struct.js';

// google.rpc.Code values.
const RPC_OK = 0;
const RPC_PERMISSION_DENIED = 7;
const RPC_UNAVAILABLE = 14;
const RPC_UNAUTHENTICATED = 16;

const DENY_BODIES: Readonly<Record<number, string>> = {
  400: '{"error":"bad_request","message":"The request path is not valid."}',
  401: '{"error":"unauthenticated","message":"Valid credentials are required."}',
  403: '{"error":"forbidden","message":"Access denied."}',
  429: '{"error":"too_many_requests","message":"Too many requests."}',
};
const UNAVAILABLE_BODY = '{"error":"unavailable","message":"Authorization is temporarily unavailable."}';

/** Envoy overwrites an existing header of the same name: a client cannot pre-set our headers. */
function overwrite(key: string, value: string): HeaderValueOption {
  return { header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

/** A policy's headers, as opa-envoy-plugin sends them (Envoy's default action for ext_authz). */
function plain(list: HeaderList): HeaderValueOption[] {
  return list.map(([key, value]) => ({ header: { key, value } }));
}

export function denyBody(status: number): string {
  return DENY_BODIES[status] ?? (status >= 500 ? UNAVAILABLE_BODY : DENY_BODIES[403]!);
}

export function toCheckResponse(d: Decision): CheckResponse {
  if (d.allowed) {
    const meta: Record<string, unknown> = { ...d.policy?.dynamicMetadata, route: d.route };
    const id = d.identity;
    if (id) {
      meta.subject = id.subject;
      meta.issuer = id.issuer;
      meta.subject_kind = id.kind;
      meta.auth_method = id.method;
      if (id.workload) meta.workload = id.workload.id;
    }
    if (d.policyRevision !== undefined) meta.policy_revision = d.policyRevision;
    const p = d.policy;
    return {
      status: { code: RPC_OK },
      ok_response: {
        headers: [...Object.entries(d.upstreamHeaders).map(([k, v]) => overwrite(k, v)), ...plain(p?.headers ?? [])],
        headers_to_remove: [...d.removeHeaders],
        ...(p && p.responseHeadersToAdd.length > 0 ? { response_headers_to_add: plain(p.responseHeadersToAdd) } : {}),
        ...(p && p.queryParametersToSet.length > 0 ? { query_parameters_to_set: p.queryParametersToSet.map(([key, value]) => ({ key, value })) } : {}),
        ...(p && p.queryParametersToRemove.length > 0 ? { query_parameters_to_remove: [...p.queryParametersToRemove] } : {}),
      },
      // Read by later filters (e.g. rate limits keyed on the verified subject).
      dynamic_metadata: jsonToStruct(meta),
    };
  }
  const own = d.policy;
  const headers = own
    ? plain(own.headers)
    : [overwrite('content-type', 'application/json'), overwrite('cache-control', 'no-store')];
  if (own && own.body === undefined) headers.push(overwrite('content-type', 'application/json'));
  if (d.status === 401) headers.push(overwrite('www-authenticate', d.challenge ?? 'Bearer'));
  if (d.retryAfterSeconds !== undefined) headers.push(overwrite('retry-after', String(d.retryAfterSeconds)));
  const rpc = d.status === 401 ? RPC_UNAUTHENTICATED : d.status >= 500 ? RPC_UNAVAILABLE : RPC_PERMISSION_DENIED;
  return {
    status: { code: rpc },
    // proto3 enums are open: any HTTP status number encodes, named in Envoy's enum or not.
    denied_response: { status: { code: d.status as StatusCode }, headers, body: own?.body ?? denyBody(d.status) },
    ...(own?.dynamicMetadata ? { dynamic_metadata: jsonToStruct(own.dynamicMetadata) } : {}),
  };
}
