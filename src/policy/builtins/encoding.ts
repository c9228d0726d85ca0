// Decoders shared by the host built-ins, each as strict as the Go function OPA uses.
import { BuiltinArgError, type Json } from './values.js';

const B64URL = /^[A-Za-z0-9_-]*={0,2}$/;

/** OPA's base64url.decode: padding optional (RFC 7515 appendix C), otherwise Go's strict decoder. */
export function base64UrlDecode(text: string): Buffer {
  let s = text.replace(/[\r\n]/g, '');
  if (!s.endsWith('=')) {
    if (s.length % 4 === 2) s += '==';
    else if (s.length % 4 === 3) s += '=';
    else if (s.length % 4 === 1) throw new BuiltinArgError('illegal base64url string');
  }
  if (s.length % 4 !== 0 || !B64URL.test(s)) throw new BuiltinArgError('illegal base64 data');
  return Buffer.from(s, 'base64url');
}

/** json.unmarshal of a string that must hold a JSON object. */
export function jsonObject(text: string): { [key: string]: Json } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new BuiltinArgError('invalid JSON');
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new BuiltinArgError('decoded JSON type was not an Object');
  return v as { [key: string]: Json };
}
