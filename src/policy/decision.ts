// Pure translator: a policy's result -> a checked decision, in opa-envoy-plugin's format.
// A boolean, or an object with `allowed` (required) and optional headers, response_headers_to_add,
// request_headers_to_remove, query_parameters_to_set, query_parameters_to_remove, body,
// http_status, dynamic_metadata. Anything malformed is an error (fail closed), never an allow.
import { UnavailableError } from '../lib/errors.js';

export type HeaderList = readonly (readonly [string, string])[];

export interface PolicyDecision {
  readonly allowed: boolean;
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

const invalid = (what: string): UnavailableError => new UnavailableError('policy_error', `malformed policy decision: ${what}`);

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `{k: v | [v...]}` or a list of such objects -> pairs. */
function pairs(v: unknown, field: string): [string, string][] {
  if (v === undefined) return [];
  const objects = Array.isArray(v) ? v : [v];
  const out: [string, string][] = [];
  for (const o of objects) {
    if (!isObject(o)) throw invalid(`${field} must be an object or a list of objects`);
    for (const [k, val] of Object.entries(o)) {
      const values = Array.isArray(val) ? val : [val];
      for (const s of values) {
        if (typeof s !== 'string') throw invalid(`${field}.${k} must be a string or a list of strings`);
        out.push([k, s]);
      }
    }
  }
  return out;
}

function strings(v: unknown, field: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalid(`${field} must be a list of strings`);
  return v;
}

export function toPolicyDecision(result: unknown): PolicyDecision {
  const empty = { headers: [], responseHeadersToAdd: [], requestHeadersToRemove: [], queryParametersToSet: [], queryParametersToRemove: [] };
  if (typeof result === 'boolean') return { allowed: result, ...empty };
  if (!isObject(result)) throw invalid('expected a boolean or an object');
  if (typeof result.allowed !== 'boolean') throw invalid('"allowed" must be a boolean');
  if (result.body !== undefined && typeof result.body !== 'string') throw invalid('body must be a string');
  const status = result.http_status;
  if (status !== undefined && !(typeof status === 'number' && Number.isInteger(status) && status >= 200 && status <= 599)) {
    throw invalid('http_status must be an HTTP status code');
  }
  if (result.dynamic_metadata !== undefined && !isObject(result.dynamic_metadata)) throw invalid('dynamic_metadata must be an object');
  return {
    allowed: result.allowed,
    headers: pairs(result.headers, 'headers'),
    responseHeadersToAdd: pairs(result.response_headers_to_add, 'response_headers_to_add'),
    requestHeadersToRemove: strings(result.request_headers_to_remove, 'request_headers_to_remove'),
    queryParametersToSet: pairs(result.query_parameters_to_set, 'query_parameters_to_set'),
    queryParametersToRemove: strings(result.query_parameters_to_remove, 'query_parameters_to_remove'),
    ...(result.body !== undefined ? { body: result.body } : {}),
    ...(status !== undefined ? { httpStatus: status } : {}),
    ...(isObject(result.dynamic_metadata) ? { dynamicMetadata: result.dynamic_metadata } : {}),
  };
}
