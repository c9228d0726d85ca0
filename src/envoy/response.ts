// Pure translator: Decision -> Envoy's CheckResponse. A policy's answer is sent exactly as
// opa-envoy-plugin sends it (status PERMISSION_DENIED on any denial, its headers, body and status
// as given, decision_id in dynamic metadata). Our additions - the uniform body (and content-type,
// cache-control, www-authenticate) where the policy gives none, our metadata keys - come on top,
// never on a name the policy set, and a route can turn them off (`additions: false`). Our own
// denials carry a uniform body per status that never says which check failed (REC-API-23); the
// reason goes to the log instead.
import type { Allow, Decision, Deny } from '../check/decision.js';
import type { HeaderValueOption } from '../gen/envoy/config/core/v3/HeaderValueOption.js';
import type { CheckResponse } from '../gen/envoy/service/auth/v3/CheckResponse.js';
import type { StatusCode } from '../gen/envoy/type/v3/StatusCode.js';
import type { HeaderList, PolicyDecision } from '../policy/decision.js';
import type { Struct } from '../gen/google/protobuf/Struct.js';
import type { Value } from '../gen/google/protobuf/Value.js';
import { setOwn } from '../lib/records.js';
import { jsonToValue } from './struct.js';

// google.rpc.Code values.
const RPC_OK = 0;
const RPC_PERMISSION_DENIED = 7;
const RPC_UNAVAILABLE = 14;
const RPC_UNAUTHENTICATED = 16;
const OK_STATUS = Object.freeze({ code: RPC_OK });

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

/** A string Value of dynamic metadata. */
const str = (stringValue: string): Value => ({ stringValue });

/**
 * The string Value of one of our metadata keys whose string repeats call after call (the route,
 * issuer, kind, method and policy revision come from config): made again only when the string
 * changes, and frozen, since the answers that hold it share it.
 */
class KeptValue {
  private s: string | undefined;
  private v: Value = str('');

  of(s: string): Value {
    if (s !== this.s) {
      this.s = s;
      this.v = Object.freeze(str(s));
    }
    return this.v;
  }
}
const ROUTE = new KeptValue();
const ISSUER = new KeptValue();
const KIND = new KeptValue();
const METHOD = new KeptValue();
const REVISION = new KeptValue();

/**
 * The dynamic metadata: ours first (an addition: the route may turn it off), then the policy's
 * (it wins on a shared key, keeping the key's place), then decision_id as opa-envoy-plugin sets
 * it - built as the Struct directly, without the intermediate objects and spreads.
 */
function metadataStruct(ours: Allow | undefined, policy: Readonly<Record<string, unknown>> | undefined, decisionId: string | undefined): Struct | undefined {
  const fields: Record<string, Value> = {};
  let any = false;
  if (ours) {
    any = true;
    fields.route = ROUTE.of(ours.route);
    const id = ours.identity;
    if (id) {
      fields.subject = str(id.subject);
      fields.issuer = ISSUER.of(id.issuer);
      fields.subject_kind = KIND.of(id.kind);
      fields.auth_method = METHOD.of(id.method);
      if (id.workload) fields.workload = str(id.workload.id);
    }
    if (ours.policyRevision !== undefined) fields.policy_revision = REVISION.of(ours.policyRevision);
  }
  if (policy) {
    // Keys are data: defined as own properties whatever their name.
    for (const k of Object.keys(policy)) {
      any = true;
      if (k === '__proto__') setOwn(fields, k, jsonToValue(policy[k]));
      else fields[k] = jsonToValue(policy[k]);
    }
  }
  if (decisionId !== undefined) {
    any = true;
    fields.decision_id = str(decisionId);
  }
  return any ? { fields } : undefined;
}

