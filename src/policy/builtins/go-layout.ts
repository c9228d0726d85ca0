// Go's time layouts ("Mon Jan 2 15:04:05 MST 2006"), as time.Format and time.Parse read them
// (nextStdChunk, getnum, skip...), for time.format and time.parse_ns / parse_rfc3339_ns.
import { DAYS, MONTHS, NS, civil, daysIn, floorDiv, fromCivil, isLeap, type ZonedTime } from './civil-time.js';
import { UTC } from './time-zones.js';
import { BuiltinArgError } from './values.js';

export const NAMED_LAYOUTS: Record<string, string> = {
  ANSIC: 'Mon Jan _2 15:04:05 2006',
  UnixDate: 'Mon Jan _2 15:04:05 MST 2006',
  RubyDate: 'Mon Jan 02 15:04:05 -0700 2006',
  RFC822: '02 Jan 06 15:04 MST',
  RFC822Z: '02 Jan 06 15:04 -0700',
  RFC850: 'Monday, 02-Jan-06 15:04:05 MST',
  RFC1123: 'Mon, 02 Jan 2006 15:04:05 MST',
  RFC1123Z: 'Mon, 02 Jan 2006 15:04:05 -0700',
  RFC3339: '2006-01-02T15:04:05Z07:00',
  RFC3339Nano: '2006-01-02T15:04:05.999999999Z07:00',
};

type Std =
  | 'Jan' | 'January' | 'Mon' | 'Monday' | 'MST'
  | '01' | '02' | '03' | '04' | '05' | '06' | '002' | '__2' | '_2' | '1' | '15' | '2006' | '2' | '3' | '4' | '5'
  | 'PM' | 'pm'
  | '-070000' | '-07:00:00' | '-0700' | '-07:00' | '-07'
  | 'Z070000' | 'Z07:00:00' | 'Z0700' | 'Z07:00' | 'Z07'
  | 'frac0' | 'frac9';

interface Chunk {
  readonly literal: string;
  readonly std?: Std;
  /** Fractional seconds: digits and separator. */
  readonly digits?: number;
  readonly sep?: string;
}

const startsWithLower = (s: string): boolean => s.length > 0 && s[0]! >= 'a' && s[0]! <= 'z';
const isDigitAt = (s: string, i: number): boolean => i < s.length && s[i]! >= '0' && s[i]! <= '9';

/** Go's nextStdChunk, over the whole layout. */
function chunks(layout: string): Chunk[] {
  const out: Chunk[] = [];
  let lit = '';
  const push = (std: Std, len: number, extra: Partial<Chunk> = {}): number => {
    out.push({ literal: lit, std, ...extra });
    lit = '';
    return len;
  };
  for (let i = 0; i < layout.length; ) {
    const rest = layout.slice(i);
    let n = 0;
    switch (layout[i]) {
      case 'J':
        if (rest.startsWith('January')) n = push('January', 7);
        else if (rest.startsWith('Jan') && !startsWithLower(rest.slice(3))) n = push('Jan', 3);
        break;
      case 'M':
        if (rest.startsWith('Monday')) n = push('Monday', 6);
        else if (rest.startsWith('Mon') && !startsWithLower(rest.slice(3))) n = push('Mon', 3);
        else if (rest.startsWith('MST')) n = push('MST', 3);
        break;
      case '0':
        if (rest.length >= 2 && rest[1]! >= '1' && rest[1]! <= '6') n = push(rest.slice(0, 2) as Std, 2);
        else if (rest.startsWith('002')) n = push('002', 3);
        break;
      case '1':
        n = rest.startsWith('15') ? push('15', 2) : push('1', 1);
        break;
      case '2':
        n = rest.startsWith('2006') ? push('2006', 4) : push('2', 1);
        break;
      case '_':
        if (rest.startsWith('_2')) {
          if (rest.startsWith('_2006')) {
            lit += '_';
            n = 1 + push('2006', 4);
          } else n = push('_2', 2);
        } else if (rest.startsWith('__2')) n = push('__2', 3);
        break;
      case '3':
      case '4':
      case '5':
        n = push(layout[i] as Std, 1);
        break;
      case 'P':
        if (rest.startsWith('PM')) n = push('PM', 2);
        break;
      case 'p':
        if (rest.startsWith('pm')) n = push('pm', 2);
        break;
      case '-':
      case 'Z':
        for (const z of ['070000', '07:00:00', '0700', '07:00', '07']) {
          if (rest.startsWith(layout[i]! + z)) {
            n = push((layout[i]! + z) as Std, 1 + z.length);
            break;
          }
        }
        break;
      case '.':
      case ',':
        if (rest.length > 1 && (rest[1] === '0' || rest[1] === '9')) {
          let j = 1;
          while (j < rest.length && rest[j] === rest[1]) j++;
          if (!isDigitAt(rest, j)) n = push(rest[1] === '0' ? 'frac0' : 'frac9', j, { digits: j - 1, sep: rest[0] });
        }
        break;
    }
    if (n === 0) {
      lit += layout[i];
      i++;
    } else {
      i += n;
    }
  }
  out.push({ literal: lit });
  return out;
}

