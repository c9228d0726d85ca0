// net.cidr_is_valid, net.cidr_expand, net.cidr_merge, net.cidr_contains_matches (topdown/cidr.go),
// on Go's net.IP model: an IPv4 address is 4 bytes (also when written IPv4-mapped), a network
// keeps the byte length its address was written in. (net.cidr_contains / intersects are native.)
import { isIPv4, isIPv6 } from 'node:net';
import { BuiltinArgError, compareStrings, str, stringSet, type Json, type Value } from './values.js';

interface Net {
  /** The network address (masked), 4 or 16 bytes. */
  readonly ip: Buffer;
  readonly prefix: number;
}

/** Addresses net.cidr_expand lists at most (OPA has no limit but its query timeout). */
export const MAX_EXPAND = 65536;

function parseV4(s: string): Buffer | undefined {
  if (!isIPv4(s)) return undefined;
  const parts = s.split('.');
  if (parts.some((p) => p.length > 1 && p.startsWith('0'))) return undefined;
  return Buffer.from(parts.map(Number));
}

/** 16 bytes of an IPv6 address (Go's netip.ParseAddr; no zone). */
function parseV6(s: string): Buffer | undefined {
  if (s.includes('%') || !isIPv6(s)) return undefined;
  let text = s;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    if (!v4) return undefined;
    text = `${text.slice(0, lastColon + 1)}${v4.readUInt16BE(0).toString(16)}:${v4.readUInt16BE(2).toString(16)}`;
  }
  const [head, rest] = text.includes('::') ? text.split('::') : [text, undefined];
  const groups = (g: string | undefined): number[] => (g ? g.split(':').filter((x) => x !== '').map((x) => parseInt(x, 16)) : []);
  const h = groups(head);
  const r = groups(rest);
  const fill = 8 - h.length - r.length;
  if (fill < 0 || (rest === undefined && fill !== 0)) return undefined;
  const all = [...h, ...Array<number>(fill).fill(0), ...r];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, i * 2));
  return b;
}

const V4_MAPPED = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);

function to4(ip: Buffer): Buffer | undefined {
  if (ip.length === 4) return ip;
  return ip.subarray(0, 12).equals(V4_MAPPED) ? ip.subarray(12) : undefined;
}

/** net.ParseIP: IPv4 as 4 bytes (Contains compares To4 anyway), IPv6 as 16. */
function parseIp(s: string): Buffer | undefined {
  const v4 = parseV4(s);
  if (v4) return v4;
  const v6 = parseV6(s);
  return v6 ? (to4(v6) ?? v6) : undefined;
}

