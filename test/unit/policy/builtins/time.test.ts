// time.* host built-ins against the real `opa eval` on the same calls (one policy, one opa run),
// and time.now_ns: one value per evaluation.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../../../helpers/opa.js';
import { tempDir } from '../../../helpers/tmp.js';
import { parseBundle } from '../../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../../src/policy/engine.js';
import { evaluateBoth, type BuiltinCase, type Results } from './opa-compare.js';

const q = (s: string): string => JSON.stringify(s);
const T = 1_700_000_000_000_000_000; // 2023-11-14T22:13:20Z, exact as a double
const JAN31 = 1_706_659_200_000_000_000; // 2024-01-31T00:00:00Z
const DST = 1_710_054_000_000_000_000; // 2024-03-10T07:00:00Z, America/New_York springs forward
const FRAC = 1_700_000_000_123_456_000; // exact as a double

const cases: BuiltinCase[] = [];
const add = (name: string, expr: string): void => void cases.push({ name, expr });

for (const [i, s] of [
  '2017-06-02T19:00:00Z',
  '2017-06-02T19:00:00.123456789+02:00',
  '2017-06-02T19:00:00,5-07:30',
  '2017-06-02t19:00:00Z',
  '2017-06-02T19:00:00z',
  '2017-02-30T00:00:00Z',
  '2016-02-29T00:00:00Z',
  '2017-06-02T9:00:00Z',
  '2017-06-02T19:00:00',
  '1677-09-21T00:12:43Z',
  '2262-04-11T23:47:16.854775807Z',
  '2262-04-12T00:00:00Z',
  '2017-06-02T24:00:00Z',
  '2017-06-02T19:00:00+25:00',
  'garbage',
  '',
].entries()) {
  add(`rfc3339_${i}`, `time.parse_rfc3339_ns(${q(s)})`);
}
add('rfc3339_not_string', 'time.parse_rfc3339_ns(data.d.number)');

for (const [i, [layout, value]] of (
  [
  ['2006-01-02', '2020-06-02'],
  ['RFC822', '02 Jun 20 15:04 UTC'],
  ['RFC822', '02 Jun 20 15:04 EST'],
  ['RFC822Z', '02 Jun 20 15:04 -0700'],
  ['ANSIC', 'Tue Jun  2 19:00:00 2020'],
  ['UnixDate', 'Tue Jun  2 19:00:00 UTC 2020'],
  ['RubyDate', 'Tue Jun 02 19:00:00 +0530 2020'],
  ['RFC850', 'Tuesday, 02-Jun-20 19:00:00 UTC'],
  ['RFC1123', 'Tue, 02 Jun 2020 19:00:00 GMT'],
  ['RFC1123Z', 'Tue, 02 Jun 2020 19:00:00 -0000'],
  ['RFC3339Nano', '2020-06-02T19:00:00.5Z'],
  ['January 2, 2006 3:04pm', 'June 2, 2020 7:00pm'],
  ['January 2, 2006 3:04PM', 'june 2, 2020 12:00AM'],
  ['2006-002', '2020-155'],
  ['2006-002', '2019-366'],
  ['06-1-2 15:04:05.000', '20-6-2 19:00:00.123'],
  ['2006-01-02 15:04:05.999999999 -0700', '2020-06-02 19:00:00.000001 +0100'],
  ['2006-01-02 15:04:05 Z07:00', '2020-06-02 19:00:00 Z'],
  ['2006-01-02T15:04:05', '2020-06-02T19:00:00.25'],
  ['2006-01-02', '2020-06-02 extra'],
  ['2006-01-02', '2020-13-02'],
  ['15:04', '19:00'],
  ['2006 Jan _2', '2020 Feb  3'],
  ['Mon 2006-01-02', 'Fri 2020-06-02'],
  ] as [string, string][]
).entries()) {
  add(`parse_ns_${i}`, `time.parse_ns(${q(layout)}, ${q(value)})`);
}

for (const [i, d] of ['1h30m', '1.5h', '-2m', '+3s', '0', '', '1', '1d', '1.5d', '2w', '1y', '1y2d3h', '-1d12h', '300ms', '1us', '1µs', '.5s', '5.s', '1e3s', '2562047h', '2562048h', '1dd', '1.123456789123s', '3x'].entries()) {
  add(`duration_${i}`, `time.parse_duration_ns(${q(d)})`);
}