const pad = (n: number, width: number, ch = '0'): string => (n < 0 ? '-' + String(-n).padStart(width, ch) : String(n).padStart(width, ch));

function formatZone(std: Std, offset: number): string {
  if (std.startsWith('Z') && offset === 0) return 'Z';
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hh = pad(Math.floor(abs / 3600), 2);
  const mm = pad(Math.floor(abs / 60) % 60, 2);
  const ss = pad(abs % 60, 2);
  switch (std.slice(1)) {
    case '070000':
      return `${sign}${hh}${mm}${ss}`;
    case '07:00:00':
      return `${sign}${hh}:${mm}:${ss}`;
    case '0700':
      return `${sign}${hh}${mm}`;
    case '07:00':
      return `${sign}${hh}:${mm}`;
    default:
      return `${sign}${hh}`;
  }
}

export function formatTime(t: ZonedTime, layout: string): string {
  const c = civil(t);
  let out = '';
  for (const ch of chunks(layout)) {
    out += ch.literal;
    if (!ch.std) continue;
    const h12 = c.hour % 12 === 0 ? 12 : c.hour % 12;
    switch (ch.std) {
      case 'Jan': out += MONTHS[c.month - 1]!.slice(0, 3); break;
      case 'January': out += MONTHS[c.month - 1]; break;
      case 'Mon': out += DAYS[c.weekday]!.slice(0, 3); break;
      case 'Monday': out += DAYS[c.weekday]; break;
      case 'MST': out += t.zone.abbreviation(floorDiv(t.ns, NS)); break;
      case '01': out += pad(c.month, 2); break;
      case '1': out += String(c.month); break;
      case '02': out += pad(c.day, 2); break;
      case '_2': out += pad(c.day, 2, ' '); break;
      case '2': out += String(c.day); break;
      case '002': out += pad(c.yday, 3); break;
      case '__2': out += pad(c.yday, 3, ' '); break;
      case '03': out += pad(h12, 2); break;
      case '3': out += String(h12); break;
      case '15': out += pad(c.hour, 2); break;
      case '04': out += pad(c.minute, 2); break;
      case '4': out += String(c.minute); break;
      case '05': out += pad(c.second, 2); break;
      case '5': out += String(c.second); break;
      case '06': out += pad(((c.year % 100) + 100) % 100, 2); break;
      case '2006': out += pad(c.year, 4); break;
      case 'PM': out += c.hour >= 12 ? 'PM' : 'AM'; break;
      case 'pm': out += c.hour >= 12 ? 'pm' : 'am'; break;
      case 'frac0': out += ch.sep! + pad(c.nanos, 9).slice(0, ch.digits); break;
      case 'frac9': {
        const digits = pad(c.nanos, 9).slice(0, ch.digits).replace(/0+$/, '');
        if (digits !== '') out += ch.sep! + digits;
        break;
      }
      default: out += formatZone(ch.std, c.offset);
    }
  }
  return out;
}

