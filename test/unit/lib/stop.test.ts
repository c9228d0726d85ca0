// The call path's stop signal: AbortSignal's semantics for what the path uses (once, reason,
// throwIfAborted, listeners in order, removable, late listeners run at once), and - the reason it
// exists - no promotion out of the young generation per call, where Node's AbortController has.
import v8 from 'node:v8';
import { describe, expect, it } from 'vitest';
import { Stop } from '../../../src/lib/stop.js';

describe('Stop', () => {
  it('stops once, keeps the first reason and throws it', () => {
    const s = new Stop();
    expect(s.aborted).toBe(false);
    expect(() => s.throwIfAborted()).not.toThrow();
    const first = new Error('first');
    s.abort(first);
    s.abort(new Error('second'));
    expect([s.aborted, s.reason]).toEqual([true, first]);
    expect(() => s.throwIfAborted()).toThrow(first);
  });

  it('runs listeners once, in order; a removed one not at all; a late one at once', () => {
    const s = new Stop();
    const seen: string[] = [];
    s.onAbort(() => seen.push('a'));
    const off = s.onAbort(() => seen.push('b'));
    s.onAbort((r) => seen.push(`c:${String(r)}`));
    off();
    s.abort('why');
    s.abort('again');
    s.onAbort((r) => seen.push(`late:${String(r)}`));
    expect(seen).toEqual(['a', 'c:why', 'late:why']);
  });

  it('is collected young, call after call (unlike an AbortController per call)', async () => {
    const promotedPerOp = async (make: () => void): Promise<number> => {
      const profiler = new v8.GCProfiler();
      profiler.start();
      const n = 100_000;
      for (let i = 0; i < n; i += 32) {
        for (let j = 0; j < 32; j++) make();
        await new Promise((r) => setImmediate(r));
      }
      const old = (s: { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] }): number => s.heapSpaceStatistics.find((x) => x.spaceName === 'old_space')!.spaceUsedSize;
      let promoted = 0;
      for (const s of profiler.stop().statistics) if (s.gcType === 'Scavenge') promoted += old(s.afterGC) - old(s.beforeGC);
      return promoted / n;
    };
    const stop = await promotedPerOp(() => {
      const s = new Stop();
      const off = s.onAbort(() => undefined);
      s.throwIfAborted();
      off();
    });
    const controller = await promotedPerOp(() => {
      const c = new AbortController();
      const f = (): void => undefined;
      c.signal.addEventListener('abort', f, { once: true });
      c.signal.throwIfAborted();
      c.signal.removeEventListener('abort', f);
    });
    expect(stop).toBeLessThan(20);
    expect(controller).toBeGreaterThan(stop * 5);
  });

  it('follows a leader: stopped with its reason, in order with its other listeners, until detached', () => {
    const leader = new Stop();
    const seen: string[] = [];
    const a = new Stop();
    const b = new Stop();
    leader.onAbort(() => seen.push('fn'));
    a.follow(leader);
    b.follow(leader);
    a.onAbort((r) => seen.push(`a:${String(r)}`));
    b.detach();
    leader.abort('gone');
    expect(seen).toEqual(['fn', 'a:gone']);
    expect(a.aborted && a.reason === 'gone').toBe(true);
    expect(b.aborted).toBe(false);
    // A leader already stopped stops its follower at once; detaching twice or unlinked is harmless.
    const c = new Stop();
    c.follow(leader);
    expect(c.reason).toBe('gone');
    c.detach();
    c.detach();
    new Stop().detach();
  });

  it('a detached follower is no longer reachable from its leader', () => {
    const leader = new Stop();
    for (let i = 0; i < 1_000; i++) {
      const s = new Stop();
      s.follow(leader);
      s.detach();
    }
    expect((leader as unknown as { listeners: unknown[] }).listeners).toHaveLength(0);
  });
});
