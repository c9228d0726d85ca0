// API key format: <prefix>_<id>_<secret>_<crc>
//   prefix  the key type, e.g. "eak" (lets secret scanners and humans recognize it)
//   id      12 base62 chars: the lookup key (never secret; shown in logs and revocations)
//   secret  32 base62 chars (~190 bits from the CSPRNG)
//   crc     CRC32 of everything before it, 6 base62 chars: typos and junk are rejected
//           before any lookup
// Only a digest of the whole key is stored: sha256 by default, or HMAC-SHA256 with a
// server-side secret so a leaked key file cannot be brute-forced offline.
import { createHash, createHmac, randomInt, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ID_LEN = 12;
const SECRET_LEN = 32;
const CRC_LEN = 6;
export const MAX_API_KEY_LENGTH = 16 + 1 + ID_LEN + 1 + SECRET_LEN + 1 + CRC_LEN;
const SHAPE = /^([a-z][a-z0-9]{1,15})_([A-Za-z0-9]{12})_([A-Za-z0-9]{32})_([A-Za-z0-9]{6})$/;

function randomBase62(n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += BASE62[randomInt(62)];
  return s;
}

function base62Fixed(value: number, width: number): string {
  let s = '';
  let v = value;
  for (let i = 0; i < width; i++) {
    s = BASE62[v % 62] + s;
    v = Math.floor(v / 62);
  }
  return s;
}

const checksum = (body: string): string => base62Fixed(crc32(body) >>> 0, CRC_LEN);

export interface ParsedKey {
  readonly prefix: string;
  readonly id: string;
}

/** A key from its parts, with its checksum appended. */
export function assembleApiKey(prefix: string, id: string, secret: string): string {
  const body = `${prefix}_${id}_${secret}`;
  return `${body}_${checksum(body)}`;
}

export function generateApiKey(prefix: string): { key: string; id: string } {
  const id = randomBase62(ID_LEN);
  return { key: assembleApiKey(prefix, id, randomBase62(SECRET_LEN)), id };
}

/** Shape, prefix and checksum; undefined when the key is malformed. No secret is compared here. */
export function parseApiKey(key: string, prefix: string): ParsedKey | undefined {
  if (key.length > MAX_API_KEY_LENGTH) return undefined;
  const m = SHAPE.exec(key);
  if (!m || m[1] !== prefix) return undefined;
  const body = key.slice(0, key.length - CRC_LEN - 1);
  if (checksum(body) !== m[4]) return undefined;
  return { prefix: m[1], id: m[2]! };
}

export type DigestAlgorithm = 'sha256' | 'hmac-sha256';

export function digestApiKey(key: string, hmacSecret?: Uint8Array): string {
  return hmacSecret
    ? `hmac-sha256:${createHmac('sha256', hmacSecret).update(key).digest('hex')}`
    : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

/** Constant-time comparison of two digests of the same format. */
export function digestsEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  // timingSafeEqual needs equal lengths; compare against itself to keep the time uniform.
  return ba.length === bb.length ? timingSafeEqual(ba, bb) : !timingSafeEqual(ba, ba);
}
