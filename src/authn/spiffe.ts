// SPIFFE IDs and X509-SVIDs, by the SPIFFE specifications: a URI `spiffe://<trust domain><path>`
// and a leaf certificate with exactly one URI SAN holding it, that is not a CA.
import { X509Certificate } from 'node:crypto';

export interface SpiffeId {
  readonly id: string;
  readonly trustDomain: string;
  readonly path: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID = 2048;
export const MAX_CERT_BYTES = 16 * 1024;

/** Parses a SPIFFE ID; undefined when it breaks any rule of the spec. */
export function parseSpiffeId(value: string): SpiffeId | undefined {
  if (value.length > MAX_ID || !value.startsWith('spiffe://')) return undefined;
  const rest = value.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash);
  if (!TRUST_DOMAIN.test(trustDomain)) return undefined;
  if (path !== '') {
    const segments = path.slice(1).split('/');
    if (segments.some((s) => s === '' || s === '.' || s === '..' || !SEGMENT.test(s))) return undefined;
  }
  return { id: value, trustDomain, path };
}

/** URI SANs of a certificate (Node prints SANs as `URI:x, DNS:y`, quoting values that need it). */
function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  const out: string[] = [];
  for (const part of san.split(/, (?=[A-Za-z ]+:)/)) {
    if (!part.startsWith('URI:')) continue;
    let v = part.slice(4);
    if (v.startsWith('"')) {
      try {
        v = JSON.parse(v) as string;
      } catch {
        return ['<unparseable>'];
      }
    }
    out.push(v);
  }
  return out;
}

export type SvidProblem = 'not_a_certificate' | 'uri_san_count' | 'not_spiffe' | 'is_ca' | 'not_yet_valid' | 'expired';

/** Checks a PEM leaf certificate against the X509-SVID rules; returns its SPIFFE ID or the problem. */
export function svidFromPem(pem: string, now = Date.now()): SpiffeId | SvidProblem {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return 'not_a_certificate';
  }
  const uris = uriSans(cert);
  if (uris.length !== 1) return 'uri_san_count';
  const id = parseSpiffeId(uris[0]!);
  if (!id) return 'not_spiffe';
  if (cert.ca) return 'is_ca';
  if (Date.parse(cert.validFrom) > now) return 'not_yet_valid';
  if (Date.parse(cert.validTo) <= now) return 'expired';
  return id;
}

export interface XfccElement {
  readonly uri?: string;
  readonly cert?: string;
}

/**
 * Longest x-forwarded-client-cert header read, in characters; a longer one is not trusted (the
 * request is denied like any unreadable XFCC). Envoy's default header limit is 60 KiB in all, and
 * one element with a URL-encoded certificate takes a few KiB.
 */
export const MAX_XFCC_CHARS = 64 * 1024;

const EQ = 0x3d; // =
const SEMI = 0x3b; // ;
const COMMA = 0x2c; // ,
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const isSpace = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * The last element of an x-forwarded-client-cert header (the one the nearest proxy added), by
 * Envoy's grammar: elements separated by `,`, key=value pairs by `;`, values optionally in double
 * quotes with `\"` escapes. One linear pass, no regex; undefined when the header is longer than
 * `maxChars`, malformed, or names its URI or Cert twice.
 */
export function lastXfccElement(header: string, maxChars = MAX_XFCC_CHARS): XfccElement | undefined {
  if (header.length > maxChars) return undefined;
  const n = header.length;
  let i = 0;
  let last: { uri?: string; cert?: string } = {};
  let duplicate = false;
  for (;;) {
    while (i < n && isSpace(header.charCodeAt(i))) i++;
    const keyStart = i;
    while (i < n) {
      const c = header.charCodeAt(i);
      if (c === EQ || c === SEMI || c === COMMA || c === QUOTE) break;
      i++;
    }
    if (i >= n || header.charCodeAt(i) !== EQ) return undefined;
    const key = header.slice(keyStart, i).trim().toLowerCase();
    if (key === '') return undefined;
    i++; // =
    let value: string;
    if (i < n && header.charCodeAt(i) === QUOTE) {
      i++;
      const parts: string[] = [];
      let from = i;
      for (;;) {
        if (i >= n) return undefined; // unterminated quote
        const c = header.charCodeAt(i);
        if (c === QUOTE) break;
        if (c === BACKSLASH && i + 1 < n) {
          parts.push(header.slice(from, i));
          from = i + 1; // the escaped character is kept as it is
          i += 2;
        } else i++;
      }
      parts.push(header.slice(from, i));
      value = parts.join('');
      i++; // closing quote
      while (i < n && isSpace(header.charCodeAt(i))) i++;
    } else {
      const valueStart = i;
      while (i < n) {
        const c = header.charCodeAt(i);
        if (c === SEMI || c === COMMA) break;
        if (c === QUOTE) return undefined; // a quote inside an unquoted value
        i++;
      }
      value = header.slice(valueStart, i).trim();
    }
    if (key === 'uri' || key === 'cert') {
      if (last[key] !== undefined) duplicate = true;
      last[key] = value;
    }
    if (i >= n) break;
    const sep = header.charCodeAt(i);
    i++;
    if (sep === COMMA) {
      // A new element: only the last one is kept.
      last = {};
      duplicate = false;
    } else if (sep !== SEMI) return undefined; // text after a closing quote
  }
  return duplicate ? undefined : last;
}
