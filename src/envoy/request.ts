// envoy/: pure translators at the edges - Envoy's protos, CheckRequest -> RequestView (path.ts),
// -> policy input (input.ts and its parsers), Decision -> CheckResponse (response.ts).
// Pure translator: Envoy's CheckRequest -> the small, normalized view every stage reads.
// No I/O, no config: unit-tested on its own.
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import { normalizePath, splitTarget } from './path.js';
import { toLower, toUpper } from '../lib/case.js';

export interface RequestView {
  /** Envoy's request id (x-request-id), for correlation in logs. */
  readonly id: string;
  readonly method: string;
  /** :authority without the port, lower-cased. */
  readonly host: string;
  /** Path without query or fragment, normalized as Envoy's normalize_path + merge_slashes do (./path.ts). */
  readonly path: string;
  /** The path cannot be normalized safely (`path` is then as sent): the request is refused with 400. */
  readonly pathInvalid: boolean;
  /** Raw query string without the leading `?` ('' when none). */
  readonly query: string;
  /** The query parameters' names, decoded, lower-cased, each once, sorted (for the URL-credential check and the audit record). */
  readonly queryNames: readonly string[];
  /** Lower-cased header names. Envoy joins repeated headers with ','. */
  readonly headers: ReadonlyMap<string, string>;
  readonly source: {
    readonly address?: string;
    readonly principal?: string;
    /** URL-encoded PEM of the downstream client certificate, when Envoy includes it. */
    readonly certificate?: string;
  };
  readonly contextExtensions: Readonly<Record<string, string>>;
  /** The request as Envoy sent it, for the policy input (built only when a policy runs). */
  readonly raw: CheckRequest__Output;
}

/**
 * The decoded header map as a ReadonlyMap, read in place: a Map of a request's headers was about
 * 900 bytes per Check. Used when every name is lower case already - Envoy lower-cases header
 * names (HTTP/2 requires it) - which `headerEntries` checks.
 */
class DecodedHeaders implements ReadonlyMap<string, string> {
  constructor(private readonly h: Readonly<Record<string, string>>) {}

  get(name: string): string | undefined {
    return Object.hasOwn(this.h, name) ? this.h[name] : undefined;
  }

  has(name: string): boolean {
    return Object.hasOwn(this.h, name);
  }

  get size(): number {
    let n = 0;
    for (const k in this.h) if (Object.hasOwn(this.h, k)) n++;
    return n;
  }

  *entries(): MapIterator<[string, string]> {
    for (const k in this.h) if (Object.hasOwn(this.h, k)) yield [k, this.h[k]!];
  }

  *keys(): MapIterator<string> {
    for (const k in this.h) if (Object.hasOwn(this.h, k)) yield k;
  }

  *values(): MapIterator<string> {
    for (const k in this.h) if (Object.hasOwn(this.h, k)) yield this.h[k]!;
  }

  forEach(fn: (value: string, key: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    for (const k in this.h) if (Object.hasOwn(this.h, k)) fn.call(thisArg, this.h[k]!, k, this);
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
}

function headerEntries(http: NonNullable<NonNullable<CheckRequest__Output['attributes']>['request']>['http']): ReadonlyMap<string, string> {
  if (http?.headers) {
    const h = http.headers;
    let lower = true;
    for (const k in h) if (Object.hasOwn(h, k) && toLower(k) !== k) lower = false;
    if (lower) return new DecodedHeaders(h);
    // Names that differ only in case (never from Envoy, which lower-cases them): the lower-case
    // one wins - the value a policy reads as headers[name] - else the first in the map's order
    // (sorted: src/envoy/plain-decoder.ts). Never the order they were sent in.
    const out = new Map<string, string>();
    for (const k in h) {
      if (!Object.hasOwn(h, k)) continue;
      const name = toLower(k);
      if (name === k || !out.has(name)) out.set(name, h[k]!);
    }
    return out;
  }
  const out = new Map<string, string>();
  if (http?.header_map?.headers) {
    // encode_raw_headers: true sends a HeaderMap with raw bytes instead of the string map.
    for (const h of http.header_map.headers) {
      if (!h.key) continue;
      const key = toLower(h.key);
      const value = h.raw_value && h.raw_value.length > 0 ? h.raw_value.toString('utf8') : (h.value ?? '');
      const prev = out.get(key);
      out.set(key, prev === undefined ? value : `${prev},${value}`);
    }
  }
  return out;
}

function stripPort(authority: string): string {
  if (authority.startsWith('[')) {
    const end = authority.indexOf(']');
    return end > 0 ? authority.slice(0, end + 1) : authority;
  }
  const colon = authority.lastIndexOf(':');
  return colon >= 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

export function toRequestView(req: CheckRequest__Output): RequestView {
  const attrs = req.attributes;
  const http = attrs?.request?.http;
  const target = splitTarget(http?.path ?? '/');
  const headers = headerEntries(http);
  const normalized = normalizePath(target.path);
  const sock = attrs?.source?.address?.socket_address;
  return {
    // x-request-id is what Envoy logs and forwards; http.id is only Envoy's internal stream id.
    id: headers.get('x-request-id') ?? http?.id ?? '',
    method: toUpper(http?.method ?? headers.get(':method') ?? ''),
    host: stripPort(toLower(http?.host ?? headers.get(':authority') ?? '')),
    path: normalized ?? target.path,
    pathInvalid: normalized === undefined,
    query: target.query ?? '',
    queryNames: queryNames(target.query ?? ''),
    headers,
    // One object, one shape (absent: undefined, never '').
    source: {
      address: sock?.address || undefined,
      principal: attrs?.source?.principal || undefined,
      certificate: attrs?.source?.certificate || undefined,
    },
    contextExtensions: attrs?.context_extensions ?? {},
    raw: req,
  };
}

const NO_NAMES: readonly string[] = Object.freeze([]);
// Up to this many names, duplicates are found by scanning the list (no Set per request).
const SCAN_MAX = 16;

/**
 * Names of the query parameters present: decoded ('+', percent escapes), lower-cased, each once,
 * sorted. Computed once per request (the credential check and the audit record both read them).
 */
export function queryNames(query: string): readonly string[] {
  if (query === '') return NO_NAMES;
  const names: string[] = [];
  // Nothing to decode (the usual query): the names are the text before each '='. Else
  // URLSearchParams decodes them - an object per call, so only then.
  if (!/[%+]/.test(query)) {
    // As URLSearchParams: one leading '?' is not part of the first name ("/p??access_token=x").
    for (let from = query.startsWith('?') ? 1 : 0; from <= query.length; ) {
      let to = query.indexOf('&', from);
      if (to < 0) to = query.length;
      if (to > from) {
        const eq = query.indexOf('=', from);
        names.push(toLower(query.slice(from, eq >= 0 && eq < to ? eq : to)));
      }
      from = to + 1;
    }
  } else {
    for (const [k] of new URLSearchParams(query)) names.push(k.toLowerCase());
  }
  if (names.length === 0) return NO_NAMES;
  if (names.length > SCAN_MAX) return [...new Set(names)].sort();
  names.sort();
  // Sorted: a repeated name sits next to its first.
  let kept = 1;
  for (let i = 1; i < names.length; i++) if (names[i] !== names[kept - 1]) names[kept++] = names[i]!;
  names.length = kept;
  return names;
}
