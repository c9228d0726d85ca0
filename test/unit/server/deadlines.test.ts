// The calls' expiries on one timer: each fires once, at or after its time, in order; moved and
// removed entries behave; the timer is not re-armed per call (not even when calls come one at a
// time), never keeps the process alive, and stops once nothing is queued; it runs on the monotonic
// clock, so a step of the wall clock moves no expiry.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines, type Expiring } from '../../../src/server/deadlines.js';

class Call implements Expiring {
  expiresAt = Infinity;
  slot = -1;
  fired: number[] = [];
  constructor(
    readonly name: string,
    private readonly log: string[],
  ) {}
  expire(): void {
    this.fired.push(performance.now());
    this.log.push(this.name);
  }
}

describe('Deadlines', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000, toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires each call once, in the order of their times, never early', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const t0 = performance.now();
    const times = [50, 10, 30, 11, 200, 5];
    const calls = times.map((ms, i) => {
      const c = new Call(`c${i}:${ms}`, log);
      q.set(c, t0 + ms);
      return c;
    });
    vi.advanceTimersByTime(31);
    expect(log).toEqual(['c5:5', 'c1:10', 'c3:11', 'c2:30']);
    vi.advanceTimersByTime(500);
    expect(log).toEqual(['c5:5', 'c1:10', 'c3:11', 'c2:30', 'c0:50', 'c4:200']);
    calls.forEach((c, i) => {
      expect(c.fired).toHaveLength(1);
      expect(c.fired[0]).toBeGreaterThanOrEqual(t0 + times[i]!);
    });
    expect(calls.every((c) => c.slot === -1 && c.expiresAt === Infinity)).toBe(true);
    expect(q.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('arms an unref\'d timer, not one per call when calls come one at a time, and stops when nothing is left', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    // One call at a time, each answered 1 ms after it came, with a 200 ms timeout: the queue
    // empties after every call.
    for (let ms = 0; ms < 1_000; ms++) {
      const c = new Call(String(ms), log);
      q.set(c, performance.now() + 200);
      vi.advanceTimersByTime(1);
      q.remove(c);
    }
    expect(log).toEqual([]);
    expect(spy.mock.calls.length).toBeLessThan(10);
    const timer = spy.mock.results.at(-1)!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    vi.advanceTimersByTime(300);
    expect(vi.getTimerCount()).toBe(0);
    spy.mockRestore();
  });

  it('never expires a removed call, and moves a call to its new time (earlier or later)', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const t0 = performance.now();
    const a = new Call('a', log);
    const b = new Call('b', log);
    const c = new Call('c', log);
    q.set(a, t0 + 100);
    q.set(b, t0 + 100);
    q.set(c, t0 + 100);
    q.remove(b);
    q.set(a, t0 + 300); // later: the body came, the deadline is further off
    q.set(c, t0 + 20); // earlier: re-arms the timer
    vi.advanceTimersByTime(25);
    expect(log).toEqual(['c']);
    vi.advanceTimersByTime(100);
    expect(log).toEqual(['c']);
    q.set(a, Infinity); // no deadline: out of the queue
    vi.advanceTimersByTime(1_000);
    expect(log).toEqual(['c']);
    expect(q.size).toBe(0);
  });

  it('keeps one timer for many calls with a fixed timeout, firing about once per timeout', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    // 1,000 calls/s for 2 s, each answered 3 ms after it came, with a 200 ms timeout.
    const open: Call[] = [];
    for (let ms = 0; ms < 2_000; ms++) {
      const c = new Call(String(ms), log);
      q.set(c, performance.now() + 200);
      open.push(c);
      if (open.length > 3) q.remove(open.shift()!);
      vi.advanceTimersByTime(1);
    }
    expect(log).toEqual([]);
    expect(spy.mock.calls.length).toBeLessThan(20);
    expect(vi.getTimerCount()).toBe(1);
    for (const c of open) q.remove(c);
    vi.advanceTimersByTime(300);
    expect(vi.getTimerCount()).toBe(0);
    spy.mockRestore();
  });

  it('keeps the heap in order under random sets and removes (against a sorted list)', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const t0 = performance.now();
    let seed = 1;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const calls = Array.from({ length: 300 }, (_, i) => new Call(`c${i}`, log));
    const want = new Map<Call, number>();
    for (let step = 0; step < 5_000; step++) {
      const c = calls[rnd(calls.length)]!;
      if (rnd(3) === 0) {
        q.remove(c);
        want.delete(c);
      } else {
        const at = t0 + 1 + rnd(1_000);
        q.set(c, at);
        want.set(c, at);
      }
    }
    expect(q.size).toBe(want.size);
    vi.advanceTimersByTime(2_000);
    const order = [...want].sort((x, y) => x[1] - y[1]).map(([c]) => c.expiresAt === Infinity && c.name);
    expect(log).toHaveLength(want.size);
    // Fired in time order (ties in any order).
    const times = log.map((name) => want.get(calls.find((c) => c.name === name)!)!);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(order.every(Boolean)).toBe(true);
  });

  it('runs on the monotonic clock: the wall clock stepping forward or back moves no expiry', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const soon = new Call('soon', log);
    const later = new Call('later', log);
    q.set(soon, performance.now() + 50);
    q.set(later, performance.now() + 10_000);
    vi.setSystemTime(Date.now() + 60_000); // NTP steps the clock a minute ahead
    vi.advanceTimersByTime(20);
    expect(log).toEqual([]);
    vi.setSystemTime(Date.now() - 120_000); // and two minutes back
    vi.advanceTimersByTime(40);
    expect(log).toEqual(['soon']);
    expect(soon.fired[0]! - 1_000_000).toBeLessThan(100);
    vi.advanceTimersByTime(10_000);
    expect(log).toEqual(['soon', 'later']);
  });

  it('waits in steps setTimeout can take for an expiry further off than 2^31 - 1 ms', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const spy = vi.spyOn(globalThis, 'setTimeout');
    const far = new Call('far', log);
    q.set(far, performance.now() + 30 * 24 * 3600_000);
    vi.advanceTimersByTime(1_000);
    expect(spy.mock.calls.length).toBe(1);
    expect(spy.mock.calls[0]![1]).toBe(2 ** 31 - 1);
    vi.advanceTimersByTime(30 * 24 * 3600_000);
    expect(log).toEqual(['far']);
    expect(spy.mock.calls.length).toBeLessThan(5);
    spy.mockRestore();
  });

  it('one call that throws does not stop the others', () => {
    const log: string[] = [];
    const q = new Deadlines();
    const bad: Expiring = { expiresAt: Infinity, slot: -1, expire: () => { throw new Error('boom'); } };
    const good = new Call('good', log);
    q.set(bad, performance.now() + 10);
    q.set(good, performance.now() + 10);
    vi.advanceTimersByTime(20);
    expect(log).toEqual(['good']);
  });
});
