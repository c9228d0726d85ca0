// envoy/: pure translators at the edges - Envoy's protos, CheckRequest -> RequestView (path.ts),
// -> policy input (input.ts and its parsers), Decision -> CheckResponse (response.ts).
// Pure translator: Envoy's CheckRequest -> the small, normalized view every stage reads.
// No I/O, no config: unit-tested on its own.
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import { normalizePath, splitTarget } from './path.js';

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

function headerEntries(http: NonNullable<NonNullable<CheckRequest__Output['attributes']>['request']>['http']): Map<string, string> {
  const out = new Map<string, string>();
  if (http?.headers) {
    const h = http.headers;
    for (const k in h) if (Object.hasOwn(h, k)) out.set(k.toLowerCase(), h[k]!);
  } else if (http?.header_map?.headers) {
    // encode_raw_headers: true sends a HeaderMap with raw bytes instead of the string map.
    for (const h of http.header_map.headers) {
      if (!h.key) continue;
      const key = h.key.toLowerCase();
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
    method: (http?.method ?? headers.get(':method') ?? '').toUpperCase(),
    host: stripPort((http?.host ?? headers.get(':authority') ?? '').toLowerCase()),
    path: normalized ?? target.path,
    pathInvalid: normalized === undefined,
    query: target.query ?? '',
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

/** Names of the query parameters present (decoded), for checks such as "no credentials in URLs". */
export function queryParamNames(query: string): Set<string> {
  const names = new Set<string>();
  if (query === '') return names;
  // Nothing to decode (the usual query): the names are the text before each '='. Else
  // URLSearchParams decodes them ('+', percent escapes) - an object per call, so only then.
  if (!/[%+]/.test(query)) {
    for (const pair of query.split('&')) {
      if (pair === '') continue;
      const eq = pair.indexOf('=');
      names.add((eq < 0 ? pair : pair.slice(0, eq)).toLowerCase());
    }
    return names;
  }
  for (const [k] of new URLSearchParams(query)) names.add(k.toLowerCase());
  return names;
}
