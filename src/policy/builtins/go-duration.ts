// Durations for time.parse_duration_ns: Go's time.ParseDuration, after OPA's rewrite of its
// d (24h), w (7d) and y (365d) units into hours.
import { INT64_MAX, NS } from './civil-time.js';
import { BuiltinArgError } from './values.js';

const UNITS: Record<string, bigint> = { ns: 1n, us: 1000n, 'µs': 1000n, 'μs': 1000n, ms: 1_000_000n, s: NS, m: 60n * NS, h: 3600n * NS };

/** Go's time.ParseDuration. */
function parseDuration(text: string): bigint {
  let s = text;
  let neg = false;
  if (s[0] === '-' || s[0] === '+') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
  let total = 0n;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/.exec(s)!;
    const [all, whole, frac, unit] = [m[0], m[1]!, m[2], m[3]!];
    if (whole === '' && (frac === undefined || frac === '')) throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
    if (unit === '') throw new BuiltinArgError(`time: missing unit in duration ${JSON.stringify(text)}`);
    const scale = UNITS[unit];
    if (scale === undefined) throw new BuiltinArgError(`time: unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}`);
    let v = BigInt(whole || '0') * scale;
    if (frac) {
      // Go: the fraction is scaled in floating point and truncated.
      v += BigInt(Math.floor(Number(`0.${frac}`) * Number(scale)));
    }
    total += v;
    if (total > 2n ** 63n) throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
    s = s.slice(all.length);
  }
  if (!neg && total > INT64_MAX) throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
  return neg ? -total : total;
}

const EXTENDED: Record<string, number> = { d: 24, w: 7 * 24, y: 365 * 24 };
/** Longest first, so that "ms" is not read as "m". */
const DURATION_UNITS = ['ns', 'us', 'µs', 'μs', 'ms', 's', 'm', 'h', 'd', 'w', 'y'];

/** OPA's extended durations: d, w and y are rewritten to hours, then read by ParseDuration. */
export function parseExtendedDuration(text: string): bigint {
  if (text === '') throw new BuiltinArgError('time: invalid duration ""');
  if (!/[dwy]/.test(text)) return parseDuration(text);
  // Segments: digits with an optional fraction, then a unit (OPA's duration grammar).
  const sign = text[0] === '+' || text[0] === '-' ? text[0] : '';
  let rewritten = sign;
  for (let i = sign.length; i < text.length; ) {
    const start = i;
    while (i < text.length && ((text[i]! >= '0' && text[i]! <= '9') || text[i] === '.')) i++;
    const digits = text.slice(start, i);
    const unit = DURATION_UNITS.find((u) => text.startsWith(u, i));
    if (!/^([0-9]+(\.[0-9]*)?|\.[0-9]+)$/.test(digits) || unit === undefined) throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
    i += unit.length;
    rewritten += EXTENDED[unit] ? `${formatFloat(Number(digits) * EXTENDED[unit])}h` : `${digits}${unit}`;
  }
  if (rewritten === sign) throw new BuiltinArgError(`time: invalid duration ${JSON.stringify(text)}`);
  return parseDuration(rewritten);
}

/** strconv.FormatFloat(f, 'f', -1, 64). */
function formatFloat(f: number): string {
  if (Math.abs(f) < 1e21) return String(f).includes('e') ? f.toFixed(20).replace(/\.?0+$/, '') : String(f);
  return BigInt(f).toString();
}

