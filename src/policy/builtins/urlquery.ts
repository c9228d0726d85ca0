// urlquery.*, hex.* and base64url.encode_no_pad (topdown/encoding.go): Go's net/url query escaping
// (space as "+", %XX in upper case, only A-Z a-z 0-9 - _ . ~ left as they are) and encoding/hex.
import { BuiltinArgError, compareStrings, isObject, str, type Json, type Value } from './values.js';

const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;

/** url.QueryEscape. */
function queryEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (UNRESERVED.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const HEX = /^[0-9a-fA-F]{2}$/;

/** url.QueryUnescape: "+" is a space; every "%" needs two hex digits. */
function queryUnescape(s: string): string {
  const bytes: number[] = [];
  const raw = Buffer.from(s, 'utf8');
  for (let i = 0; i < raw.length; i++) {
    const b = raw[i]!;
    if (b === 0x25) {
      const hex = raw.subarray(i + 1, i + 3).toString('latin1');
      if (!HEX.test(hex)) throw new BuiltinArgError('invalid URL escape');
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(b === 0x2b ? 0x20 : b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** url.ParseQuery: any malformed pair makes the whole call fail, as OPA returns its error. */
function decodeObject(v: Json): Value {
  const out = new Map<string, string[]>();
  for (const pair of str(v, 1).split('&')) {
    if (pair.includes(';')) throw new BuiltinArgError('invalid semicolon separator in query');
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const key = queryUnescape(eq < 0 ? pair : pair.slice(0, eq));
    const value = queryUnescape(eq < 0 ? '' : pair.slice(eq + 1));
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return Object.fromEntries([...out.entries()].sort(([a], [b]) => compareStrings(a, b)));
}

/** url.Values.Encode: keys sorted, a string value set, an array's (or set's) values added in order. */
function encodeObject(v: Json): Value {
  if (!isObject(v)) throw new BuiltinArgError('operand 1 must be object');
  const parts: string[] = [];
  for (const key of Object.keys(v).sort(compareStrings)) {
    const value = v[key]!;
    const values = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
    if (values === undefined || values.some((x) => typeof x !== 'string')) throw new BuiltinArgError('values must be string, array[string], or set[string]');
    for (const x of values as string[]) parts.push(`${queryEscape(key)}=${queryEscape(x)}`);
  }
  return parts.join('&');
}

function hexDecode(v: Json): Value {
  const s = str(v, 1);
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) throw new BuiltinArgError('encoding/hex: invalid byte');
  return Buffer.from(s, 'hex').toString('utf8');
}

export const urlqueryBuiltins: Record<string, (...args: Json[]) => Value> = {
  'urlquery.encode': (v) => queryEscape(str(v, 1)),
  'urlquery.decode': (v) => queryUnescape(str(v, 1)),
  'urlquery.encode_object': encodeObject,
  'urlquery.decode_object': decodeObject,
  'hex.encode': (v) => Buffer.from(str(v, 1), 'utf8').toString('hex'),
  'hex.decode': hexDecode,
  'base64url.encode_no_pad': (v) => Buffer.from(str(v, 1), 'utf8').toString('base64url'),
};
