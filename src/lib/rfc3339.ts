// Strict RFC 3339 date-times (section 5.6): full date, "T", full time, and a mandatory offset.
// Date.parse accepts far more ("1" is the year 2001), so inputs that matter are checked here.
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Epoch milliseconds, or undefined when `s` is not a valid RFC 3339 date-time with an offset. */
export function parseRfc3339(s: string): number | undefined {
  const m = DATE_TIME.exec(s);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  // Day 31 of a 30-day month (or 29 February of a common year) rolls over in Date.UTC.
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) return undefined;
  let offsetMin = 0;
  if (m[8] === undefined) {
    const [oh, om] = [Number(m[10]), Number(m[11])];
    if (oh > 23 || om > 59) return undefined;
    offsetMin = (m[9] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  const fraction = m[7] === undefined ? 0 : Math.floor(Number(`0${m[7]}`) * 1000);
  // A leap second (:60) counts as the last millisecond of its minute.
  const ms = second === 60 ? 59_999 : second * 1000 + fraction;
  return Date.UTC(year, month - 1, day, hour, minute) + ms - offsetMin * 60_000;
}
