// Time zones for time.*: UTC, the process's local zone ("Local"), or an IANA name read through
// Intl (Node ships the zone data), with Go's zone abbreviations where Intl knows them.
import { BuiltinArgError } from './values.js';

/** A time zone: UTC, the process's local zone, or an IANA name. */
export interface Zone {
  readonly name: string;
  /** Seconds east of UTC at the instant `seconds` since the epoch. */
  offset(seconds: bigint): number;
  /** Go's abbreviation (best effort: Intl knows fewer than the tz database). */
  abbreviation(seconds: bigint): string;
}

export const UTC: Zone = { name: 'UTC', offset: () => 0, abbreviation: () => 'UTC' };

function numericAbbreviation(offset: number): string {
  const sign = offset < 0 ? '-' : '+';
  const m = Math.abs(offset) / 60;
  const hh = String(Math.floor(m / 60)).padStart(2, '0');
  return m % 60 === 0 ? `${sign}${hh}` : `${sign}${hh}${String(m % 60).padStart(2, '0')}`;
}

function intlZone(name: string): Zone {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', era: 'short' });
  const resolved = parts.resolvedOptions().timeZone;
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) throw new BuiltinArgError(`unknown time zone ${name}`);
  const short = ['en-US', 'en-GB'].map((loc) => new Intl.DateTimeFormat(loc, { timeZone: name, timeZoneName: 'short' }));
  const offset = (seconds: bigint): number => {
    const ms = Number(seconds) * 1000;
    const f: Record<string, string> = {};
    for (const p of parts.formatToParts(new Date(ms))) f[p.type] = p.value;
    const year = f.era === 'BC' || f.era === 'B' ? 1 - Number(f.year) : Number(f.year);
    const wall = new Date(0);
    wall.setUTCFullYear(year, Number(f.month) - 1, Number(f.day));
    wall.setUTCHours(Number(f.hour), Number(f.minute), Number(f.second), 0);
    return Math.round((wall.getTime() - ms) / 1000);
  };
  return {
    name,
    offset,
    abbreviation(seconds) {
      const date = new Date(Number(seconds) * 1000);
      for (const fmt of short) {
        const v = fmt.formatToParts(date).find((p) => p.type === 'timeZoneName')?.value ?? '';
        if (/^[A-Z]{2,5}$/.test(v)) return v;
      }
      return numericAbbreviation(offset(seconds));
    },
  };
}

const zones = new Map<string, Zone>();
/** Valid zone names are a few hundred; unknown ones are never stored. */
const MAX_ZONES = 1024;

export function zoneOf(name: string): Zone {
  if (name === '' || name === 'UTC') return UTC;
  const key = name === 'Local' ? Intl.DateTimeFormat().resolvedOptions().timeZone : name;
  let z = zones.get(key);
  if (z === undefined) {
    try {
      z = intlZone(key);
    } catch {
      throw new BuiltinArgError(`unknown time zone ${name}`);
    }
    if (zones.size < MAX_ZONES) zones.set(key, z);
  }
  return z;
}

