// Audit records (DISA API SRG V-274517..V-274534): one JSON record per decision with who, what,
// where from, the outcome and why, written through the redacting logger. Credentials never
// appear: the record names identities, never tokens; the path carries query keys, not values.
import { randomUuid } from '../lib/uuid.js';
import type { Decision } from '../check/decision.js';
import type { RequestView } from '../envoy/request.js';
import type { MaskRule } from './decision-log/mask.js';

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** Milliseconds to the microsecond, as every record carries them. */
const micros = (ms: number): number => Math.round(ms * 1000) / 1000;

/** The trace id of the HTTP request (W3C traceparent, else B3), or of the gRPC call. */
export function traceIdOf(req: RequestView | undefined, grpcTraceparent?: string): string | undefined {
  const w3c = TRACEPARENT.exec(req?.headers.get('traceparent') ?? grpcTraceparent ?? '')?.[1];
  if (w3c) return w3c;
  const b3 = req?.headers.get('x-b3-traceid');
  return b3 !== undefined && /^[0-9a-f]{16,32}$/.test(b3) ? b3 : undefined;
}


function requestFields(req: RequestView | undefined): Record<string, unknown> {
  if (!req) return {};
  return {
    request_id: req.id,
    source: req.source.address,
    method: req.method,
    host: req.host,
    path: req.path,
    query_keys: req.queryNames,
  };
}

/**
 * The record of one decision: one object literal, one shape (fields that do not apply are
 * undefined, which the line leaves out) - spreads made a temporary object each and grew the
 * record's property store as it went.
 */
export function checkRecord(req: RequestView, d: Decision, durationMs: number, traceId: string | undefined): Record<string, unknown> {
  // A dry-run policy said no: what enforcing would have answered.
  const dryRun = d.allowed && d.dryRunDenied === true;
  return {
    event: 'check',
    // The id a policy decision also carries in dynamic metadata (as opa-envoy-plugin's decision_id).
    decision_id: d.decisionId ?? randomUuid(),
    trace_id: traceId ?? null,
    request_id: req.id,
    source: req.source.address,
    method: req.method,
    host: req.host,
    path: req.path,
    query_keys: req.queryNames,
    route: d.route,
    allowed: d.allowed,
    outcome: d.allowed ? 'allowed' : 'denied',
    // What Envoy does with the answer: forward (200 from us; the upstream decides the rest) or deny.
    status: d.allowed ? 200 : d.status,
    reason: d.allowed ? (dryRun ? 'dry_run_denied' : 'ok') : d.reason,
    dry_run_denied: dryRun ? true : undefined,
    would_status: dryRun ? (d.wouldStatus ?? 403) : undefined,
    subject: d.identity?.subject,
    subject_kind: d.identity?.kind,
    issuer: d.identity?.issuer,
    auth_method: d.identity?.method,
    workload: d.identity?.workload?.id,
    api_key_id: d.identity?.workload?.keyId,
    policy_revision: d.policyRevision,
    // An OpenAPI refusal: which parameter or pointer failed (never the value).
    openapi_errors: !d.allowed && d.problem ? d.problem.errors : undefined,
    duration_ms: micros(durationMs),
  };
}

/** The record of a Check that failed closed (no decision). */
export function checkErrorRecord(req: RequestView | undefined, code: string, message: string, durationMs: number, traceId: string | undefined): Record<string, unknown> {
  return {
    event: 'check_error',
    decision_id: randomUuid(),
    trace_id: traceId ?? null,
    ...requestFields(req),
    allowed: false,
    outcome: 'error',
    code,
    err: message,
    duration_ms: micros(durationMs),
  };
}

/** The record of a Check the caller cancelled (reset its stream) before the answer: no decision was made or sent. */
export function checkCancelledRecord(req: RequestView | undefined, durationMs: number, traceId: string | undefined): Record<string, unknown> {
  return {
    event: 'check_cancelled',
    decision_id: randomUuid(),
    trace_id: traceId ?? null,
    ...requestFields(req),
    allowed: false,
    outcome: 'cancelled',
    duration_ms: micros(durationMs),
  };
}

// The fields of a check record that come from the policy input, and the input pointers (escaped
// as mask rules name them) that hold them: a system.log.mask rule on such a pointer, or on one
// of its parents, applies to the field as it applies to the decision-log event.
const INPUT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  request_id: ['/input/attributes/request/http/id', '/input/attributes/request/http/headers/x-request-id'],
  source: ['/input/attributes/source/address/socketAddress/address'],
  method: ['/input/attributes/request/http/method'],
  host: ['/input/attributes/request/http/host'],
  path: ['/input/attributes/request/http/path'],
  query_keys: ['/input/attributes/request/http/path', '/input/parsed_query'],
  subject: ['/input/identity/subject'],
  subject_kind: ['/input/identity/kind'],
  issuer: ['/input/identity/issuer'],
  auth_method: ['/input/identity/method'],
  workload: ['/input/identity/workload/id'],
  api_key_id: ['/input/identity/workload/keyId'],
};

/** Every field a mask could reach: what a record loses when the mask cannot be evaluated (fail closed). */
export const MASKABLE_FIELDS: readonly string[] = Object.keys(INPUT_FIELDS);

/** The value under `rest` (pointer segments) of an upserted value, undefined where there is none. */
function under(value: unknown, rest: readonly string[]): unknown {
  let node = value;
  for (const seg of rest) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[decodeURIComponent(seg)];
  }
  return node;
}

/**
 * The check record with the bundle's system.log.mask applied to its input fields: an erased
 * pointer removes the field, an upsert replaces it with the value it puts there (removes it when
 * it puts none). Rules on /result do not apply: outcome, status and reason are the audit trail.
 * The applied pointers are listed in `erased` / `masked`, as in the decision-log event.
 */
export function maskCheckRecord(rec: Record<string, unknown>, rules: readonly MaskRule[]): Record<string, unknown> {
  if (rules.length === 0) return rec;
  const out = { ...rec };
  const erased = new Set<string>();
  const masked = new Set<string>();
  for (const r of rules) {
    for (const [field, pointers] of Object.entries(INPUT_FIELDS)) {
      if (!(field in out)) continue;
      for (const p of pointers) {
        const segs = p.slice(1).split('/');
        if (r.parts.length > segs.length || r.parts.some((s, i) => s !== segs[i])) continue;
        if (r.op === 'remove') {
          delete out[field];
          erased.add(r.pointer);
        } else {
          const v = under(r.value, segs.slice(r.parts.length));
          if (v === undefined) delete out[field];
          else out[field] = v;
          masked.add(r.pointer);
        }
        break;
      }
    }
  }
  if (erased.size > 0) out.erased = [...erased];
  if (masked.size > 0) out.masked = [...masked];
  return out;
}