function parseError(): never {
  throw new BuiltinArgError('cannot parse');
}

/** Go's getnum: one or two digits (exactly two when fixed). */
function getnum(s: string, fixed: boolean): [number, string] {
  if (!isDigitAt(s, 0)) parseError();
  if (!isDigitAt(s, 1)) {
    if (fixed) parseError();
    return [Number(s[0]), s.slice(1)];
  }
  return [Number(s.slice(0, 2)), s.slice(2)];
}

function getnum3(s: string, fixed: boolean): [number, string] {
  let n = 0;
  let i = 0;
  for (; i < 3 && isDigitAt(s, i); i++) n = n * 10 + Number(s[i]);
  if (i === 0 || (fixed && i !== 3)) parseError();
  return [n, s.slice(i)];
}

/** Go's skip: literal text, where a space matches any run of spaces. */
function skip(value: string, literal: string): string {
  let v = value;
  let p = literal;
  while (p.length > 0) {
    if (p[0] === ' ') {
      if (v.length > 0 && v[0] !== ' ') parseError();
      p = p.replace(/^ +/, '');
      v = v.replace(/^ +/, '');
      continue;
    }
    if (v.length === 0 || v[0] !== p[0]) parseError();
    p = p.slice(1);
    v = v.slice(1);
  }
  return v;
}

function lookupName(names: string[], v: string, len?: number): [number, string] {
  for (let i = 0; i < names.length; i++) {
    const name = len ? names[i]!.slice(0, len) : names[i]!;
    if (v.length >= name.length && v.slice(0, name.length).toLowerCase() === name.toLowerCase()) return [i, v.slice(name.length)];
  }
  return parseError();
}

function parseNanos(v: string, n: number): number {
  if (v[0] !== '.' && v[0] !== ',') parseError();
  let digits = v.slice(1, Math.min(n, 10));
  digits = digits.padEnd(9, '0');
  return Number(digits);
}

