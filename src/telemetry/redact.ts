// What a log record may contain, enforced once for every logger (src/telemetry/logger.ts):
//   - values under credential-named keys are censored (any case, any depth; booleans stay:
//     `token: true` says a mode is on, it is no secret);
//   - credentials are masked by their shape wherever they appear in a string: JWS/JWE compact
//     forms, our API keys (src/authn/apikey-format.ts: the prefix and id stay, the secret goes),
//     and Bearer/Basic/Negotiate credentials;
//   - in fields copied from a request (path, host, request id, rate-limit descriptors...), long
//     opaque runs that look like bearer tokens are masked too;
//   - every string is cut at MAX_FIELD_CHARS and every array at MAX_ARRAY_ITEMS, with a marker
//     saying how much was cut;
//   - the walk goes all the way down (a value deeper than MAX_DEPTH = 32 is replaced, never
//     passed through unredacted); a cycle guard stops it on cyclic objects.
import { toLower } from '../lib/case.js';

export const REDACTED = '[REDACTED]';
export const CIRCULAR = '[Circular]';
export const MAX_FIELD_CHARS = 256;
export const MAX_ARRAY_ITEMS = 64;

export const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'token',
  'access_token',
  'id_token',
  'refresh_token',
  'jwt',
  'api_key',
  'apikey',
  'x-api-key',
  'password',
  'secret',
  'client_secret',
  'private_key',
]);

/** Keys whose values (and everything under them) come from a request, as the client sent it. */
const REQUEST_KEYS: ReadonlySet<string> = new Set(['path', 'host', 'request_id', 'query_keys', 'descriptor', 'descriptors', 'url', 'authority', 'user_agent', 'referer']);

export const sensitiveKey = (key: string): boolean => SENSITIVE_KEYS.has(key) || SENSITIVE_KEYS.has(toLower(key));

// The shortest string any shape below can match ("Basic " + 8); shorter strings skip the regexes.
const MIN_SHAPE_CHARS = 14;
// Every pattern here is linear (no nested quantifiers) and runs on at most MAX_FIELD_CHARS
// characters, and only when a cheap substring test finds the part every match needs.
// JOSE compact serialization: a base64url JSON header ("eyJ" = '{"'), then dot-separated parts.
// Also matches a token cut short by the length cap.
const JOSE = /(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)*/g;
// <prefix>_<id>_<secret>_<crc>: keeps <prefix>_<id> (an id is no secret: it names the key).
const API_KEY = /(?<![A-Za-z0-9])([a-z][a-z0-9]{1,15}_[A-Za-z0-9]{12})_[A-Za-z0-9]{8,}(?:_[A-Za-z0-9]*)?/g;
const API_KEY_MIN = 2 + 1 + 12 + 1 + 8;
const AUTH_SCHEME = /\b(bearer|basic|negotiate)[ \t]+[A-Za-z0-9._~+/=-]{8,}/gi;
// A long opaque run of base64/base64url characters mixing upper case, lower case and digits.
const OPAQUE = /[A-Za-z0-9_+=-]{40,}/g;
const OPAQUE_MIN = 40;

function opaqueRun(run: string): string {
  let upper = false;
  let lower = false;
  let digit = false;
  let separators = 0;
  for (let i = 0; i < run.length; i++) {
    const c = run.charCodeAt(i);
    if (c >= 65 && c <= 90) upper = true;
    else if (c >= 97 && c <= 122) lower = true;
    else if (c >= 48 && c <= 57) digit = true;
    else separators++;
  }
  // Words joined by dashes (a slug) are not a token.
  return upper && lower && digit && separators * 8 <= run.length ? REDACTED : run;
}

/** The string with credential-shaped parts masked; `fromRequest` adds the opaque-run rule. */
export function maskShapes(s: string, fromRequest: boolean): string {
  let out = s;
  if (out.includes('eyJ')) out = out.replace(JOSE, REDACTED);
  if (out.length >= API_KEY_MIN && out.includes('_')) out = out.replace(API_KEY, `$1_${REDACTED}`);
  if (out.includes(' ') || out.includes('\t')) out = out.replace(AUTH_SCHEME, `$1 ${REDACTED}`);
  if (fromRequest && out.length >= OPAQUE_MIN) out = out.replace(OPAQUE, opaqueRun);
  return out;
}

