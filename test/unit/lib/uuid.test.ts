import { describe, expect, it } from 'vitest';
import { randomUuid } from '../../../src/lib/uuid.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('randomUuid', () => {
  it('is a lower-case version 4, variant 10 UUID, as crypto.randomUUID', () => {
    for (let i = 0; i < 1000; i++) expect(randomUuid()).toMatch(V4);
  });

  it('never repeats, across many refills of its random batch', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomUuid());
    expect(seen.size).toBe(20_000);
  });

  it('returns independent strings (the scratch buffer is reused, the ids are not)', () => {
    const a = randomUuid();
    const copy = `${a}`;
    randomUuid();
    expect(a).toBe(copy);
  });

  it('uses every hex digit in every free position (the bytes are random, not patterned)', () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 4000; i++) [...randomUuid()].forEach((c, j) => digits[j]!.add(c));
    for (const [j, set] of digits.entries()) {
      if ([8, 13, 18, 23].includes(j)) expect([...set]).toEqual(['-']);
      else if (j === 14) expect([...set]).toEqual(['4']);
      else if (j === 19) expect([...set].sort()).toEqual(['8', '9', 'a', 'b']);
      else expect(set.size).toBe(16);
    }
  });
});