export function parseTime(layout: string, input: string): bigint {
  const cs = chunks(layout);
  let v = input;
  let year = 0;
  let month = -1;
  let day = -1;
  let yday = -1;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let nanos = 0;
  let pm = false;
  let am = false;
  let offset: number | undefined;
  for (let k = 0; k < cs.length; k++) {
    const ch = cs[k]!;
    v = skip(v, ch.literal);
    if (!ch.std) break;
    switch (ch.std) {
      case '06':
        if (!isDigitAt(v, 0) || !isDigitAt(v, 1)) parseError();
        year = Number(v.slice(0, 2));
        year += year >= 69 ? 1900 : 2000;
        v = v.slice(2);
        break;
      case '2006':
        if (v.length < 4 || !isDigitAt(v, 0) || !/^[0-9]{4}$/.test(v.slice(0, 4))) parseError();
        year = Number(v.slice(0, 4));
        v = v.slice(4);
        break;
      case 'Jan':
        [month, v] = lookupName(MONTHS, v, 3);
        month++;
        break;
      case 'January':
        [month, v] = lookupName(MONTHS, v);
        month++;
        break;
      case '01':
      case '1':
        [month, v] = getnum(v, ch.std === '01');
        if (month <= 0 || month > 12) parseError();
        break;
      case 'Mon':
        v = lookupName(DAYS, v, 3)[1];
        break;
      case 'Monday':
        v = lookupName(DAYS, v)[1];
        break;
      case '02':
      case '_2':
      case '2':
        if (ch.std === '_2' && v[0] === ' ') v = v.slice(1);
        [day, v] = getnum(v, ch.std === '02');
        break;
      case '002':
      case '__2':
        if (ch.std === '__2') v = v.replace(/^ {1,2}/, '');
        [yday, v] = getnum3(v, ch.std === '002');
        if (yday < 1 || yday > 366) parseError();
        break;
      case '15':
        [hour, v] = getnum(v, false);
        if (hour > 23) parseError();
        break;
      case '03':
      case '3':
        [hour, v] = getnum(v, ch.std === '03');
        if (hour > 12) parseError();
        break;
      case '04':
      case '4':
        [minute, v] = getnum(v, ch.std === '04');
        if (minute > 59) parseError();
        break;
      case '05':
      case '5': {
        [second, v] = getnum(v, ch.std === '05');
        if (second > 59) parseError();
        // A fractional second the layout does not mention is accepted right after the seconds.
        const next = cs[k + 1];
        if (v.length >= 2 && (v[0] === '.' || v[0] === ',') && isDigitAt(v, 1) && next?.std !== 'frac0' && next?.std !== 'frac9') {
          let n = 2;
          while (isDigitAt(v, n)) n++;
          nanos = parseNanos(v, n);
          v = v.slice(n);
        }
        break;
      }
      case 'PM':
      case 'pm': {
        const p = v.slice(0, 2);
        const want = ch.std === 'PM' ? ['PM', 'AM'] : ['pm', 'am'];
        if (p === want[0]) pm = true;
        else if (p === want[1]) am = true;
        else parseError();
        v = v.slice(2);
        break;
      }
      case 'MST': {
        if (v.startsWith('UTC')) {
          v = v.slice(3);
          break;
        }
        const m = /^(GMT([+-][0-9]{1,2})?|[A-Z]{3,4}|ChST|MeST)/.exec(v);
        if (!m) parseError();
        offset = m[2] ? Number(m[2]) * 3600 : 0;
        v = v.slice(m[0].length);
        break;
      }
      case 'frac0': {
        const n = 1 + ch.digits!;
        if (v.length < n || v[0] !== ch.sep || !/^[0-9]+$/.test(v.slice(1, n))) parseError();
        nanos = parseNanos(v, n);
        v = v.slice(n);
        break;
      }
      case 'frac9': {
        if (v.length < 2 || (v[0] !== '.' && v[0] !== ',') || !isDigitAt(v, 1)) break;
        let i = 0;
        while (isDigitAt(v, i + 1)) i++;
        nanos = parseNanos(v, 1 + i);
        v = v.slice(1 + i);
        break;
      }
      default: {
        if (ch.std.startsWith('Z') && v[0] === 'Z') {
          v = v.slice(1);
          break;
        }
        const shape = ch.std.slice(1);
        const re = { '070000': /^([+-])([0-9]{2})([0-9]{2})([0-9]{2})/, '07:00:00': /^([+-])([0-9]{2}):([0-9]{2}):([0-9]{2})/, '0700': /^([+-])([0-9]{2})([0-9]{2})/, '07:00': /^([+-])([0-9]{2}):([0-9]{2})/, '07': /^([+-])([0-9]{2})/ }[shape]!;
        const m = re.exec(v);
        if (!m) parseError();
        const [hh, mm, ss] = [Number(m[2]), Number(m[3] ?? 0), Number(m[4] ?? 0)];
        if (hh > 24 || mm > 60 || ss > 60) parseError();
        offset = (hh * 3600 + mm * 60 + ss) * (m[1] === '-' ? -1 : 1);
        v = v.slice(m[0].length);
      }
    }
  }
  if (v.length > 0) parseError();
  if (pm && hour < 12) hour += 12;
  else if (am && hour === 12) hour = 0;
  if (yday >= 0) {
    const leap = isLeap(year);
    if (yday === 366 && !leap) parseError();
    const d = new Date(0);
    d.setUTCFullYear(year, 0, yday);
    if (month >= 0 && month !== d.getUTCMonth() + 1) parseError();
    if (day >= 0 && day !== d.getUTCDate()) parseError();
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  } else {
    if (month < 0) month = 1;
    if (day < 0) day = 1;
  }
  if (day < 1 || day > daysIn(month, year)) parseError();
  const wall = fromCivil(year, month, day, hour, minute, second, nanos, UTC);
  return wall - BigInt(offset ?? 0) * NS;
}

