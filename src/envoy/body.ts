// parsed_body and truncated_body as opa-envoy-plugin computes them (envoyauth.getParsedBody), by
// content-type: JSON, x-www-form-urlencoded, multipart/form-data (JSON parts parsed), application/grpc
// with a descriptor set (./grpc-body.ts); anything
// else, no content-type, or an empty body: no parsed body. A body that cannot be read as its
// content-type says is a RequestParseError (the plugin answers 400), never a silent null.
import { RequestParseError } from '../lib/errors.js';
import type { GrpcBodies } from './grpc-body.js';
import { parseQuery } from './go-url.js';
import { parseMediaType } from './media-type.js';
import { parseMultipart } from './multipart.js';

/** Bodies above this are not parsed (parsed_body absent-as-null): Envoy's max_request_bytes is normally far below. */
export const MAX_PARSED_BODY = 1024 * 1024;

export interface ParsedBody {
  /** undefined: the plugin's nil (null in the input document). */
  readonly parsed: unknown;
  readonly truncated: boolean;
}

const NONE: ParsedBody = { parsed: null, truncated: false };
const TRUNCATED: ParsedBody = { parsed: null, truncated: true };

function json(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RequestParseError('body is not valid JSON');
  }
}

/** content-length is a decimal integer or a parse error; a body shorter than it was truncated by Envoy. */
function truncatedBy(contentLength: string | undefined, payload: string): boolean {
  if (contentLength === undefined) return false;
  if (!/^[+-]?[0-9]{1,19}$/.test(contentLength)) throw new RequestParseError('content-length is not an integer');
  const cl = Number(contentLength);
  return cl !== -1 && cl > Buffer.byteLength(payload);
}

/** With a descriptor set (policy.proto_descriptor): application/grpc bodies too, by the request's parsed_path. */
export interface GrpcParsing {
  readonly bodies: GrpcBodies;
  readonly parsedPath: readonly string[];
}

export function parseBody(headers: Readonly<Record<string, string>>, body: string, rawBody: Buffer | undefined, grpc?: GrpcParsing): ParsedBody {
  // Envoy marks a body it cut at max_request_bytes (also when there is no content-length).
  if (headers['x-envoy-auth-partial-body'] === 'true') return TRUNCATED;
  const type = headers['content-type'];
  if (type === undefined) return NONE;
  const isJson = type.includes('application/json');
  if (!isJson && type.includes('application/grpc')) {
    if (!grpc || (rawBody && rawBody.length > MAX_PARSED_BODY)) return NONE;
    return grpc.bodies.parse(rawBody, grpc.parsedPath);
  }
  const isForm = !isJson && type.includes('application/x-www-form-urlencoded');
  const isMultipart = !isJson && !isForm && type.includes('multipart/form-data');
  if (!isJson && !isForm && !isMultipart) return NONE;
  const payload = body !== '' ? body : rawBody && rawBody.length > 0 ? rawBody.toString('utf8') : '';
  if (payload === '') return NONE;
  if (truncatedBy(headers['content-length'], payload)) return TRUNCATED;
  if (payload.length > MAX_PARSED_BODY) return NONE;
  if (isJson) return { parsed: json(payload), truncated: false };
  if (isForm) return { parsed: parseQuery(payload), truncated: false };
  const boundary = parseMediaType(type).params.boundary;
  return boundary === undefined ? NONE : { parsed: parseMultipart(payload, boundary, json), truncated: false };
}
