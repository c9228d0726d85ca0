// The request to evaluate, as the service would receive it: a full CheckRequest (JSON with the
// proto's field names, or their lowerCamelCase JSON names) or the short form, plus the credential
// flags, encoded to protobuf and decoded by the same gRPC deserializer the server uses.
import type protobuf from 'protobufjs';
import type { Config } from '../../config/schema.js';
import { envoyReflection } from '../../envoy/protos.js';
import { jsonToStruct } from '../../envoy/struct.js';
import type { CheckRequest, CheckRequest__Output } from '../../gen/envoy/service/auth/v3/CheckRequest.js';
import type { CheckResponse, CheckResponse__Output } from '../../gen/envoy/service/auth/v3/CheckResponse.js';
import { UsageError } from './usage-error.js';
import { checkMethod as serverCheckMethod } from '../../server/codecs.js';

/** The short form: the few fields a policy author sets by hand. */
export interface ShortForm {
  readonly method?: string;
  readonly path?: string;
  readonly host?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly source_address?: string;
  readonly context_extensions?: Readonly<Record<string, string>>;
  /** Stands in for authentication (see identity.ts). */
  readonly identity?: unknown;
}
const SHORT_KEYS = new Set(['method', 'path', 'host', 'headers', 'body', 'source_address', 'context_extensions', 'identity']);

/** What the credential flags add, as the service would see it from Envoy. */
export interface Credentials {
  /** A bearer token, sent in authentication.header with authentication.scheme. */
  readonly token?: string;
  /** An API key, sent in authentication.api_keys.header. */
  readonly apiKey?: string;
  /** Extra request headers (lower-case names). */
  readonly headers: Readonly<Record<string, string>>;
  /** The peer certificate PEM (Envoy forwards it URL-encoded in source.certificate). */
  readonly clientCertPem?: string;
  /** The peer principal Envoy took from the certificate (source.principal). */
  readonly principal?: string;
  readonly sourceAddress?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function stringMap(v: unknown, at: string): Record<string, string> {
  if (v === undefined) return {};
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw new UsageError(`${at} must be an object of strings`);
  return v as Record<string, string>;
}

function optionalString(v: unknown, at: string): string | undefined {
  if (v !== undefined && typeof v !== 'string') throw new UsageError(`${at} must be a string`);
  return v;
}

/** The short form as a CheckRequest (proto field names), shaped as Envoy sends one. */
function fromShortForm(s: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(s)) if (!SHORT_KEYS.has(k)) throw new UsageError(`request: unknown short-form field ${JSON.stringify(k)} (a full CheckRequest has "attributes")`);
  const headers = Object.fromEntries(Object.entries(stringMap(s.headers, 'request.headers')).map(([k, v]) => [k.toLowerCase(), v]));
  const method = (optionalString(s.method, 'request.method') ?? 'GET').toUpperCase();
  const path = optionalString(s.path, 'request.path') ?? '/';
  const host = optionalString(s.host, 'request.host') ?? headers[':authority'] ?? headers.host ?? 'localhost';
  const body = optionalString(s.body, 'request.body');
  const address = optionalString(s.source_address, 'request.source_address');
  return {
    attributes: {
      ...(address !== undefined ? { source: { address: { socket_address: { address, port_value: 0 } } } } : {}),
      request: {
        http: {
          method,
          path,
          host,
          scheme: 'http',
          protocol: 'HTTP/1.1',
          headers: { ':method': method, ':path': path, ':authority': host, ...headers },
          ...(body !== undefined ? { body, size: String(Buffer.byteLength(body)) } : {}),
        },
      },
      context_extensions: stringMap(s.context_extensions, 'request.context_extensions'),
    },
  };
}

