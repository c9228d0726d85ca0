import { describe, expect, it } from 'vitest';
import { startsWithAsciiNoCase, toLower, toUpper } from '../../../src/lib/case.js';
import { allocatedPerCall } from '../../helpers/gc.js';

const SAMPLES = ['', 'authorization', 'X-Request-ID', ':authority', 'GET', 'get', 'Api.Example.TEST', 'ümlaut', 'ÜMLAUT', 'straße', 'İstanbul', '\u212Aelvin', 'x-b3-traceid', '123', 'a\u0000B'];

describe('toLower / toUpper', () => {
  it('answer as the built-ins do, for ASCII and beyond', () => {
    for (const s of SAMPLES) {
      expect(toLower(s)).toBe(s.toLowerCase());
      expect(toUpper(s)).toBe(s.toUpperCase());
    }
  });

  it('make no string when there is nothing to change (the built-ins make one each call)', async () => {
    const names = ['authorization', 'x-request-id', ':authority', 'content-type'];
    const methods = ['GET', 'POST', 'DELETE'];
    const ours = (calls: number): number => {
      let n = 0;
      for (let i = 0; i < calls; i++) n += toLower(names[i & 3]!).length + toUpper(methods[i % 3]!).length;
      return n;
    };
    const builtIns = (calls: number): number => {
      let n = 0;
      for (let i = 0; i < calls; i++) n += names[i & 3]!.toLowerCase().length + methods[i % 3]!.toUpperCase().length;
      return n;
    };
    expect(ours(20_000)).toBe(builtIns(20_000));
    expect(await allocatedPerCall(ours, 200_000)).toBeLessThan(2);
    expect(await allocatedPerCall(builtIns, 200_000)).toBeGreaterThan(32);
  });
});

describe('startsWithAsciiNoCase', () => {
  it('matches ASCII letters in either case, and nothing else folded', () => {
    expect(startsWithAsciiNoCase('Bearer abc', 'Bearer')).toBe(true);
    expect(startsWithAsciiNoCase('bEaReR abc', 'Bearer')).toBe(true);
    expect(startsWithAsciiNoCase('BEARER', 'bearer')).toBe(true);
    expect(startsWithAsciiNoCase('Beare', 'Bearer')).toBe(false);
    expect(startsWithAsciiNoCase('Basic abc', 'Bearer')).toBe(false);
    // Only A-Z fold: the Kelvin sign is not a k, '@' (0x40) and '`' (0x60) are not each other.
    expect(startsWithAsciiNoCase('To\u212Aen x', 'Token')).toBe(false);
    expect(startsWithAsciiNoCase('@', '`')).toBe(false);
    expect(startsWithAsciiNoCase('anything', '')).toBe(true);
  });
});
