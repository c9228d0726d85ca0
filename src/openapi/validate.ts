// One request against its operation: the parameters (read back per style/explode, then one Ajv
// call over path, query, header and cookie together) and the body by its content type (JSON; form
// and multipart fields coerced from their strings). Bodies come parsed by envoy/body.ts - the same
// parse the policy input has, reused when the policy already ran. A failure says where (parameter
// name, body pointer) and what, never the value.
import type { ErrorObject, ValidateFunction } from 'ajv';
import { MAX_PARSED_BODY, parseBody, type ParsedBody } from '../envoy/body.js';
import { parseQuery } from '../envoy/go-url.js';
import { parseMediaType } from '../envoy/media-type.js';
import type { RequestView } from '../envoy/request.js';
import { RequestParseError } from '../lib/errors.js';
import { dict } from '../lib/records.js';
import type { CompiledOperation, MediaEntry } from './compile.js';
import { cookieValue, headerValue, parseCookies, pathValue, queryValue, ParamSyntaxError, type ParamIn } from './params.js';

export type RefusalReason =
  | 'undocumented'
  | 'method_not_allowed'
  | 'invalid_parameter'
  | 'invalid_body'
  | 'body_required'
  | 'unsupported_media_type'
  | 'body_truncated';

/** Where a request failed; `name` and `pointer` come from the request's keys, never its values. */
export interface Violation {
  readonly in: ParamIn | 'body';
  readonly name?: string;
  readonly pointer?: string;
  readonly problem: string;
}

export interface Refusal {
  readonly status: 400 | 404 | 405 | 413 | 415;
  readonly reason: RefusalReason;
  readonly violations: readonly Violation[];
  /** 405: the methods the path has. */
  readonly allow?: readonly string[];
}

export type TruncatedBody = 'refuse' | 'headers_only';

/** What the policy input already parsed (parsed_query, parsed_body): reused, not parsed again. */
export interface Parsed {
  readonly query?: Readonly<Record<string, readonly string[]>>;
  readonly body?: ParsedBody;
}

const refuse = (status: Refusal['status'], reason: RefusalReason, violations: Violation[] = []): Refusal => ({ status, reason, violations });

/** An Ajv error of the parameters object (`/query/limit/0`) as a violation. */
/** A missing or undocumented key named as a pointer below `at`; other failures at `at` with Ajv's rule. */
function located(e: ErrorObject, at: string): { pointer: string; problem: string } {
  const p = e.params as { missingProperty?: string; additionalProperty?: string };
  if (e.keyword === 'required' && p.missingProperty !== undefined) return { pointer: `${at}/${p.missingProperty}`, problem: 'is required' };
  if (e.keyword === 'additionalProperties' && p.additionalProperty !== undefined) return { pointer: `${at}/${p.additionalProperty}`, problem: 'is not a documented property' };
  return { pointer: at, problem: e.message ?? e.keyword };
}

const unescapePointer = (t: string): string => t.replace(/~1/g, '/').replace(/~0/g, '~');

/** An Ajv error of the parameters object (`/query/limit/0`) as a violation. */
function paramViolation(e: ErrorObject): Violation {
  const [, where, name, ...rest] = e.instancePath.split('/');
  const at = (where ?? 'query') as ParamIn;
  if (name === undefined) {
    // The parameter itself is missing or undocumented: `pointer` names it.
    const { pointer, problem } = located(e, '');
    const key = pointer.slice(1);
    return key === '' ? { in: at, problem } : { in: at, name: key, problem: problem === 'is not a documented property' ? 'is not a documented parameter' : problem };
  }
  const { pointer, problem } = located(e, rest.length > 0 ? `/${rest.join('/')}` : '');
  return { in: at, name: unescapePointer(name), ...(pointer !== '' ? { pointer } : {}), problem };
}

function bodyViolation(e: ErrorObject): Violation {
  const { pointer, problem } = located(e, e.instancePath);
  return { in: 'body', pointer: pointer === '' ? '/' : pointer, problem };
}

function validateParams(op: CompiledOperation, pathParams: Readonly<Record<string, string>>, req: RequestView, given: Readonly<Record<string, readonly string[]>> | undefined): Refusal | undefined {
  const data: Record<ParamIn, Record<string, unknown>> = { path: dict(), query: dict(), header: dict(), cookie: dict() };
  let query: Readonly<Record<string, readonly string[]>>;
  try {
    query = given ?? (req.query === '' ? {} : parseQuery(req.query));
  } catch (err) {
    if (!(err instanceof RequestParseError)) throw err;
    return refuse(400, 'invalid_parameter', [{ in: 'query', problem: 'the query string cannot be read' }]);
  }
  const used = new Set<string>();
  let cookies: ReadonlyMap<string, string> | undefined;
  try {
    for (const p of op.params) {
      let v: unknown;
      if (p.in === 'path') {
        const raw = pathParams[p.name];
        v = raw === undefined || raw === '' ? undefined : pathValue(p, raw);
      } else if (p.in === 'query') {
        const q = queryValue(p, query);
        for (const k of q.used) used.add(k);
        v = q.value;
      } else if (p.in === 'header') v = headerValue(p, req.headers);
      else {
        cookies ??= parseCookies(req.headers.get('cookie'));
        v = cookieValue(p, cookies);
      }
      if (v !== undefined) data[p.in][p.in === 'header' ? p.name.toLowerCase() : p.name] = v;
    }
  } catch (err) {
    if (!(err instanceof ParamSyntaxError)) throw err;
    return refuse(400, 'invalid_parameter', [{ in: err.param.in, name: err.param.name, problem: err.message }]);
  }
  // Query parameters no declaration read: undocumented ones (refused when the spec is configured so).
  for (const [k, vs] of Object.entries(query)) if (!used.has(k) && !Object.hasOwn(data.query, k)) data.query[k] = vs[0] ?? '';
  if (op.validateParams(data)) return undefined;
  return refuse(400, 'invalid_parameter', (op.validateParams.errors ?? []).slice(0, 1).map(paramViolation));
}