function mask(ip: Buffer, prefix: number): Buffer {
  const out = Buffer.from(ip);
  for (let i = 0; i < out.length; i++) {
    const bits = Math.max(0, Math.min(8, prefix - i * 8));
    out[i] = out[i]! & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/** net.ParseCIDR. */
function parseCidr(s: string): Net {
  const slash = s.indexOf('/');
  if (slash < 0) throw new BuiltinArgError(`invalid CIDR address: ${s}`);
  const addr = s.slice(0, slash);
  const len = s.slice(slash + 1);
  const ip = parseV4(addr) ?? parseV6(addr);
  if (!ip || !/^[0-9]{1,4}$/.test(len) || Number(len) > ip.length * 8) throw new BuiltinArgError(`invalid CIDR address: ${s}`);
  return { ip: mask(ip, Number(len)), prefix: Number(len) };
}

/** Go's IP.String(): dotted for IPv4 (also IPv4-mapped), RFC 5952 for IPv6. */
function formatIp(ip: Buffer): string {
  const v4 = to4(ip);
  if (v4) return [...v4].join('.');
  const groups = Array.from({ length: 8 }, (_, i) => ip.readUInt16BE(i * 2));
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

const toBig = (b: Buffer): bigint => BigInt(`0x${b.toString('hex') || '0'}`);
const fromBig = (n: bigint, bytes: number): Buffer => Buffer.from(n.toString(16).padStart(bytes * 2, '0'), 'hex');

function contains(n: Net, ip: Buffer): boolean {
  const x = to4(ip) ?? ip;
  return x.length === n.ip.length && mask(x, n.prefix).equals(n.ip);
}

function lastIp(n: Net): Buffer {
  const bits = n.ip.length * 8;
  return fromBig(toBig(n.ip) | ((1n << BigInt(bits - n.prefix)) - 1n), n.ip.length);
}

/** The native net.cidr_contains, for net.cidr_contains_matches. */
function cidrContains(cidr: Json, other: Json): boolean {
  const a = parseCidr(str(cidr, 1));
  const text = str(other, 1);
  const ip = parseIp(text);
  if (ip) return contains(a, ip);
  let b: Net;
  try {
    b = parseCidr(text);
  } catch {
    throw new BuiltinArgError(`not a valid textual representation of an IP address or CIDR: ${text}`);
  }
  if (a.ip.length === 16 && b.ip.length === 16 && !to4(a.ip) && !to4(b.ip)) return a.prefix <= b.prefix && mask(b.ip, a.prefix).equals(a.ip);
  return contains(a, b.ip) && contains(a, lastIp(b));
}

function cidrExpand(v: Json): Value {
  const n = parseCidr(str(v, 1));
  const hostBits = n.ip.length * 8 - n.prefix;
  if (hostBits > Math.log2(MAX_EXPAND)) throw new BuiltinArgError(`net.cidr_expand: more than ${MAX_EXPAND} addresses`);
  const first = toBig(n.ip);
  const out: string[] = [];
  for (let i = 0n; i < 1n << BigInt(hostBits); i++) out.push(formatIp(fromBig(first + i, n.ip.length)));
  return stringSet(out);
}

interface Range {
  readonly first: bigint;
  readonly last: bigint;
  /** The network as written, when the range is exactly one input network. */
  readonly text?: string;
}

const V4_BASE = 0xffffn << 32n;

/** An address range in IPv6 space (IPv4 mapped into ::ffff:0:0/96, as OPA's merge does). */
function rangeOf(v: Json): Range {
  if (typeof v !== 'string') throw new BuiltinArgError('element must be string');
  const ip = parseIp(v);
  let n: Net;
  let shown: Buffer;
  if (ip) {
    if (ip.length !== 4) throw new BuiltinArgError('IPv6 invalid: needs prefix length');
    const classful = ip[0]! < 0x80 ? 8 : ip[0]! < 0xc0 ? 16 : ip[0]! < 0xe0 ? 24 : -1;
    if (classful < 0) throw new BuiltinArgError('no default mask');
    n = { ip: mask(ip, classful), prefix: classful };
    shown = ip;
  } else {
    n = parseCidr(v);
    shown = n.ip;
  }
  const base = n.ip.length === 4 ? V4_BASE : 0n;
  const first = base + toBig(n.ip);
  return { first, last: base + toBig(lastIp(n)), text: `${formatIp(shown)}/${n.prefix}` };
}

/** The fewest CIDRs that cover [first, last] exactly. */
function rangeToCidrs(first: bigint, last: bigint): string[] {
  const v4 = first >= V4_BASE && last <= V4_BASE + 0xffffffffn;
  const bits = v4 ? 32 : 128;
  const base = v4 ? V4_BASE : 0n;
  const out: string[] = [];
  for (let cur = first - base; cur <= last - base; ) {
    let size = 0;
    while (size < bits && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= last - base) size++;
    out.push(`${formatIp(fromBig(cur, bits / 8))}/${bits - size}`);
    cur += 1n << BigInt(size);
  }
  return out;
}

function cidrMerge(v: Json): Value {
  if (!Array.isArray(v)) throw new BuiltinArgError('operand must be an array');
  const ranges = v.map(rangeOf).sort((a, b) => (a.last !== b.last ? (a.last < b.last ? -1 : 1) : a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: Range[] = [];
  for (let i = ranges.length - 1; i >= 0; i--) {
    const r = ranges[i]!;
    const next = merged[0];
    if (next && (next.first === 0n ? 0n : next.first - 1n) <= r.last) {
      merged[0] = { first: r.first < next.first ? r.first : next.first, last: next.last };
    } else {
      merged.unshift(r);
    }
  }
  return stringSet(merged.flatMap((r) => (r.text !== undefined ? [r.text] : rangeToCidrs(r.first, r.last))));
}

/** OPA's order of the values that can be indexes here: numbers before strings. */
function compareIndex(a: Json, b: Json): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return compareStrings(a, b);
  return typeof a === 'number' ? -1 : 1;
}

function matchTerms(operand: number, v: Json): [Json, Json][] {
  const cidrOf = (x: Json): Json => {
    if (typeof x === 'string') return x;
    if (Array.isArray(x) && x.length > 0) return x[0]!;
    throw new BuiltinArgError(`operand ${operand}: element must be string or non-empty array`);
  };
  if (typeof v === 'string') return [[v, v]];
  if (Array.isArray(v)) return v.map((x, i) => [cidrOf(x), i]);
  if (v !== null && typeof v === 'object') return Object.keys(v).sort(compareStrings).map((k) => [cidrOf(v[k]!), k]);
  return [];
}

function cidrContainsMatches(a: Json, b: Json): Value {
  const out: [Json, Json][] = [];
  const seen = new Set<string>();
  for (const [cidr1, i1] of matchTerms(1, a)) {
    for (const [cidr2, i2] of matchTerms(2, b)) {
      const key = JSON.stringify([i1, i2]);
      if (cidrContains(cidr1, cidr2) && !seen.has(key)) {
        seen.add(key);
        out.push([i1, i2]);
      }
    }
  }
  return out.sort((x, y) => compareIndex(x[0], y[0]) || compareIndex(x[1], y[1]));
}

export const netBuiltins: Record<string, (...args: Json[]) => Value> = {
  'net.cidr_is_valid': (v) => {
    if (typeof v !== 'string') return false;
    try {
      parseCidr(v);
      return true;
    } catch {
      return false;
    }
  },
  'net.cidr_expand': cidrExpand,
  'net.cidr_merge': cidrMerge,
  'net.cidr_contains_matches': cidrContainsMatches,
};