function jsonNameOf(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const isMessage = (t: protobuf.Type | protobuf.Enum | null): t is protobuf.Type => t !== null && 'fieldsArray' in t;

/** RFC 3339 -> google.protobuf.Timestamp, as protojson reads it. */
function timestamp(v: string, at: string): { seconds: string; nanos: number } {
  const ms = Date.parse(v);
  if (Number.isNaN(ms)) throw new UsageError(`${at}: not an RFC 3339 time`);
  const frac = /\.(\d{1,9})/.exec(v)?.[1] ?? '';
  return { seconds: String(Math.floor(ms / 1000)), nanos: Number(frac.padEnd(9, '0')) || 0 };
}

/**
 * Checks a JSON message against its type and renames JSON names to proto names: an unknown field
 * is an error here (the protobuf encoder would drop it silently). Struct is plain JSON, Timestamp
 * an RFC 3339 string or {seconds, nanos}, bytes base64, enums by name or number, as in protojson.
 */
function toProtoNames(type: protobuf.Type, v: unknown, at: string): unknown {
  if (type.fullName === '.google.protobuf.Struct') {
    if (!isObject(v)) throw new UsageError(`${at} must be a JSON object`);
    return jsonToStruct(v);
  }
  if (type.fullName === '.google.protobuf.Timestamp' && typeof v === 'string') return timestamp(v, at);
  if (!isObject(v)) throw new UsageError(`${at} must be an object (${type.name})`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const f = type.fields[k] ?? type.fieldsArray.find((g) => jsonNameOf(g.name) === k);
    if (!f) throw new UsageError(`${at}.${k}: ${type.name} has no such field`);
    const rt = f.resolve().resolvedType;
    const where = `${at}.${k}`;
    if (!isMessage(rt) || x === null) out[f.name] = x;
    else if (f.map) out[f.name] = Object.fromEntries(Object.entries(stringMapOf(x, where)).map(([mk, mv]) => [mk, toProtoNames(rt, mv, `${where}.${mk}`)]));
    else if (f.repeated) {
      if (!Array.isArray(x)) throw new UsageError(`${where} must be a list`);
      out[f.name] = x.map((y, i) => toProtoNames(rt, y, `${where}[${i}]`));
    } else out[f.name] = toProtoNames(rt, x, where);
  }
  return out;
}

function stringMapOf(v: unknown, at: string): Record<string, unknown> {
  if (!isObject(v)) throw new UsageError(`${at} must be an object`);
  return v;
}

/** Check's wire codec as grpc-js uses it: what goes in is typed loosely, what comes out as decoded. */
interface CheckCodec {
  requestSerialize(value: CheckRequest): Buffer;
  requestDeserialize(bytes: Buffer): CheckRequest__Output;
  responseSerialize(value: CheckResponse): Buffer;
  responseDeserialize(bytes: Buffer): CheckResponse__Output;
}

let codec: CheckCodec | undefined;

/** The server's own codec (src/server/codecs.ts: its request decoder, its response writer), made once. */
function checkMethod(): CheckCodec {
  return (codec ??= serverCheckMethod() as CheckCodec);
}

/** Where the service looks for each credential (authentication.header/scheme, api_keys.header). */
export interface CredentialPlaces {
  readonly bearerHeader: string;
  readonly scheme: string;
  readonly apiKeyHeader: string;
}

export function credentialPlaces(a: Config['authentication']): CredentialPlaces {
  return { bearerHeader: a.header.toLowerCase(), scheme: a.scheme, apiKeyHeader: (a.api_keys?.header ?? 'x-api-key').toLowerCase() };
}

/** Adds the credential flags to a CheckRequest (proto field names) in place. */
function addCredentials(req: Record<string, unknown>, c: Credentials, places: CredentialPlaces): void {
  const attributes = (req.attributes ??= {}) as Record<string, unknown>;
  const request = (attributes.request ??= {}) as Record<string, unknown>;
  const http = (request.http ??= {}) as Record<string, unknown>;
  const headers: Record<string, string> = { ...c.headers };
  if (c.token !== undefined) headers[places.bearerHeader] = places.scheme === '' ? c.token : `${places.scheme} ${c.token}`;
  if (c.apiKey !== undefined) headers[places.apiKeyHeader] = c.apiKey;
  const headerMap = http.header_map as { headers?: { key?: string; raw_value?: unknown }[] } | undefined;
  if (headerMap && http.headers === undefined) {
    // encode_raw_headers: the server reads header_map alone, so the credentials go there.
    const names = new Set(Object.keys(headers));
    const kept = (headerMap.headers ?? []).filter((h) => !names.has((h.key ?? '').toLowerCase()));
    headerMap.headers = [...kept, ...Object.entries(headers).map(([key, value]) => ({ key, raw_value: Buffer.from(value) }))];
  } else if (Object.keys(headers).length > 0) http.headers = { ...(http.headers as Record<string, string> | undefined), ...headers };
  if (c.clientCertPem === undefined && c.principal === undefined && c.sourceAddress === undefined) return;
  const source = (attributes.source ??= {}) as Record<string, unknown>;
  // Envoy's own encoding of the peer certificate: URL-encoded PEM.
  if (c.clientCertPem !== undefined) source.certificate = encodeURIComponent(c.clientCertPem);
  if (c.principal !== undefined) source.principal = c.principal;
  if (c.sourceAddress !== undefined) source.address = { socket_address: { address: c.sourceAddress, port_value: 0 } };
}

export interface ParsedRequest {
  readonly request: CheckRequest__Output;
  /** The short form's `identity`, when given. */
  readonly identity?: unknown;
  readonly form: 'short' | 'check_request';
}

/** The document (already JSON-parsed) -> the decoded CheckRequest the server would hand to the pipeline. */
export function parseRequest(doc: unknown, creds: Credentials, places: CredentialPlaces): ParsedRequest {
  if (!isObject(doc)) throw new UsageError('request: expected a JSON object (a CheckRequest or the short form)');
  const full = 'attributes' in doc;
  const message = full
    ? (toProtoNames(envoyReflection().lookupType('envoy.service.auth.v3.CheckRequest'), doc, 'request') as Record<string, unknown>)
    : fromShortForm(doc);
  addCredentials(message, creds, places);
  const m = checkMethod();
  let request: CheckRequest__Output;
  try {
    request = m.requestDeserialize(m.requestSerialize(message));
  } catch (err) {
    throw new UsageError(`request: not a valid CheckRequest: ${err instanceof Error ? err.message : String(err)}`);
  }
  return { request, form: full ? 'check_request' : 'short', ...(!full && doc.identity !== undefined && doc.identity !== null ? { identity: doc.identity } : {}) };
}

/** A CheckResponse as the client decodes it off the wire (what Envoy receives). */
export function asReceived(resp: CheckResponse): CheckResponse__Output {
  const m = checkMethod();
  return m.responseDeserialize(m.responseSerialize(resp));
}
