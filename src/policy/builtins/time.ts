// time.* (topdown/time.go) on Go's time semantics: nanoseconds since the epoch, Go layouts
// (go-layout.ts) for time.format and time.parse_ns, IANA zones (time-zones.ts), Go's durations
// plus OPA's d/w/y units (go-duration.ts).
import { DAYS, INT64_MAX, INT64_MIN, civil, daysIn, fromCivil, type ZonedTime } from './civil-time.js';
import { parseExtendedDuration } from './go-duration.js';
import { NAMED_LAYOUTS, formatTime, parseTime } from './go-layout.js';
import { UTC, zoneOf } from './time-zones.js';
import { BuiltinArgError, int, str, type Json, type Value } from './values.js';

function safeNs(ns: bigint): bigint {
  if (ns < INT64_MIN || ns > INT64_MAX) throw new BuiltinArgError('time outside of valid range');
  return ns;
}

/** A timestamp operand: ns, or [ns, zone] / [ns, zone, layout] (OPA's tzTime). */
function zonedOperand(v: Json): { t: ZonedTime; layout: string } {
  let n: Json;
  let zone = UTC;
  let layout = '';
  if (Array.isArray(v)) {
    if (v.length === 0) throw new BuiltinArgError('operand 1 must be one of {number, array}');
    n = v[0]!;
    if (typeof n !== 'number') throw new BuiltinArgError('operand 1 must be number');
    if (v.length > 1) zone = zoneOf(str(v[1], 1));
    if (v.length > 2) layout = str(v[2], 1);
  } else if (typeof v === 'number') {
    n = v;
  } else {
    throw new BuiltinArgError('operand 1 must be one of {number, array}');
  }
  if (!Number.isInteger(n) || Math.abs(n) > 2 ** 63) throw new BuiltinArgError('timestamp too big');
  return { t: { ns: BigInt(n), zone }, layout };
}

function diff(a: Json, b: Json): Value {
  const x = zonedOperand(a).t;
  let y = zonedOperand(b).t;
  y = { ns: y.ns, zone: x.zone };
  let [t1, t2] = [x, y];
  if (t1.ns > t2.ns) [t1, t2] = [t2, t1];
  const c1 = civil(t1);
  const c2 = civil(t2);
  let year = c2.year - c1.year;
  let month = c2.month - c1.month;
  let day = c2.day - c1.day;
  let hour = c2.hour - c1.hour;
  let min = c2.minute - c1.minute;
  let sec = c2.second - c1.second;
  if (sec < 0) {
    sec += 60;
    min--;
  }
  if (min < 0) {
    min += 60;
    hour--;
  }
  if (hour < 0) {
    hour += 24;
    day--;
  }
  if (day < 0) {
    day += daysIn(c1.month, c1.year);
    month--;
  }
  if (month < 0) {
    month += 12;
    year--;
  }
  return [year, month, day, hour, min, sec];
}

export function timeBuiltins(nowNs: () => bigint): Record<string, (...args: Json[]) => Value> {
  return {
    'time.now_ns': () => nowNs(),
    'time.parse_rfc3339_ns': (v) => safeNs(parseTime(NAMED_LAYOUTS.RFC3339!, str(v, 1))),
    'time.parse_ns': (layout, v) => {
      const l = str(layout, 1);
      return safeNs(parseTime(NAMED_LAYOUTS[l] ?? l, str(v, 2)));
    },
    'time.parse_duration_ns': (v) => parseExtendedDuration(str(v, 1)),
    'time.date': (v) => {
      const c = civil(zonedOperand(v).t);
      return [c.year, c.month, c.day];
    },
    'time.clock': (v) => {
      const c = civil(zonedOperand(v).t);
      return [c.hour, c.minute, c.second];
    },
    'time.weekday': (v) => DAYS[civil(zonedOperand(v).t).weekday]!,
    'time.add_date': (v, years, months, days) => {
      const { t } = zonedOperand(v);
      const c = civil(t);
      return safeNs(fromCivil(c.year + int(years, 2), c.month + int(months, 3), c.day + int(days, 4), c.hour, c.minute, c.second, c.nanos, t.zone));
    },
    'time.diff': diff,
    'time.format': (v) => {
      const { t, layout } = zonedOperand(v);
      return formatTime(t, layout === '' ? NAMED_LAYOUTS.RFC3339Nano! : (NAMED_LAYOUTS[layout] ?? layout));
    },
  };
}
