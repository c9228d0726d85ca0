// Go's civil time for time.*: nanoseconds since the epoch <-> year, month, day, clock, weekday
// and day of the year in a zone; time.Date's normalization of overflowing fields.
import type { Zone } from './time-zones.js';

export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;
export const NS = 1_000_000_000n;

export const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export interface Civil {
  year: number;
  month: number; // 1..12
  day: number;
  hour: number;
  minute: number;
  second: number;
  nanos: number;
  weekday: number; // 0 = Sunday
  yday: number; // 1..366
}

export interface ZonedTime {
  readonly ns: bigint;
  readonly zone: Zone;
}

export const floorDiv = (a: bigint, b: bigint): bigint => (a >= 0n ? a / b : -((-a + b - 1n) / b));

export function civil(t: ZonedTime): Civil & { offset: number } {
  const seconds = floorDiv(t.ns, NS);
  const nanos = Number(t.ns - seconds * NS);
  const offset = t.zone.offset(seconds);
  const d = new Date((Number(seconds) + offset) * 1000);
  const start = new Date(0);
  start.setUTCFullYear(d.getUTCFullYear(), 0, 1);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
    nanos,
    weekday: d.getUTCDay(),
    yday: Math.floor((d.getTime() - start.getTime()) / 86_400_000) + 1,
    offset,
  };
}

/** Go's time.Date(...) in a zone: fields may overflow (normalized), then the zone's offset applies. */
export function fromCivil(year: number, month: number, day: number, hour: number, minute: number, second: number, nanos: number, zone: Zone): bigint {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  const wall = BigInt(Math.floor(d.getTime() / 1000));
  const guess = zone.offset(wall);
  let offset = guess;
  if (guess !== 0) {
    const other = zone.offset(wall - BigInt(guess));
    if (other !== guess) offset = other;
  }
  return (wall - BigInt(offset)) * NS + BigInt(nanos);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function daysIn(month: number, year: number): number {
  return month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
}

export function isLeap(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

