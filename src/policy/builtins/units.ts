// units.parse and units.parse_bytes (topdown/parse_units.go, parse_bytes.go), in exact rationals:
// units.parse answers an integer when it is one, else the value rounded to 10 decimals;
// units.parse_bytes truncates to an integer.
import { BuiltinArgError, str, type Json, type Value } from './values.js';

interface Rat {
  readonly n: bigint;
  readonly d: bigint;
}

const MAX_EXPONENT_DIGITS = 6;
/** Beyond this the number would have thousands of digits: refused rather than built. */
const MAX_EXPONENT = 1000;

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** The number and the unit of e.g. "1.5e3Ki" (OPA's extractNumAndUnit). */
function splitNumber(s: string): [string, string] {
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (!isDigit(c) && c !== '.' && c !== 'e' && c !== 'E' && c !== '+' && c !== '-') return i === 0 ? ['', s] : [s.slice(0, i), s.slice(i)];
    if (c === 'e' || c === 'E') {
      const next = s[i + 1];
      if (next === undefined || (!isDigit(next) && next !== '+' && next !== '-')) return i === 0 ? ['', s] : [s.slice(0, i), s.slice(i)];
      if (next === '+' || next === '-') i++;
      let end = i + 1;
      while (isDigit(s[end])) end++;
      if (end - (i + 1) > MAX_EXPONENT_DIGITS) throw new BuiltinArgError('exponent too large');
    }
  }
  return [s, ''];
}

const DECIMAL = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$/;

/** big.Rat SetString / big.Float SetString of a decimal (no fractions "a/b": those never get here). */
function parseDecimal(s: string): Rat | undefined {
  const m = DECIMAL.exec(s);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const digits = `${m[2]}${m[3] ?? ''}`;
  const exp = Number(m[4] ?? '0') - (m[3] ?? '').length;
  if (Math.abs(exp) > MAX_EXPONENT) throw new BuiltinArgError('exponent too large');
  let n = BigInt(digits || '0');
  if (m[1] === '-') n = -n;
  return exp >= 0 ? { n: n * 10n ** BigInt(exp), d: 1n } : { n, d: 10n ** BigInt(-exp) };
}

/** The exact value of a double (big.Rat SetFloat64). */
function exactRational(x: number): Rat {
  let d = 1n;
  let v = x;
  while (!Number.isInteger(v)) {
    v *= 2;
    d *= 2n;
  }
  return { n: BigInt(v), d };
}

const abs = (x: bigint): bigint => (x < 0n ? -x : x);

/** big.Rat FloatString(10): rounded to nearest, halves away from zero. */
function floatString(r: Rat, places: number): string {
  const scale = 10n ** BigInt(places);
  const q = (abs(r.n) * scale * 2n + r.d) / (2n * r.d);
  const digits = q.toString().padStart(places + 1, '0');
  return `${r.n < 0n ? '-' : ''}${digits.slice(0, -places)}.${digits.slice(-places)}`;
}

const SI: Record<string, bigint> = { k: 10n ** 3n, M: 10n ** 6n, g: 10n ** 9n, t: 10n ** 12n, p: 10n ** 15n, e: 10n ** 18n };
const IEC: Record<string, bigint> = { k: 1n << 10n, m: 1n << 20n, g: 1n << 30n, t: 1n << 40n, p: 1n << 50n, e: 1n << 60n };

function unitsMultiplier(unit: string): Rat {
  if (unit === '') return { n: 1n, d: 1n };
  if (unit === 'm') return exactRational(0.001);
  if (unit === 'M') return { n: SI.M!, d: 1n };
  const base = unit[0]!.toLowerCase();
  if (unit.length === 1 && base !== 'm' && SI[base] !== undefined) return { n: SI[base], d: 1n };
  if (unit.length === 2 && unit[1] === 'i' && IEC[base] !== undefined) return { n: IEC[base], d: 1n };
  throw new BuiltinArgError(`units.parse: unit ${unit} not recognized`);
}

function unitsParse(v: Json): Value {
  const s = str(v, 1).replace(/"/g, '');
  if (s.includes(' ')) throw new BuiltinArgError('units.parse: spaces not allowed in resource strings');
  const [num, rawUnit] = splitNumber(s);
  if (num === '') throw new BuiltinArgError('units.parse: no amount provided');
  const unit = rawUnit.length > 1 ? rawUnit[0] + rawUnit.slice(1).toLowerCase() : rawUnit;
  const mult = unitsMultiplier(unit);
  const x = parseDecimal(num);
  if (!x) throw new BuiltinArgError('units.parse: could not parse amount to a number');
  const r = { n: x.n * mult.n, d: x.d * mult.d };
  if (r.n % r.d === 0n) return r.n / r.d;
  return Number(floatString(r, 10));
}

const BYTE_UNITS: Record<string, bigint> = {
  '': 1n,
  ...Object.fromEntries(Object.entries(SI).flatMap(([k, m]) => (k === 'M' ? [] : [[`${k}b`, m], [k, m]]))),
  mb: 10n ** 6n,
  m: 10n ** 6n,
  ...Object.fromEntries(Object.entries(IEC).flatMap(([k, m]) => [[`${k}ib`, m], [`${k}i`, m]])),
};

function unitsParseBytes(v: Json): Value {
  const s = str(v, 1).toLowerCase().replace(/"/g, '');
  if (s.includes(' ')) throw new BuiltinArgError('units.parse_bytes: spaces not allowed in resource strings');
  const [num, unit] = splitNumber(s);
  if (num === '') throw new BuiltinArgError('units.parse_bytes: no byte amount provided');
  const mult = BYTE_UNITS[unit];
  if (mult === undefined) throw new BuiltinArgError(`units.parse_bytes: byte unit ${unit} not recognized`);
  const x = parseDecimal(num);
  if (!x) throw new BuiltinArgError('units.parse_bytes: could not parse byte amount to a number');
  return (x.n * mult) / x.d;
}

export const unitsBuiltins: Record<string, (...args: Json[]) => Value> = {
  'units.parse': unitsParse,
  'units.parse_bytes': unitsParseBytes,
};
