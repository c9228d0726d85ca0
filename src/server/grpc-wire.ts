// The gRPC-over-HTTP/2 wire rules the transport applies to every call, kept pure so each is tested
// on its own: content-type, grpc-timeout, grpc-message encoding, request metadata, message framing
// and decompression (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md).
import { gunzip } from 'node:zlib';
import { toLower } from '../lib/case.js';

export const GRPC_CONTENT_TYPE = 'application/grpc';
/** The request encodings we decode; sent as grpc-accept-encoding on every answer. */
export const ACCEPT_ENCODING = 'identity,gzip';
export const HEADER_BYTES = 5;

// Request headers that are transport, not call metadata (grpc-go's reserved set, plus the
// encodings we act on).
const RESERVED = new Set(['content-type', 'te', 'grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'grpc-message-type', 'grpc-message', 'grpc-status', 'user-agent', 'connection']);
const TIMEOUT_UNITS: Record<string, number> = { H: 3600000, M: 60000, S: 1000, m: 1, u: 0.001, n: 0.000001 };
const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
// Base64 with or without padding (gRPC senders may omit it); linear, no backtracking.
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Whether a content-type is gRPC with the protobuf codec: `application/grpc` or
 * `application/grpc+proto`, optionally followed by `;` parameters. Anything else - another codec
 * (`+json`), another media type that merely starts alike (`application/grpcXYZ`,
 * `application/grpc-web+proto`) - is not ours to decode.
 */
export function isGrpcProtoContentType(value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.toLowerCase();
  if (!v.startsWith(GRPC_CONTENT_TYPE)) return false;
  let rest = v.slice(GRPC_CONTENT_TYPE.length);
  if (rest.startsWith('+proto')) rest = rest.slice(6);
  return rest === '' || rest[0] === ';';
}

/**
 * grpc-timeout ("100m", "5S", ...) as an absolute deadline in ms since the epoch: Infinity when
 * absent, undefined when malformed (the call is then refused with INTERNAL, as grpc-go and grpc-js do).
 */
export function parseGrpcTimeout(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return Infinity;
  const m = TIMEOUT.exec(value);
  return m ? now + Number(m[1]) * TIMEOUT_UNITS[m[2]!]! : undefined;
}

const percent = (c: string): string => {
  let out = '';
  // UTF-8 bytes of the character; a lone surrogate becomes U+FFFD instead of throwing.
  for (const b of Buffer.from(c, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
};

/** grpc-message: percent-encoded outside printable ASCII (and '%' itself), as the gRPC spec says; never throws. */
export function encodeGrpcMessage(message: string): string {
  return message.replace(/[^\x20-\x24\x26-\x7e]/gu, percent);
}

export type MetadataValue = string | Buffer;

/**
 * Call metadata as grpc-js exposes it: every value of a key, `-bin` values decoded to Buffers.
 * Without `-bin` values it keeps node:http2's raw header list and reads it when asked: a Check
 * reads at most one key, and a Map of every key was garbage on every call.
 */
export class CallMetadata {
  private parsed: ReadonlyMap<string, readonly MetadataValue[]> | undefined;
  private readonly raw: readonly string[] | undefined;

  constructor(source: ReadonlyMap<string, readonly MetadataValue[]> | readonly string[]) {
    if (Array.isArray(source)) this.raw = source as readonly string[];
    else this.parsed = source as ReadonlyMap<string, readonly MetadataValue[]>;
  }

  private get values(): ReadonlyMap<string, readonly MetadataValue[]> {
    this.parsed ??= metadataValues(this.raw!)!;
    return this.parsed;
  }

  /** Every value sent for a key, in order. */
  get(key: string): MetadataValue[] {
    const k = key.toLowerCase();
    const raw = this.raw;
    if (this.parsed || !raw || k.endsWith('-bin')) return [...(this.values.get(k) ?? [])];
    const out: MetadataValue[] = [];
    if (k[0] === ':' || RESERVED.has(k)) return out;
    for (let i = 0; i + 1 < raw.length; i += 2) if (toLower(raw[i]!) === k) out.push(raw[i + 1]!);
    return out;
  }

  /**
   * One value per key. Text values sent more than once are joined with ", " (what an HTTP
   * intermediary may do anyway); a `-bin` key gives its first value.
   */
  getMap(): Record<string, MetadataValue> {
    const out: Record<string, MetadataValue> = {};
    for (const [k, vs] of this.values) out[k] = k.endsWith('-bin') ? vs[0]! : vs.length === 1 ? vs[0]! : (vs as string[]).join(', ');
    return out;
  }
}

/**
 * The call metadata of a request, from node:http2's raw header list (name, value, name, value...):
 * repeated keys keep all their values, `-bin` values are base64-decoded (comma-separated values
 * being several). A malformed `-bin` value: undefined (grpc-go answers INTERNAL).
 */
export function parseMetadata(rawHeaders: readonly string[]): CallMetadata | undefined {
  // Only -bin values can be malformed: without one, the list is read when asked (CallMetadata).
  let binary = false;
  for (let i = 0; i + 1 < rawHeaders.length && !binary; i += 2) binary = toLower(rawHeaders[i]!).endsWith('-bin');
  if (!binary) return new CallMetadata(rawHeaders);
  const values = metadataValues(rawHeaders);
  return values && new CallMetadata(values);
}

function metadataValues(rawHeaders: readonly string[]): Map<string, MetadataValue[]> | undefined {
  const values = new Map<string, MetadataValue[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase();
    if (key[0] === ':' || RESERVED.has(key)) continue;
    const raw = rawHeaders[i + 1]!;
    let list = values.get(key);
    if (!list) values.set(key, (list = []));
    if (!key.endsWith('-bin')) {
      list.push(raw);
      continue;
    }
    for (const part of raw.split(',')) {
      const b64 = part.trim();
      if (!BASE64.test(b64)) return undefined;
      list.push(Buffer.from(b64, 'base64'));
    }
  }
  return values;
}

/** A length-prefixed, uncompressed gRPC message. */
export function frame(body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = 0;
  out.writeUInt32BE(body.length, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

export type RequestEncoding = 'identity' | 'gzip';

/** The request's grpc-encoding, or undefined for one we cannot decode (answered UNIMPLEMENTED). */
export function requestEncoding(value: string | undefined): RequestEncoding | undefined {
  if (value === undefined || value === 'identity') return 'identity';
  return value === 'gzip' ? 'gzip' : undefined;
}

/** Why a request body is not one usable message. */
export type MessageProblem = 'framing' | 'compressed_without_encoding' | 'too_large' | 'corrupt';

/**
 * The single request message of a unary/server-streaming call, decompressed. gzip is inflated
 * chunk by chunk and stops as soon as the output passes `maxBytes` (zlib's maxOutputLength), so a
 * small bomb never allocates more than the cap.
 */
export function readMessage(body: Buffer, encoding: RequestEncoding, maxBytes: number): Promise<Buffer> | Buffer | MessageProblem {
  const length = body.length >= HEADER_BYTES ? body.readUInt32BE(1) : -1;
  if (length < 0 || body.length !== HEADER_BYTES + length || body[0]! > 1) return 'framing';
  const payload = body.subarray(HEADER_BYTES);
  if (body[0] === 0) return payload;
  if (encoding === 'identity') return 'compressed_without_encoding';
  return new Promise((resolve, reject) =>
    gunzip(payload, { maxOutputLength: maxBytes }, (err, out) => {
      if (!err) return resolve(out);
      reject(new MessageError((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' ? 'too_large' : 'corrupt'));
    }),
  );
}

export class MessageError extends Error {
  constructor(readonly problem: MessageProblem) {
    super(problem);
  }
}