/** A logged string: cut to MAX_FIELD_CHARS (with a `…[+N]` marker), credential shapes masked. */
export function cleanString(s: string, fromRequest = false): string {
  const cut = s.length > MAX_FIELD_CHARS;
  let out = cut ? s.slice(0, MAX_FIELD_CHARS) : s;
  if (out.length >= MIN_SHAPE_CHARS) out = maskShapes(out, fromRequest);
  return cut ? `${out}…[+${s.length - MAX_FIELD_CHARS}]` : out;
}

// The containers from the root down to the current one: meeting one of them again is a cycle.
// (An array, not a WeakSet: the walk is at most MAX_DEPTH deep, and a record of the hot path has
// one or two levels, so a short linear search is cheaper than a set per record.)
type Ancestors = object[];
/** Beyond this depth a value is replaced, never passed through: a bound for the stack, not a hole in redaction. */
export const MAX_DEPTH = 32;
export const TOO_DEEP = '[Too deep]';

function walkArray(arr: readonly unknown[], fromRequest: boolean, up: Ancestors): unknown {
  up.push(arr);
  const n = Math.min(arr.length, MAX_ARRAY_ITEMS);
  let out: unknown[] | undefined = arr.length > n ? arr.slice(0, n) : undefined;
  for (let i = 0; i < n; i++) {
    const v = arr[i];
    const r = typeof v === 'string' ? (v.length < MIN_SHAPE_CHARS ? v : cleanString(v, fromRequest)) : v !== null && typeof v === 'object' ? walk(v, fromRequest, up) : v;
    if (r !== v) (out ??= arr.slice(0, n))[i] = r;
  }
  if (arr.length > n) out!.push(`…[+${arr.length - n}]`);
  up.pop();
  return out ?? arr;
}

function walkRecord(rec: Record<string, unknown>, fromRequest: boolean, up: Ancestors): Record<string, unknown> {
  up.push(rec);
  let out: Record<string, unknown> | undefined;
  for (const key in rec) {
    const v = rec[key];
    let r: unknown;
    if (typeof v === 'string') r = sensitiveKey(key) ? REDACTED : v.length < MIN_SHAPE_CHARS ? v : cleanString(v, fromRequest || REQUEST_KEYS.has(key));
    else if (v === null || typeof v !== 'object') r = v === undefined || typeof v === 'boolean' || !sensitiveKey(key) ? v : REDACTED;
    else r = sensitiveKey(key) ? REDACTED : walk(v, fromRequest || REQUEST_KEYS.has(key), up);
    if (r !== v) (out ??= { ...rec })[key] = r;
  }
  up.pop();
  return out ?? rec;
}

function walk(value: object, fromRequest: boolean, up: Ancestors): unknown {
  if (up.includes(value)) return CIRCULAR;
  if (up.length >= MAX_DEPTH) return TOO_DEEP;
  if (Array.isArray(value)) return walkArray(value, fromRequest, up);
  // Errors, Maps, Buffers... are left to pino's serializers; only plain records are walked.
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  return walkRecord(value as Record<string, unknown>, fromRequest, up);
}

/**
 * The value as it may be logged (see the top of this file); the same reference when nothing
 * changes (the common case copies nothing). Callers' objects are never modified. It replaces
 * pino's path-based redaction, whose wildcard paths were the largest single cost of a Check
 * (docs/performance.md).
 */
export function redact(value: unknown): unknown {
  if (typeof value === 'string') return cleanString(value);
  if (value === null || typeof value !== 'object') return value;
  // One ancestors list for every walk (an array per record was ~190 bytes of a Check); a fresh
  // one should a walk ever start inside another (a getter that logs).
  if (walking) return walk(value, false, []);
  walking = true;
  try {
    return walk(value, false, ancestors);
  } finally {
    walking = false;
    // Empty already unless the walk threw (setting the length would also drop the array's store).
    if (ancestors.length > 0) ancestors.length = 0;
  }
}

const ancestors: Ancestors = [];
let walking = false;
