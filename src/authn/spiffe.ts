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

/** Which of the keys we read header[start, end) is, ASCII case-insensitively, without slicing. */
function keyOf(header: string, start: number, end: number): 'uri' | 'cert' | undefined {
  const len = end - start;
  if (len === 3 && (header.charCodeAt(start) | 0x20) === 0x75 && (header.charCodeAt(start + 1) | 0x20) === 0x72 && (header.charCodeAt(start + 2) | 0x20) === 0x69) {
    return 'uri';
  }
  if (
    len === 4 &&
    (header.charCodeAt(start) | 0x20) === 0x63 &&
    (header.charCodeAt(start + 1) | 0x20) === 0x65 &&
    (header.charCodeAt(start + 2) | 0x20) === 0x72 &&
    (header.charCodeAt(start + 3) | 0x20) === 0x74
  ) {
    return 'cert';
  }
  return undefined;
}

/** The value at header[start, end); a quoted one has its escapes undone. */
function valueAt(header: string, start: number, end: number, quoted: boolean): string {
  if (!quoted) return header.slice(start, end);
  const parts: string[] = [];
  let from = start;
  for (let i = start; i < end; i++) {
    if (header.charCodeAt(i) === BACKSLASH) {
      parts.push(header.slice(from, i));
      from = i + 1; // the escaped character is kept as it is
      i++;
    }
  }
  parts.push(header.slice(from, end));
  return parts.join('');
}

/**
 * The last element of an x-forwarded-client-cert header (the one the nearest proxy added), by
 * Envoy's grammar: elements separated by `,`, key=value pairs by `;`, values optionally in double
 * quotes with `\"` escapes. One linear pass that allocates nothing per pair (only the last
 * element's URI and Cert become strings); undefined when the header is longer than `maxChars`,
 * malformed, or names its URI or Cert twice.
 */
export function lastXfccElement(header: string, maxChars = MAX_XFCC_CHARS): XfccElement | undefined {
  if (header.length > maxChars) return undefined;
  const n = header.length;
  let i = 0;
  // Where the current element's URI and Cert values are (start -1: absent).
  let uriStart = -1;
  let uriEnd = 0;
  let uriQuoted = false;
  let certStart = -1;
  let certEnd = 0;
  let certQuoted = false;
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
    let keyEnd = i;
    while (keyEnd > keyStart && isSpace(header.charCodeAt(keyEnd - 1))) keyEnd--;
    if (keyEnd === keyStart) return undefined;
    const key = keyOf(header, keyStart, keyEnd);
    i++; // =
    while (i < n && isSpace(header.charCodeAt(i))) i++;
    let start: number;
    let end: number;
    const quoted = i < n && header.charCodeAt(i) === QUOTE;
    if (quoted) {
      start = ++i;
      for (;;) {
        if (i >= n) return undefined; // unterminated quote
        const c = header.charCodeAt(i);
        if (c === QUOTE) break;
        i += c === BACKSLASH ? 2 : 1;
      }
      end = i;
      i++; // closing quote
      while (i < n && isSpace(header.charCodeAt(i))) i++;
    } else {
      start = i;
      while (i < n) {
        const c = header.charCodeAt(i);
        if (c === SEMI || c === COMMA) break;
        if (c === QUOTE) return undefined; // a quote inside an unquoted value
        i++;
      }
      end = i;
      while (end > start && isSpace(header.charCodeAt(end - 1))) end--;
    }
    if (key === 'uri') {
      if (uriStart >= 0) duplicate = true;
      uriStart = start;
      uriEnd = end;
      uriQuoted = quoted;
    } else if (key === 'cert') {
      if (certStart >= 0) duplicate = true;
      certStart = start;
      certEnd = end;
      certQuoted = quoted;
    }
    if (i >= n) break;
    const sep = header.charCodeAt(i);
    i++;
    if (sep === COMMA) {
      // A new element: only the last one is kept.
      uriStart = -1;
      certStart = -1;
      duplicate = false;
    } else if (sep !== SEMI) return undefined; // text after a closing quote
  }
  if (duplicate) return undefined;
  return {
    ...(uriStart >= 0 ? { uri: valueAt(header, uriStart, uriEnd, uriQuoted) } : {}),
    ...(certStart >= 0 ? { cert: valueAt(header, certStart, certEnd, certQuoted) } : {}),
  };
}
