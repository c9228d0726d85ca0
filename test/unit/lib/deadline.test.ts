import { describe, expect, it } from 'vitest';
import { budgetMs, withDeadline } from '../../../src/lib/deadline.js';
import { InFlight } from '../../../src/server/inflight.js';
import { UnavailableError } from '../../../src/lib/errors.js';
import { Stop } from '../../../src/lib/stop.js';

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
  it('returns work that is already done as it is (no promise, no timer), unless its stop is stopped', async () => {
    expect(withDeadline(7, 0)).toBe(7);
    expect(withDeadline(7, 0, new Stop())).toBe(7);
    const stopped = new Stop();
    const reason = new UnavailableError('cancelled', 'gone');
    stopped.abort(reason);
    await expect(withDeadline(7, 50, stopped)).rejects.toBe(reason);
  });
  it('rejects with deadline_exceeded when work is too slow', async () => {
    const slow = new Promise((r) => setTimeout(r, 200));
    await expect(withDeadline(slow, 20)).rejects.toMatchObject({ code: 'deadline_exceeded' });
  });
  it('passes the work\'s own rejection through as it is, and leaves the stop alone', async () => {
    const stop = new Stop();
    const err = new Error('boom');
    await expect(withDeadline(Promise.reject(err), 50, stop)).rejects.toBe(err);
    expect(stop.aborted).toBe(false);
  });
  it('stops the work\'s stop when the deadline passes, with the same error', async () => {
    const stop = new Stop();
    const outcome = withDeadline(new Promise(() => undefined), 10, stop).catch((e: unknown) => e);
    const err = await outcome;
    expect(err).toMatchObject({ code: 'deadline_exceeded' });
    expect(stop.reason).toBe(err);
  });
  it('rejects at once with the reason when the stop is stopped from elsewhere, before or during the work', async () => {
    const before = new Stop();
    const cancelled = new UnavailableError('cancelled', 'reset');
    before.abort(cancelled);
    // Work that rejects as soon as it sees the stop (as the pipeline does): handled, not unhandled.
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown): void => void unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    const work = Promise.resolve().then(() => before.throwIfAborted());
    await expect(withDeadline(work, 10_000, before)).rejects.toBe(cancelled);
    await new Promise((r) => setTimeout(r, 20));
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
    const during = new Stop();
    const started = performance.now();
    const outcome = withDeadline(new Promise(() => undefined), 10_000, during);
    setTimeout(() => during.abort('not an error'), 5);
    await expect(outcome).rejects.toMatchObject({ code: 'cancelled' });
    expect(performance.now() - started).toBeLessThan(5_000);
  });
  it('settles once: a result after the deadline changes nothing, and the timer is cleared by a result', async () => {
    let finish!: (v: number) => void;
    const late = withDeadline(new Promise<number>((r) => (finish = r)), 5);
    await expect(late).rejects.toMatchObject({ code: 'deadline_exceeded' });
    finish(1);
    await expect(late).rejects.toMatchObject({ code: 'deadline_exceeded' });
    const stop = new Stop();
    await expect(withDeadline(Promise.resolve(2), 10, stop)).resolves.toBe(2);
    await new Promise((r) => setTimeout(r, 30));
    expect(stop.aborted).toBe(false);
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