/** The entry for a content type: exact, then `type/*`, then `*\/*`. */
function mediaFor(media: readonly MediaEntry[], type: string): MediaEntry | undefined {
  const slash = type.indexOf('/');
  const wildcard = `${type.slice(0, slash)}/*`;
  return media.find((m) => m.range === type) ?? media.find((m) => m.range === wildcard) ?? media.find((m) => m.range === '*/*');
}

/** Form and multipart fields are lists of strings (or parsed JSON parts): single values unless the schema says array. */
function fields(parsed: unknown, arrays: ReadonlySet<string> | undefined): Record<string, unknown> {
  const out = dict<unknown>();
  if (parsed === null || typeof parsed !== 'object') return out;
  for (const [k, vs] of Object.entries(parsed as Record<string, unknown[]>)) out[k] = arrays?.has(k) ? [...vs] : vs[0];
  return out;
}

function hasBody(req: RequestView): boolean {
  const http = req.raw.attributes?.request?.http;
  if ((http?.body ?? '') !== '' || (http?.raw_body?.length ?? 0) > 0) return true;
  const cl = req.headers.get('content-length');
  return (cl !== undefined && cl !== '0') || req.headers.has('transfer-encoding');
}

function run(validate: ValidateFunction, data: unknown): Refusal | undefined {
  if (validate(data)) return undefined;
  return refuse(400, 'invalid_body', (validate.errors ?? []).slice(0, 1).map(bodyViolation));
}

function validateBody(op: CompiledOperation, req: RequestView, truncated: TruncatedBody, given: ParsedBody | undefined): Refusal | undefined {
  const spec = op.body;
  if (!spec) return undefined;
  if (req.headers.get('x-envoy-auth-partial-body') === 'true') return truncated === 'refuse' ? refuse(413, 'body_truncated') : undefined;
  if (!hasBody(req)) return spec.required ? refuse(400, 'body_required', [{ in: 'body', problem: 'a request body is required' }]) : undefined;
  const ct = req.headers.get('content-type');
  let type: string;
  try {
    type = ct === undefined ? '' : parseMediaType(ct).type;
  } catch {
    type = '';
  }
  const entry = type === '' ? undefined : mediaFor(spec.media, type);
  if (!entry) return refuse(415, 'unsupported_media_type', [{ in: 'header', name: 'content-type', problem: `must be one of ${spec.media.map((m) => m.range).join(', ')}` }]);
  if (!entry.validate) return undefined;
  const http = req.raw.attributes?.request?.http;
  const text = (): string => (http?.body ?? '') !== '' ? (http?.body ?? '') : (http?.raw_body?.toString('utf8') ?? '');
  let parsed: ParsedBody;
  try {
    parsed = given ?? parseBody(Object.fromEntries(req.headers), http?.body ?? '', http?.raw_body);
    // envoy/body.ts reads application/json; other JSON media types (+json) the same way, here.
    if (entry.kind === 'json' && parsed.parsed === null && !parsed.truncated && !type.includes('application/json')) {
      const t = text();
      if (t.length <= MAX_PARSED_BODY) {
        try {
          parsed = { parsed: JSON.parse(t) as unknown, truncated: false };
        } catch {
          throw new RequestParseError('body is not valid JSON');
        }
      }
    }
  } catch (err) {
    if (!(err instanceof RequestParseError)) throw err;
    return refuse(400, 'invalid_body', [{ in: 'body', pointer: '/', problem: err.message }]);
  }
  // Cut by Envoy (content-length longer than what arrived) or too large to parse: not verifiable.
  if (parsed.truncated || parsed.parsed === null) return truncated === 'refuse' ? refuse(413, 'body_truncated') : undefined;
  return run(entry.validate, entry.kind === 'json' ? parsed.parsed : fields(parsed.parsed, entry.arrays));
}

/** The first problem of the request, or undefined when it matches its operation. */
export function validateRequest(
  op: CompiledOperation,
  pathParams: Readonly<Record<string, string>>,
  req: RequestView,
  opts: { readonly truncatedBody: TruncatedBody; readonly parsed?: Parsed },
): Refusal | undefined {
  return validateParams(op, pathParams, req, opts.parsed?.query) ?? validateBody(op, req, opts.truncatedBody, opts.parsed?.body);
}
