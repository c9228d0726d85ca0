// uuid.rfc4122 (a random version 4 UUID, the same for the same key within one evaluation) and
// uuid.parse (google/uuid's reading, with OPA's fields for versions 1 and 2; internal/uuid).
import { randomBytes } from 'node:crypto';
import { toJsonText, type Json, type Value } from './values.js';

const HEX32 = /^[0-9a-fA-F]{32}$/;
/** 100-ns intervals between 1582-10-15 (the UUID epoch) and 1970-01-01. */
const G1582 = 122192928000000000n;

function newUuid(): string {
  const b = randomBytes(16);
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function bytesOf(text: string): Buffer | undefined {
  let s = text;
  if (s.length === 36 + 9) {
    if (s.slice(0, 9).toLowerCase() !== 'urn:uuid:') return undefined;
    s = s.slice(9);
  } else if (s.length === 36 + 2) {
    s = s.slice(1, 37);
  } else if (s.length === 32) {
    return HEX32.test(s) ? Buffer.from(s, 'hex') : undefined;
  }
  if (s.length !== 36 || s[8] !== '-' || s[13] !== '-' || s[18] !== '-' || s[23] !== '-') return undefined;
  const hex = s.slice(0, 8) + s.slice(9, 13) + s.slice(14, 18) + s.slice(19, 23) + s.slice(24);
  return HEX32.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

function variant(b: number): string {
  if ((b & 0xc0) === 0x80) return 'RFC4122';
  if ((b & 0xe0) === 0xc0) return 'Microsoft';
  if ((b & 0xe0) === 0xe0) return 'Future';
  return 'Reserved';
}

function macVariables(b: number): string {
  if ((b & 0b11) === 0b11) return 'local:multicast';
  if ((b & 0b01) === 0b01) return 'global:multicast';
  if ((b & 0b10) === 0b10) return 'local:unicast';
  return 'global:unicast';
}

function parse(v: Json): Value | undefined {
  if (typeof v !== 'string') throw new TypeError('operand 1 must be string');
  const u = bytesOf(v);
  if (u === undefined) return undefined;
  const version = u[6]! >> 4;
  const out: { [key: string]: Value } = { version, variant: variant(u[8]!) };
  if (version === 1 || version === 2) {
    // google/uuid reads the time the version 1 way for version 2 too (the low 32 bits are the id).
    const t = BigInt(u.readUInt32BE(0)) | (BigInt(u.readUInt16BE(4)) << 32n) | (BigInt(u.readUInt16BE(6) & 0xfff) << 48n);
    out.time = (t - G1582) * 100n;
    const node = u.subarray(10, 16);
    out.nodeid = [...node].map((x) => x.toString(16).padStart(2, '0')).join('-');
    out.macvariables = macVariables(node[0]!);
    out.clocksequence = u.readUInt16BE(8) & 0x3fff;
    if (version === 2) {
      out.id = u.readUInt32BE(0);
      out.domain = ['Person', 'Group', 'Org'][u[9]!] ?? `Domain${u[9]!}`;
    }
  }
  return out;
}

export function uuidBuiltins(memo: Map<string, string>): Record<string, (...args: Json[]) => Value | undefined> {
  return {
    'uuid.rfc4122': (k) => {
      const key = toJsonText(k);
      let id = memo.get(key);
      if (id === undefined) memo.set(key, (id = newUuid()));
      return id;
    },
    'uuid.parse': parse,
  };
}
