// Go's net/url unescaping and query parsing (url.PathUnescape, url.ParseQuery), which
// opa-envoy-plugin uses for parsed_path, parsed_query and form bodies: the same strings in, the
// same values and the same refusals out. Linear in the input; errors carry no input text.
import { RequestParseError } from '../lib/errors.js';

const hexVal = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1);

/** %XX -> byte (then UTF-8 decoded); `plus`: '+' -> ' ' (query mode). A '%' not followed by two hex digits is an error, as in Go. */
function unescape(s: string, plus: boolean): string {
  if (!s.includes('%') && !(plus && s.includes('+'))) return s;
  const src = Buffer.from(s, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === 0x25) {
      const hi = i + 2 < src.length ? hexVal(src[i + 1]!) : -1;
      const lo = hi >= 0 ? hexVal(src[i + 2]!) : -1;
      if (lo < 0) throw new RequestParseError('invalid URL escape');
      out[n++] = hi * 16 + lo;
      i += 2;
    } else out[n++] = plus && c === 0x2b ? 0x20 : c;
  }
  return out.toString('utf8', 0, n);
}

export const pathUnescape = (s: string): string => unescape(s, false);

/** url.ParseQuery: pairs split on '&', a ';' in a pair is an error, empty pairs skipped, the first error wins (after the whole query is read). */
export function parseQuery(query: string): Record<string, string[]> {
  // A plain object for the policy input; keys are data: defined, never read or assigned through
  // the prototype (only `__proto__` is an accessor there).
  const out: Record<string, string[]> = {};
  let err: RequestParseError | undefined;
  for (const pair of query.split('&')) {
    if (pair.includes(';')) {
      err ??= new RequestParseError('invalid semicolon separator in query');
      continue;
    }
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    try {
      const key = unescape(eq >= 0 ? pair.slice(0, eq) : pair, true);
      const value = unescape(eq >= 0 ? pair.slice(eq + 1) : '', true);
      if (Object.hasOwn(out, key)) out[key]!.push(value);
      else if (key === '__proto__') Object.defineProperty(out, key, { value: [value], enumerable: true, writable: true, configurable: true });
      else out[key] = [value];
    } catch (e) {
      err ??= e as RequestParseError;
    }
  }
  if (err) throw err;
  return out;
}
