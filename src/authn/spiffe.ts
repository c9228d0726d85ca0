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

/** The last element of an x-forwarded-client-cert header (the one the nearest proxy added). */
export function lastXfccElement(header: string): XfccElement | undefined {
  const elements: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of header) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      elements.push(cur);
      cur = '';
    } else cur += ch;
  }
  elements.push(cur);
  const last = elements.at(-1)?.trim();
  if (!last) return undefined;
  const out: { uri?: string; cert?: string } = {};
  for (const pair of last.split(/;(?=(?:[^"]*"[^"]*")*[^"]*$)/)) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const k = pair.slice(0, eq).trim().toLowerCase();
    const v = pair.slice(eq + 1).trim().replace(/^"|"$/g, '');
    if (k === 'uri') out.uri = v;
    if (k === 'cert') out.cert = v;
  }
  return out;
}
