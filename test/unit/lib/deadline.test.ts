import { describe, expect, it } from 'vitest';
import { budgetMs, withDeadline } from '../../../src/lib/deadline.js';
import { InFlight } from '../../../src/server/inflight.js';

describe('budgetMs', () => {
  it('uses our own budget without a caller deadline', () => {
    expect(budgetMs(150, Infinity)).toBe(150);
  });
  it('is shortened by the caller deadline minus a margin', () => {
    expect(budgetMs(150, new Date(1000 + 100), 1000)).toBe(95);
    expect(budgetMs(150, 1000 + 1000, 1000)).toBe(150);
    expect(budgetMs(150, 900, 1000)).toBe(0);
  });
});

describe('withDeadline', () => {
  it('passes results through', async () => {
    await expect(withDeadline(Promise.resolve(1), 50)).resolves.toBe(1);
  });
  it('rejects with deadline_exceeded when work is too slow', async () => {
    const slow = new Promise((r) => setTimeout(r, 200));
    await expect(withDeadline(slow, 20)).rejects.toMatchObject({ code: 'deadline_exceeded' });
  });
});

describe('InFlight', () => {
  it('resolves idle when the last call ends, or false on timeout', async () => {
    const f = new InFlight();
    await expect(f.idle(10)).resolves.toBe(true);
    const end = f.begin();
    await expect(f.idle(10)).resolves.toBe(false);
    setTimeout(end, 10);
    await expect(f.idle(1000)).resolves.toBe(true);
    end();
    expect(f.size).toBe(0);
  });
});
