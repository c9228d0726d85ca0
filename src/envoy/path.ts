// Pure translator: a request path as Envoy's `normalize_path` + `merge_slashes` would route it, so
// route matching and the policy see what the upstream will be asked for, even behind an Envoy
// (or Istio) configured without them. RFC 3986: percent-escapes of unreserved characters decoded
// (`%2E` is a dot, `%41` an `A`), other escapes kept as sent (`%2F` stays encoded: it is not a
// separator), dot segments removed, runs of slashes merged.
//
// Refused (undefined; the pipeline answers 400) where a server behind Envoy could read the path
// differently from us: a `..` that climbs above the root, a backslash (Envoy turns it into `/`,
// other servers may not), a bad or NUL escape, a control character or space, a path that is not
// absolute. Other characters a path may not carry raw (non-ASCII, `"`, `<`, `{`...) are
// percent-encoded, as Envoy's normalization does.

/** A request target split into its path and its query (without `?`; undefined when absent); a fragment is dropped. */
export function splitTarget(target: string): { path: string; query: string | undefined } {
  const h = target.indexOf('#');
  const t = h >= 0 ? target.slice(0, h) : target;
  const q = t.indexOf('?');
  return q >= 0 ? { path: t.slice(0, q), query: t.slice(q + 1) } : { path: t, query: undefined };
}

const SLASH = 0x2f;
const PERCENT = 0x25;
const BACKSLASH = 0x5c;

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

/** What a path may carry unescaped: pchar (unreserved, sub-delims, ":", "@") and "/". */
function isPathChar(c: number): boolean {
  // sub-delims: ! $ & ' ( ) * + , ; =
  return isUnreserved(c) || c === SLASH || c === 0x3a || c === 0x40 || c === 0x21 || c === 0x24 || (c >= 0x26 && c <= 0x2c) || c === 0x3b || c === 0x3d;
}

/** Escapes decoded or added; undefined for what cannot be read safely. */
function canonicalCharacters(path: string): string | undefined {
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined;
      const value = hi * 16 + lo;
      if (value === 0) return undefined;
      if (isUnreserved(value)) {
        parts.push(path.slice(from, i), String.fromCharCode(value));
        from = i + 3;
      }
      i += 2;
    } else if (c <= 0x20 || c === 0x7f || c === BACKSLASH) {
      return undefined;
    } else if (!isPathChar(c)) {
      const cp = path.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      let encoded: string;
      try {
        encoded = encodeURIComponent(ch);
      } catch {
        return undefined; // a lone surrogate
      }
      parts.push(path.slice(from, i), encoded);
      i += ch.length - 1;
      from = i + 1;
    }
  }
  if (parts.length === 0) return path;
  parts.push(path.slice(from));
  return parts.join('');
}

/**
 * The normalized path (no query), or undefined when it cannot be normalized safely. `''` (no
 * path, as for CONNECT) and `*` (OPTIONS *) are returned as they are.
 */
export function normalizePath(path: string): string | undefined {
  if (path === '' || path === '*') return path;
  if (path.charCodeAt(0) !== SLASH) return undefined;
  const chars = canonicalCharacters(path);
  if (chars === undefined) return undefined;
  // The common case: nothing to resolve or merge.
  if (!chars.includes('/.') && !chars.includes('//')) return chars;
  // remove_dot_segments (RFC 3986 5.2.4) on whole segments, then merge_slashes, in Envoy's order:
  // an empty segment counts, so `/a//../b` is `/a/b`.
  const segments = chars.split('/');
  const out: string[] = [];
  for (let k = 1; k < segments.length; k++) {
    const s = segments[k]!;
    const last = k === segments.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (out.length === 0) return undefined; // above the root
        out.pop();
      }
      if (last) out.push('');
    } else out.push(s);
  }
  let result = `/${out.join('/')}`;
  if (result.includes('//')) result = result.replace(/\/{2,}/g, '/');
  return result;
}
