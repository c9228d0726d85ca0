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
import type { InputDocument } from '../policy/authorizer.js';
import { JsonWriter } from '../lib/json-writer.js';
import { protoJsonWriter } from './proto-json.js';

export interface InputOptions {
  /** opa-envoy-plugin's skip_request_body_parse: no parsed_body and no truncated_body. */
  readonly skipBodyParse?: boolean;
  /** opa-envoy-plugin's proto-descriptor: application/grpc bodies are parsed with these. */
  readonly grpcBodies?: GrpcBodies;
  /** Lower-case header names removed from the input's headers (policy.input.strip_credential_headers). */
  readonly stripHeaders?: readonly string[];
}

/**
 * One request's policy input. The policy reads it as JSON text, written straight from the decoded
 * CheckRequest (no object graph, no JSON.stringify, no TextEncoder per Check); the few readers that
 * want it as a value (decision logs, the decision cache, the offline evaluator) parse it once.
 */
export interface PolicyInputDoc extends InputDocument {
  readonly json: Buffer;
  /** parsed_query as written. */
  readonly parsedQuery: Record<string, string[]>;
  /** parsed_body and truncated_body as written; absent when the body is not parsed. */
  readonly body?: { readonly parsed: unknown; readonly truncated: boolean };
}

/**
 * input.operation as JSON text, written once per operation: the view is built at the spec's load
 * and never changes, so each Check copies its text instead of walking it (JSON.stringify's text,
 * which is what the writer's value() writes). Kept as long as the operation is.
 */
const operationTexts = new WeakMap<object, string>();
function operationJson(op: object): string {
  let text = operationTexts.get(op);
  if (text === undefined) {
    text = JSON.stringify(op);
    operationTexts.set(op, text);
  }
  return text;
}

export type PolicyInputBuilder = (req: CheckRequest__Output, identity: Identity | undefined, operation?: object) => PolicyInputDoc;

const VERSION = '"version":{"ext_authz":"v3","encoding":"protojson"}';
const COMMA_VERSION = `,${VERSION}`;
const HTTP_REQUEST = '.envoy.service.auth.v3.AttributeContext.HttpRequest';
const HEADER_MAP = '.envoy.config.core.v3.HeaderMap';

/** What the edits of one request need: the path the policy sees, and the headers it does not. */
interface Edits {
  /** The normalized path (with the query as sent), when it differs from the path Envoy sent. */
  path: string | undefined;
  strip: ReadonlySet<string>;
}

class InputDoc implements PolicyInputDoc {
  private parsed: Record<string, unknown> | undefined;
  constructor(
    readonly json: Buffer,
    readonly parsedQuery: Record<string, string[]>,
    readonly body: PolicyInputDoc['body'],
  ) {}
  value(): Record<string, unknown> {
    this.parsed ??= JSON.parse(this.json.toString('utf8')) as Record<string, unknown>;
    return this.parsed;
  }
}

/** Compiles the CheckRequest descriptor walk once (call at startup); the builder is pure. */
export function policyInputBuilder(opts: InputOptions = {}): PolicyInputBuilder {
  const strip: ReadonlySet<string> = new Set(opts.stripHeaders ?? []);
  const stripping = strip.size > 0;
  // The policy sees the path the routes saw (normalized as Envoy's normalize_path and
  // merge_slashes do; ./path.ts), the query as sent - also in headers[':path'] - and not the
  // stripped headers (in `headers`, and in `headerMap` when Envoy sends raw headers).
  const writeAttributes = protoJsonWriter<Edits>(envoyReflection().lookupType('envoy.service.auth.v3.CheckRequest'), {
    [HTTP_REQUEST]: {
      replace: (e, field, key) => (e.path !== undefined && (field === 'path' ? key === undefined : field === 'headers' && key === ':path') ? e.path : undefined),
      omit: stripping ? (e, field, key) => field === 'headers' && e.strip.has((key as string).toLowerCase()) : undefined,
    },
    [HEADER_MAP]: {
      omit: stripping ? (e, field, item) => field === 'headers' && e.strip.has(((item as { key?: string }).key ?? '').toLowerCase()) : undefined,
    },
  });
  const w = new JsonWriter();
  return (req, identity, operation) => {
    const http = req.attributes?.request?.http;
    const rawPath = http?.path ?? '';
    // A path that cannot be normalized never reaches a policy (400 first); as sent, should it ever.
    const target = splitTarget(rawPath);
    const pathOnly = normalizePath(target.path) ?? target.path;
    const parsedPath = pathUnescape(pathOnly).replace(/^\/+/, '').split('/');
    const parsedQuery = target.query !== undefined ? parseQuery(target.query) : {};
    const path = target.query !== undefined ? `${pathOnly}?${target.query}` : pathOnly;
    // Parsed before anything is written: a body the plugin refuses throws RequestParseError.
    const body = opts.skipBodyParse ? undefined : parseBody(http?.headers ?? {}, http?.body ?? '', http?.raw_body, opts.grpcBodies ? { bodies: opts.grpcBodies, parsedPath } : undefined);
    w.reset();
    // The CheckRequest's own fields (`attributes`), then ours, in the order the plugin's input has them.
    w.byte(0x7b);
    const any = writeAttributes(w, req, { path: path !== rawPath && http ? path : undefined, strip });
    w.raw(any ? COMMA_VERSION : VERSION);
    w.raw(',"parsed_path":');
    w.value(parsedPath);
    w.raw(',"parsed_query":');
    w.value(parsedQuery);
    if (body) {
      w.raw(',"parsed_body":');
      w.value(body.parsed);
      w.raw(',"truncated_body":');
      w.bool(body.truncated);
    }
    const principal = req.attributes?.source?.principal;
    if (principal) {
      w.raw(',"source_principal":');
      w.string(principal);
    }
    w.raw(',"identity":');
    w.value(identity ?? null);
    if (operation !== undefined) {
      w.raw(',"operation":');
      w.raw(operationJson(operation));
    }
    w.byte(0x7d);
    return new InputDoc(w.take(), parsedQuery, body);
  };
}

let standard: PolicyInputBuilder | undefined;

/** The input with the plugin's default options (body parsing on), as a value. */
export function toPolicyInput(req: CheckRequest__Output, identity: Identity | undefined): Record<string, unknown> {
  standard ??= policyInputBuilder();
  return standard(req, identity).value();
}