const stamps: [string, string][] = [
  ['zero', '0'],
  ['t', `${T}`],
  ['neg', '-1'],
  ['ny', `[${T}, "America/New_York"]`],
  ['kolkata', `[${T}, "Asia/Kolkata"]`],
  ['utc_named', `[${T}, "UTC"]`],
  ['empty_zone', `[${T}, ""]`],
  ['bad_zone', `[${T}, "Nowhere/Land"]`],
  ['case_zone', `[${T}, "europe/berlin"]`],
  ['fraction', '1.5'],
  ['string', 'data.d.str'],
  ['empty_array', 'data.d.empty'],
  ['leap', '1709164800000000000'],
];
for (const [name, s] of stamps) {
  add(`date_${name}`, `time.date(${s})`);
  add(`clock_${name}`, `time.clock(${s})`);
  add(`weekday_${name}`, `time.weekday(${s})`);
}

add('add_year', `time.add_date(${T}, 1, 0, 0)`);
add('add_month_overflow', `time.add_date(${JAN31}, 0, 1, 0)`);
add('add_negative_day', `time.add_date(${JAN31}, 0, 0, -31)`);
add('add_leap', `time.add_date(1709164800000000000, 1, 0, 0)`);
add('add_dst', 'time.add_date(data.d.dst, 0, 0, 1)');
add('add_out_of_range', `time.add_date(${T}, 300, 0, 0)`);
add('add_fraction_years', 'time.add_date(0, data.d.half, 0, 0)');
add('add_nanos', `time.add_date(${FRAC}, 0, 0, 1)`);

add('diff_same', `time.diff(${T}, ${T})`);
add('diff_forward', `time.diff(${JAN31}, ${T})`);
add('diff_backward', `time.diff(${T}, ${JAN31})`);
add('diff_months', `time.diff(${JAN31}, 1709164800000000000)`);
add('diff_zone', `time.diff(data.d.kolkata, ${JAN31})`);
add('diff_year', `time.diff(0, ${T})`);

for (const [i, spec] of [
  `${T}`,
  `${FRAC}`,
  `[${FRAC}, "UTC", "RFC822"]`,
  `[${FRAC}, "UTC", "RFC1123"]`,
  `[${FRAC}, "UTC", "ANSIC"]`,
  `[${FRAC}, "America/New_York", "RFC3339"]`,
  `[${FRAC}, "America/New_York", "2006-01-02 15:04:05 -0700 MST"]`,
  `[${FRAC}, "Asia/Kolkata", "2006-01-02 15:04:05 Z07:00 -07 -070000 -07:00:00 Z0700"]`,
  `[${FRAC}, "UTC", "Monday, January _2 3:04PM pm .000 .999 ,000000 .000000000 .9 Z07:00"]`,
  `[${FRAC}, "UTC", "002 __2 06 1 2 3 4 5 03 04 05 15"]`,
  `[${FRAC}, "UTC", "Jan Janet Mon Monthly MST _2006"]`,
  `[${FRAC}, "UTC", ""]`,
  `[${T}, "UTC", "2006-01-02T15:04:05.999999999Z07:00"]`,
  `[-1, "UTC", "RFC3339Nano"]`,
].entries()) {
  add(`format_${i}`, `time.format(${spec})`);
}

const tmp = tempDir();
let results: { ours: Results; opa: Results };

beforeAll(async () => {
  results = await evaluateBoth(tmp.dir, 'time', cases, { data: { d: { number: 1, str: 'x', empty: [], half: 0.5, dst: [DST - 3600e9, 'America/New_York'], kolkata: [T, 'Asia/Kolkata'] } } });
}, 120_000);

describe('time.* host built-ins match opa eval', () => {
  it.each(cases)('$name: $expr', (c) => {
    expect(results.ours[c.name]).toEqual(results.opa[c.name]);
  });
});

describe('time.now_ns', () => {
  it('is one value throughout an evaluation, and moves on between evaluations', async () => {
    const rego = `package t
import rego.v1
r := {"a": time.now_ns(), "b": [time.now_ns() | some i in numbers.range(1, 200)]}
`;
    const engine = new PolicyEngine({ decisionPath: 't/r', initialPages: 16, maxPages: 1024 });
    await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, 'now', { rego, entrypoint: 't/r' }))));
    const before = Date.now() * 1e6;
    const first = engine.evaluate({ token: '' }).result as { a: number; b: number[] };
    expect(new Set(first.b)).toEqual(new Set([first.a]));
    expect(first.a).toBeGreaterThanOrEqual(before);
    await new Promise((r) => setTimeout(r, 5));
    const second = engine.evaluate({ token: '' }).result as { a: number };
    expect(second.a).toBeGreaterThan(first.a);
  });
});