function allowResponse(d: Allow): CheckResponse {
  const p = d.policy;
  const additions = d.additions !== false;
  const ours = d.upstreamHeaders;
  // Sized once (pushing into [] grew its store on the way).
  let n = p ? p.headers.length : 0;
  for (const k in ours) if (Object.hasOwn(ours, k)) n++;
  const headers = new Array<HeaderValueOption>(n);
  let i = 0;
  for (const k in ours) if (Object.hasOwn(ours, k)) headers[i++] = overwrite(k, ours[k]!);
  if (p) for (const [key, value] of p.headers) headers[i++] = { header: { key, value } };
  // A bare `true` (or no policy) with nothing of ours to say has no ok_response, as with the plugin.
  const bare = p?.form !== 'object' && headers.length === 0 && d.removeHeaders.length === 0;
  const meta = metadataStruct(additions ? d : undefined, p?.dynamicMetadata, d.decisionId);
  // Built whole, one shape (absent fields undefined: the writer leaves them out, as protobufjs does).
  return {
    status: OK_STATUS,
    ok_response: bare
      ? undefined
      : {
          headers,
          headers_to_remove: d.removeHeaders as string[],
          response_headers_to_add: p && p.responseHeadersToAdd.length > 0 ? plain(p.responseHeadersToAdd) : undefined,
          query_parameters_to_set: p && p.queryParametersToSet.length > 0 ? p.queryParametersToSet.map(([key, value]) => ({ key, value })) : undefined,
          query_parameters_to_remove: p && p.queryParametersToRemove.length > 0 ? (p.queryParametersToRemove as string[]) : undefined,
        },
    // Read by later filters (e.g. rate limits keyed on the verified subject).
    dynamic_metadata: meta,
  };
}

/** A denying policy's answer as the plugin sends it; with additions, ours only where it set nothing. */
function policyDenyResponse(d: Deny, p: PolicyDecision): CheckResponse {
  const additions = d.additions !== false;
  const meta = metadataStruct(undefined, p.dynamicMetadata, d.decisionId);
  const base = { status: { code: RPC_PERMISSION_DENIED }, ...(meta ? { dynamic_metadata: meta } : {}) };
  // A bare `false`: no denied_response (Envoy answers 403 with no body) unless our body is added.
  if (p.form === 'boolean' && !additions) return base;
  const headers = plain(p.headers);
  if (additions) {
    const set = new Set(p.headers.map(([k]) => k.toLowerCase()));
    const add = (k: string, v: string): void => {
      if (!set.has(k)) headers.push(overwrite(k, v));
    };
    if (p.body === undefined) {
      add('content-type', 'application/json');
      add('cache-control', 'no-store');
    }
    if (d.status === 401) add('www-authenticate', d.challenge ?? 'Bearer');
  }
  const body = p.body ?? (additions ? denyBody(d.status) : '');
  // An empty body is proto3's default: left out, as the plugin's encoder leaves it out.
  return { ...base, denied_response: { status: { code: d.status as StatusCode }, headers, ...(body !== '' ? { body } : {}) } };
}

export function toCheckResponse(d: Decision): CheckResponse {
  if (d.allowed) return allowResponse(d);
  if (d.reason === 'request_parse_error') {
    // Exactly the plugin's answer to a request it cannot read.
    const message = `request_parse_error: ${d.parseError ?? 'request could not be parsed'}`;
    return { status: { code: RPC_PERMISSION_DENIED, message }, denied_response: { status: { code: 400 as StatusCode }, body: message } };
  }
  if (d.policy) return policyDenyResponse(d, d.policy);
  if (d.problem) {
    // An OpenAPI refusal: RFC 9457 problem+json saying which parameter or pointer failed (never the value).
    const headers = [overwrite('content-type', 'application/problem+json'), overwrite('cache-control', 'no-store'), ...d.problem.headers.map(([k, v]) => overwrite(k, v))];
    return { status: { code: RPC_PERMISSION_DENIED }, denied_response: { status: { code: d.problem.status as StatusCode }, headers, body: d.problem.body } };
  }
  const headers = [overwrite('content-type', 'application/json'), overwrite('cache-control', 'no-store')];
  if (d.status === 401) headers.push(overwrite('www-authenticate', d.challenge ?? 'Bearer'));
  if (d.retryAfterSeconds !== undefined) headers.push(overwrite('retry-after', String(d.retryAfterSeconds)));
  const rpc = d.status === 401 ? RPC_UNAUTHENTICATED : d.status >= 500 ? RPC_UNAVAILABLE : RPC_PERMISSION_DENIED;
  return {
    status: { code: rpc },
    // proto3 enums are open: any HTTP status number encodes, named in Envoy's enum or not.
    denied_response: { status: { code: d.status as StatusCode }, headers, body: denyBody(d.status) },
  };
}
