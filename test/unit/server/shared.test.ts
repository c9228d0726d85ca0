// Components shared by config generations: opened once per key, closed with the last lease.
import { describe, expect, it } from 'vitest';
import { SharedResources, settingsKey } from '../../../src/server/shared.js';

function resource(): { opened: number; closed: number; open: () => Promise<{ value: number; close: () => Promise<void> }> } {
  const r = {
    opened: 0,
    closed: 0,
    open: () => {
      r.opened += 1;
      return Promise.resolve({ value: r.opened, close: () => Promise.resolve(void (r.closed += 1)) });
    },
  };
  return r;
}

describe('SharedResources', () => {
  it('opens a key once, shares it between leases and closes it when the last lease is released', async () => {
    const pool = new SharedResources();
    const r = resource();
    const a = await pool.lease('k', r.open);
    const b = await pool.lease('k', r.open);
    expect([a.value, b.value, r.opened]).toEqual([1, 1, 1]);
    await a.release();
    await a.release(); // idempotent
    expect(r.closed).toBe(0);
    await b.release();
    expect([r.closed, pool.size]).toEqual([1, 0]);
    // A later lease opens it anew.
    expect((await pool.lease('k', r.open)).value).toBe(2);
  });

  it('keeps nothing of a failed open, so the next lease tries again', async () => {
    const pool = new SharedResources();
    await expect(pool.lease('k', () => Promise.reject(new Error('down')))).rejects.toThrow('down');
    expect(pool.size).toBe(0);
    expect((await pool.lease('k', resource().open)).value).toBe(1);
  });

  it('keys settings by value, whatever the order of object keys', () => {
    expect(settingsKey('x', { a: 1, b: { c: 2, d: 3 } })).toBe(settingsKey('x', { b: { d: 3, c: 2 }, a: 1 }));
    expect(settingsKey('x', { a: 1 })).not.toBe(settingsKey('x', { a: 2 }));
    expect(settingsKey('x', [1, 2])).not.toBe(settingsKey('x', [2, 1]));
  });
});
