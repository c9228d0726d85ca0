import { describe, expect, it } from 'vitest';
import { parseRfc3339 } from '../../../src/lib/rfc3339.js';

describe('strict RFC 3339 date-times', () => {
  it('accepts full date-times with an offset', () => {
    expect(parseRfc3339('2026-11-30T12:00:00Z')).toBe(Date.UTC(2026, 10, 30, 12));
    expect(parseRfc3339('2026-11-30t12:00:00.5z')).toBe(Date.UTC(2026, 10, 30, 12, 0, 0, 500));
    expect(parseRfc3339('2026-11-30T14:30:00+02:30')).toBe(Date.UTC(2026, 10, 30, 12));
    expect(parseRfc3339('2026-11-30T10:00:00-02:00')).toBe(Date.UTC(2026, 10, 30, 12));
    expect(parseRfc3339('2024-02-29T00:00:00Z')).toBe(Date.UTC(2024, 1, 29));
    expect(parseRfc3339('2016-12-31T23:59:60Z')).toBe(Date.UTC(2016, 11, 31, 23, 59, 59, 999));
  });

  it('refuses what Date.parse would guess at', () => {
    for (const s of ['1', '2026', '2026-11-30', '2026-11-30T12:00:00', '2026-11-30 12:00:00Z', 'Mon, 30 Nov 2026 12:00:00 GMT', '2026-13-01T00:00:00Z', '2026-04-31T00:00:00Z', '2025-02-29T00:00:00Z', '2026-11-30T24:00:00Z', '2026-11-30T12:00:00+24:00', '+002026-11-30T12:00:00Z', '2026-11-30T12:00:00.Z', ' 2026-11-30T12:00:00Z']) {
      expect(parseRfc3339(s), s).toBeUndefined();
    }
  });
});
