// Pure translator: a policy's result -> a checked decision, read exactly as opa-envoy-plugin reads
// it. A boolean, or an object with `allowed` (required), `headers` and `dynamic_metadata` (both
// outcomes); when allowed also response_headers_to_add, request_headers_to_remove,
// query_parameters_to_set, query_parameters_to_remove; when denied also body and http_status.
// Fields the outcome does not use are ignored, as the plugin ignores them. Anything malformed is an
// error (fail closed), never an allow.
import { UnavailableError } from '../lib/errors.js';

export type HeaderList = readonly (readonly [string, string])[];

export interface PolicyDecision {
  readonly allowed: boolean;
  /** A bare boolean sends no headers or body of its own (the plugin answers without an http_response). */
  readonly form: 'boolean' | 'object';
  /** allow: added to the upstream request; deny: sent to the client. */
  readonly headers: HeaderList;
  readonly responseHeadersToAdd: HeaderList;
  readonly requestHeadersToRemove: readonly string[];
  readonly queryParametersToSet: HeaderList;
  readonly queryParametersToRemove: readonly string[];
  readonly body?: string;
  readonly httpStatus?: number;
  readonly dynamicMetadata?: Readonly<Record<string, unknown>>;
}

// The statuses the plugin accepts: named in Envoy's StatusCode enum and known to Go's net/http.
const HTTP_STATUSES: ReadonlySet<number> = new Set([
  100, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411,
  412, 413, 414, 415, 416, 417, 421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
]);

const invalid = (what: string): UnavailableError => new UnavailableError('policy_error', `malformed policy decision: ${what}`);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

const has = (o: Record<string, unknown>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** `{k: v | [v...]}` or a list of such objects -> pairs, in order. */
function pairs(o: Record<string, unknown>, field: string, allowList = true): [string, string][] {
  if (!has(o, field)) return [];
  const v = o[field];
  if (!isObject(v) && !(allowList && Array.isArray(v))) throw invalid(`${field} must be an object${allowList ? ' or a list of objects' : ''}`);
  const out: [string, string][] = [];
  for (const obj of Array.isArray(v) ? v : [v]) {
    if (!isObject(obj)) throw invalid(`${field} must be an object or a list of objects`);
    for (const [k, val] of Object.entries(obj)) {
      for (const s of Array.isArray(val) ? val : [val]) {
        if (typeof s !== 'string') throw invalid(`${field}.${k} must be a string or a list of strings`);
        out.push([k, s]);
      }
    }
  }
  return out;
}

function strings(o: Record<string, unknown>, field: string): string[] {
  if (!has(o, field)) return [];
  const v = o[field];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalid(`${field} must be a list of strings`);
  return v;
}

const EMPTY = { headers: [], responseHeadersToAdd: [], requestHeadersToRemove: [], queryParametersToSet: [], queryParametersToRemove: [] };

export function toPolicyDecision(result: unknown): PolicyDecision {
  if (typeof result === 'boolean') return { allowed: result, form: 'boolean', ...EMPTY };
  if (!isObject(result)) throw invalid('expected a boolean or an object');
  if (typeof result.allowed !== 'boolean') throw invalid('"allowed" must be a boolean');
  const headers = pairs(result, 'headers');
  const meta = result.dynamic_metadata;
  if (has(result, 'dynamic_metadata') && !isObject(meta)) throw invalid('dynamic_metadata must be an object');
  const common = { form: 'object' as const, headers, ...(isObject(meta) ? { dynamicMetadata: meta } : {}) };
  if (result.allowed) {
    return {
      ...EMPTY,
      ...common,
      allowed: true,
      responseHeadersToAdd: pairs(result, 'response_headers_to_add'),
      requestHeadersToRemove: strings(result, 'request_headers_to_remove'),
      queryParametersToSet: pairs(result, 'query_parameters_to_set', false),
      queryParametersToRemove: strings(result, 'query_parameters_to_remove'),
    };
  }
  if (has(result, 'body') && typeof result.body !== 'string') throw invalid('body must be a string');
  const status = result.http_status;
  if (has(result, 'http_status') && !(typeof status === 'number' && HTTP_STATUSES.has(status))) throw invalid('http_status must be an HTTP status code Envoy names');
  return {
    ...EMPTY,
    ...common,
    allowed: false,
    ...(typeof result.body === 'string' ? { body: result.body } : {}),
    ...(typeof status === 'number' ? { httpStatus: status } : {}),
  };
}
