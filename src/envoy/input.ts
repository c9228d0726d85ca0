// Pure translator: CheckRequest -> the policy input document of opa-envoy-plugin (envoyauth.
// RequestToInput, v3), so its policies run unchanged: `attributes` built from the message's
// descriptor (./proto-json.ts), parsed_path, parsed_query, parsed_body, truncated_body, version,
// source_principal - plus our `identity`. What the plugin refuses to parse (a bad escape in the
// path or query, a body that is not what its content-type says) throws RequestParseError, which
// the pipeline answers with the plugin's 400. Fixtures recorded from the real plugin pin all of
// this: test/unit/envoy/plugin-fidelity.test.ts.
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import type { Identity } from '../identity/identity.js';
import { envoyReflection } from './protos.js';
import { parseBody } from './body.js';
import type { GrpcBodies } from './grpc-body.js';
import { parseQuery, pathUnescape } from './go-url.js';
import { normalizePath, splitTarget } from './path.js';
import { protoMapper } from './proto-json.js';

export interface InputOptions {
  /** opa-envoy-plugin's skip_request_body_parse: no parsed_body and no truncated_body. */
  readonly skipBodyParse?: boolean;
  /** opa-envoy-plugin's proto-descriptor: application/grpc bodies are parsed with these. */
  readonly grpcBodies?: GrpcBodies;
  /** Lower-case header names removed from the input's headers (policy.input.strip_credential_headers). */
  readonly stripHeaders?: readonly string[];
}

export type PolicyInputBuilder = (req: CheckRequest__Output, identity: Identity | undefined) => Record<string, unknown>;

const VERSION = Object.freeze({ ext_authz: 'v3', encoding: 'protojson' });

/** Compiles the CheckRequest descriptor walk once (call at startup); the builder is pure. */
export function policyInputBuilder(opts: InputOptions = {}): PolicyInputBuilder {
  const attributes = protoMapper(envoyReflection().lookupType('envoy.service.auth.v3.CheckRequest'));
  const strip: ReadonlySet<string> = new Set(opts.stripHeaders ?? []);
  return (req, identity) => {
    const http = req.attributes?.request?.http;
    const rawPath = http?.path ?? '';
    // The policy sees the path the routes saw (normalized as Envoy's normalize_path and
    // merge_slashes do; ./path.ts), the query as sent. A path that cannot be normalized never
    // reaches a policy (400 first); as sent, should it ever.
    const target = splitTarget(rawPath);
    const pathOnly = normalizePath(target.path) ?? target.path;
    const parsedPath = pathUnescape(pathOnly).replace(/^\/+/, '').split('/');
    const input: Record<string, unknown> = {
      ...attributes(req),
      version: VERSION,
      parsed_path: parsedPath,
      parsed_query: target.query !== undefined ? parseQuery(target.query) : {},
    };
    const path = target.query !== undefined ? `${pathOnly}?${target.query}` : pathOnly;
    if (path !== rawPath) {
      const h = (input.attributes as { request?: { http?: { path?: string; headers?: Record<string, string> } } } | undefined)?.request?.http;
      if (h) {
        h.path = path;
        if (h.headers && ':path' in h.headers) h.headers[':path'] = path;
      }
    }
    if (strip.size > 0) stripHeaders(input, strip);
    if (!opts.skipBodyParse) {
      const { parsed, truncated } = parseBody(http?.headers ?? {}, http?.body ?? '', http?.raw_body, opts.grpcBodies ? { bodies: opts.grpcBodies, parsedPath } : undefined);
      input.parsed_body = parsed;
      input.truncated_body = truncated;
    }
    const principal = req.attributes?.source?.principal;
    if (principal) input.source_principal = principal;
    input.identity = identity ?? null;
    return input;
  };
}

interface HeaderEntry {
  key?: string;
}
interface HttpView {
  headers?: Record<string, string>;
  /** Envoy's encode_raw_headers: the input's JSON name (the eval CLI's raw objects use header_map). */
  headerMap?: { headers?: HeaderEntry[] };
  header_map?: { headers?: HeaderEntry[] };
}

/** Removes the named headers from the input (headers map, and headerMap when Envoy sends raw headers). */
function stripHeaders(input: Record<string, unknown>, names: ReadonlySet<string>): void {
  const http = (input.attributes as { request?: { http?: HttpView } } | undefined)?.request?.http;
  if (!http) return;
  if (http.headers) for (const k of Object.keys(http.headers)) if (names.has(k.toLowerCase())) delete http.headers[k];
  for (const map of [http.headerMap, http.header_map]) {
    if (map?.headers) map.headers = map.headers.filter((h) => !names.has((h.key ?? '').toLowerCase()));
  }
}

let standard: PolicyInputBuilder | undefined;

/** The input with the plugin's default options (body parsing on). */
export function toPolicyInput(req: CheckRequest__Output, identity: Identity | undefined): Record<string, unknown> {
  standard ??= policyInputBuilder();
  return standard(req, identity);
}
