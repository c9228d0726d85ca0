// crypto.md5/sha1/sha256 and crypto.hmac.*: hex digests of a string's UTF-8 bytes (topdown/crypto.go).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { str, type Json, type Value } from './values.js';

const digest = (alg: string) => (x: Json): Value => createHash(alg).update(str(x, 1), 'utf8').digest('hex');
const hmac = (alg: string) => (x: Json, key: Json): Value => createHmac(alg, Buffer.from(str(key, 2), 'utf8')).update(str(x, 1), 'utf8').digest('hex');

function hmacEqual(a: Json, b: Json): Value {
  const x = Buffer.from(str(a, 1), 'utf8');
  const y = Buffer.from(str(b, 2), 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

export const cryptoBuiltins: Record<string, (...args: Json[]) => Value> = {
  'crypto.md5': digest('md5'),
  'crypto.sha1': digest('sha1'),
  'crypto.sha256': digest('sha256'),
  'crypto.hmac.md5': hmac('md5'),
  'crypto.hmac.sha1': hmac('sha1'),
  'crypto.hmac.sha256': hmac('sha256'),
  'crypto.hmac.sha512': hmac('sha512'),
  'crypto.hmac.equal': hmacEqual,
};
