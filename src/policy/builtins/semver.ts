// semver.compare / semver.is_valid: OPA's own SemVer 2.0 reading (internal/semver), including its
// leading "v" and its ordering of pre-release identifiers.
import { BuiltinArgError, str, type Json, type Value } from './values.js';

interface Version {
  readonly major: bigint;
  readonly minor: bigint;
  readonly patch: bigint;
  readonly pre: string;
}

const IDENTIFIERS = /^[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*$/;
const DECIMALS = /^[0-9]+$/;
const INT64_MAX = 2n ** 63n - 1n;

function numeric(s: string): bigint {
  if (!DECIMALS.test(s) || (s.length > 1 && s.startsWith('0'))) throw new BuiltinArgError(`${JSON.stringify(s)} is not a valid numeric identifier`);
  const n = BigInt(s);
  if (n > INT64_MAX) throw new BuiltinArgError('value out of range');
  return n;
}

function cut(s: string, sep: string): [string, string, boolean] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, '', false] : [s.slice(0, i), s.slice(i + 1), true];
}

export function parseSemver(text: string): Version {
  let v = text.startsWith('v') ? text.slice(1) : text;
  const [rest, meta, hasMeta] = cut(v, '+');
  if (hasMeta && !IDENTIFIERS.test(meta)) throw new BuiltinArgError(`invalid metadata identifier: ${meta}`);
  const [core, pre, hasPre] = cut(rest, '-');
  if (hasPre && (!IDENTIFIERS.test(pre) || pre.split('.').some((id) => id.length > 1 && id.startsWith('0') && DECIMALS.test(id)))) {
    throw new BuiltinArgError(`invalid pre-release identifier: ${pre}`);
  }
  v = core;
  const parts = v.split('.');
  if (parts.length !== 3) throw new BuiltinArgError(`${v} should contain major, minor, and patch versions`);
  return { major: numeric(parts[0]!), minor: numeric(parts[1]!), patch: numeric(parts[2]!), pre };
}

function cmp<T>(a: T, b: T): number {
  return a > b ? 1 : a < b ? -1 : 0;
}

export function compareSemver(a: Version, b: Version): number {
  const core = cmp(a.major, b.major) || cmp(a.minor, b.minor) || cmp(a.patch, b.patch);
  if (core !== 0) return core;
  if (a.pre === b.pre) return 0;
  if (a.pre === '') return 1;
  if (b.pre === '') return -1;
  const x = a.pre.split('.');
  const y = b.pre.split('.');
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === undefined || q === undefined) return p === undefined ? (q === undefined ? 0 : -1) : 1;
    const pn = DECIMALS.test(p);
    const qn = DECIMALS.test(q);
    if (pn !== qn) return pn ? -1 : 1;
    const c = pn ? cmp(BigInt(p), BigInt(q)) : cmp(p, q);
    if (c !== 0) return c;
  }
}

export const semverBuiltins: Record<string, (...args: Json[]) => Value> = {
  'semver.compare': (a, b) => compareSemver(parseSemver(str(a, 1)), parseSemver(str(b, 2))),
  'semver.is_valid': (v) => {
    if (typeof v !== 'string') return false;
    try {
      parseSemver(v);
      return true;
    } catch {
      return false;
    }
  },
};
