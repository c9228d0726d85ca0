// Go's mime.ParseMediaType, as opa-envoy-plugin uses it for multipart bodies (Content-Type) and
// Go's multipart reader for parts (Content-Disposition): a lower-cased type and its parameters,
// or a RequestParseError where Go returns an error. Linear; RFC 2231 continuations are not joined.
import { RequestParseError } from '../lib/errors.js';

const TSPECIALS = new Set('()<>@,;:\\"/[]?=');
const isTokenChar = (ch: string): boolean => ch > ' ' && ch < '\x7f' && !TSPECIALS.has(ch);

function token(s: string, i: number): number {
  while (i < s.length && isTokenChar(s[i]!)) i++;
  return i;
}

const skipWs = (s: string, i: number): number => {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
};

/** A quoted-string or token at s[i]; undefined: none there (or an unterminated quote). */
function value(s: string, i: number): { v: string; end: number } | undefined {
  if (s[i] !== '"') {
    const end = token(s, i);
    return end > i ? { v: s.slice(i, end), end } : undefined;
  }
  let v = '';
  for (let j = i + 1; j < s.length; j++) {
    const ch = s[j]!;
    if (ch === '"') return { v, end: j + 1 };
    // Go keeps a backslash before anything but a tspecial (MSIE file paths).
    if (ch === '\\' && j + 1 < s.length && TSPECIALS.has(s[j + 1]!)) {
      v += s[++j];
    } else if (ch === '\r' || ch === '\n') return undefined;
    else v += ch;
  }
  return undefined;
}

export interface MediaType {
  readonly type: string;
  readonly params: Readonly<Record<string, string>>;
}

/** A lower-case `type/subtype` of token characters alone: what nearly every request sends. */
const PLAIN = /^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/;
const NO_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

export function parseMediaType(s: string): MediaType {
  // The answer the parse below gives such a value, without its scans, Map and copies.
  if (PLAIN.test(s)) return { type: s, params: NO_PARAMS };
  const semi = s.indexOf(';');
  const base = (semi >= 0 ? s.slice(0, semi) : s).trim().toLowerCase();
  const t = token(base, 0);
  if (t === 0) throw new RequestParseError('mime: no media type');
  if (t < base.length) {
    if (base[t] !== '/') throw new RequestParseError('mime: expected slash after first token');
    const sub = token(base, t + 1);
    if (sub === t + 1) throw new RequestParseError('mime: expected token after slash');
    if (sub < base.length) throw new RequestParseError('mime: unexpected content after media subtype');
  }
  const params = new Map<string, string>();
  let i = semi >= 0 ? semi : s.length;
  for (;;) {
    i = skipWs(s, i);
    if (i >= s.length) break;
    const start = i;
    let ok = s[i] === ';';
    let key = '';
    let val: { v: string; end: number } | undefined;
    if (ok) {
      const k0 = skipWs(s, i + 1);
      const k1 = token(s, k0);
      key = s.slice(k0, k1).toLowerCase();
      const eq = skipWs(s, k1);
      ok = key !== '' && s[eq] === '=';
      if (ok) val = value(s, skipWs(s, eq + 1));
      ok = ok && val !== undefined;
    }
    if (!ok || val === undefined) {
      if (s.slice(start).trim() === ';') break; // a trailing semicolon is ignored
      throw new RequestParseError('mime: invalid media parameter');
    }
    if (params.has(key)) throw new RequestParseError('mime: duplicate parameter name');
    params.set(key, val.v);
    i = val.end;
  }
  return { type: base, params: Object.fromEntries(params) };
}
