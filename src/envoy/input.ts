// Pure translator: CheckRequest -> the policy input document of opa-envoy-plugin, so its policies
// run unchanged: input.attributes in protobuf-JSON field names, parsed_path, parsed_query,
// parsed_body, truncated_body, version - plus our input.identity.
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import type { Identity } from '../identity/identity.js';
import { normalizePath, splitTarget } from './path.js';
import { structToJson, type DecodedStruct } from './struct.js';

// Fields that are protobuf maps: their keys are data (header names...), never renamed.
const MAP_FIELDS = new Set(['headers', 'context_extensions', 'labels', 'filter_metadata', 'typed_filter_metadata', 'fields']);
const MAX_PARSED_BODY = 1024 * 1024;

// Field names come from the proto schema (a few hundred at most), so their protojson names are
// computed once each; the bound only guards against a schema we did not foresee.
const CAMEL = new Map<string, string>();
const camel = (s: string): string => {
  let c = CAMEL.get(s);
  if (c === undefined) {
    c = s.replace(/_([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
    if (CAMEL.size < 4096) CAMEL.set(s, c);
  }
  return c;
};

function timestamp(t: { seconds?: string | number; nanos?: number }): string {
  const ms = Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
  return new Date(ms).toISOString();
}

/** A decoded message -> protojson shape: lowerCamelCase names, oneof markers dropped, bytes as base64. */
function toProtoJson(msg: unknown, field = ''): unknown {
  if (Buffer.isBuffer(msg)) return msg.toString('base64');
  if (Array.isArray(msg)) return msg.map((m) => toProtoJson(m));
  if (msg === null || typeof msg !== 'object') return msg;
  const o = msg as Record<string, unknown>;
  if (field === 'time' && ('seconds' in o || 'nanos' in o)) return timestamp(o);
  if (field === 'filter_metadata') return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, structToJson(v as DecodedStruct)]));
  // Map keys are data (a header may be called __proto__): defined as own properties, never assigned.
  if (MAP_FIELDS.has(field)) return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, toProtoJson(v)]));
  const out: Record<string, unknown> = {};
  for (const k in o) {
    const v = o[k];
    // With `oneofs`, the loader adds a string naming which member of a oneof is set.
    if (v === undefined || (typeof v === 'string' && v !== k && v in o && !MAP_FIELDS.has(k))) continue;
    out[camel(k)] = toProtoJson(v, k);
  }
  return out;
}

function parseQuery(query: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of new URLSearchParams(query)) (out[k] ??= []).push(v);
  return out;
}

function parseBody(headers: Record<string, string>, body: string): { parsed: unknown; truncated: boolean } {
  const declared = Number(headers['content-length'] ?? NaN);
  const truncated = Number.isFinite(declared) && declared > Buffer.byteLength(body);
  const type = headers['content-type'] ?? '';
  if (body === '' || truncated || body.length > MAX_PARSED_BODY) return { parsed: null, truncated };
  if (type.includes('application/json')) {
    try {
      return { parsed: JSON.parse(body) as unknown, truncated };
    } catch {
      return { parsed: null, truncated };
    }
  }
  if (type.includes('application/x-www-form-urlencoded')) return { parsed: parseQuery(body), truncated };
  return { parsed: null, truncated };
}

export function toPolicyInput(req: CheckRequest__Output, identity: Identity | undefined): Record<string, unknown> {
  const http = req.attributes?.request?.http;
  const rawPath = http?.path ?? '';
  // The policy sees the path the routes saw (normalized; see ./path.ts), the query as sent. A path
  // that cannot be normalized never reaches a policy (400 first); as sent, should it ever.
  const target = splitTarget(rawPath);
  const pathOnly = normalizePath(target.path) ?? target.path;
  let decoded = pathOnly;
  try {
    decoded = decodeURIComponent(pathOnly);
  } catch {
    // keep the raw path: a policy still sees every segment
  }
  const headers = http?.headers ?? {};
  const { parsed, truncated } = parseBody(headers, http?.body ?? '');
  const input: Record<string, unknown> = {
    ...(toProtoJson(req) as Record<string, unknown>),
    parsed_path: decoded.replace(/^\/+/, '').split('/'),
    parsed_query: target.query !== undefined ? parseQuery(target.query) : {},
    parsed_body: parsed,
    truncated_body: truncated,
    version: { ext_authz: 'v3', encoding: 'protojson' },
    identity: identity ?? null,
  };
  const path = target.query !== undefined ? `${pathOnly}?${target.query}` : pathOnly;
  if (path !== rawPath) {
    const h = (input.attributes as { request?: { http?: { path?: string; headers?: Record<string, string> } } } | undefined)?.request?.http;
    if (h) {
      h.path = path;
      if (h.headers && ':path' in h.headers) h.headers[':path'] = path;
    }
  }
  const principal = req.attributes?.source?.principal;
  if (principal) input.source_principal = principal;
  return input;
}
