import { describe, expect, it } from 'vitest';
import { testLimit } from '../../helpers/limits.js';
import { compileRateLimitFile } from '../../../src/ratelimit/config.js';
import { RateLimiter, RateLimitRequestError } from '../../../src/ratelimit/limiter.js';
import { MemoryStore } from '../../../src/ratelimit/memory-store.js';

const limit = testLimit;

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('token bucket (memory store, injected clock)', () => {
  it('admits a burst, refuses the next, refills at the rate', async () => {
    const c = clock();
    const s = new MemoryStore(1000, c.now);
    const b = { key: 'k', limit: limit(), hits: 1 };
    const r = [];
    for (let i = 0; i < 4; i++) r.push((await s.evaluate([b]))[0]!);
    expect(r.map((x) => x.allowed)).toEqual([true, true, true, false]);
    expect(r.map((x) => x.remaining)).toEqual([2, 1, 0, 0]);
    expect(r[3]!.retryAfterMs).toBe(1000); // one token per second
    c.advance(999);
    expect((await s.evaluate([b]))[0]!.allowed).toBe(false);
    c.advance(1);
    expect((await s.evaluate([b]))[0]!.allowed).toBe(true);
    c.advance(10_000);
    expect((await s.evaluate([{ ...b, hits: 0 }]))[0]!.remaining).toBe(3); // refilled to the burst, hits 0 checks only
  });

  it('does not consume when the request is denied, and counts hits_addend', async () => {
    const s = new MemoryStore(1000, clock().now);
    const a = { key: 'a', limit: limit(), hits: 1 };
    const tight = { key: 'b', limit: limit({ burst: 1, requestsPerUnit: 1 }), hits: 1 };
    await s.evaluate([tight]);
    // 'b' is empty: the request is refused and 'a' keeps all its tokens.
    expect((await s.evaluate([a, tight])).map((x) => x.allowed)).toEqual([true, false]);
    expect((await s.evaluate([{ ...a, hits: 0 }]))[0]!.remaining).toBe(3);
    expect((await s.evaluate([{ ...a, hits: 3 }]))[0]!.allowed).toBe(true);
    expect((await s.evaluate([{ ...a, hits: 1 }]))[0]!.allowed).toBe(false);
  });

  it('shadow limits report over-limit without refusing', async () => {
    const s = new MemoryStore(1000, clock().now);
    const b = { key: 's', limit: limit({ burst: 1, shadow: true }), hits: 1 };
    await s.evaluate([b]);
    const [state] = await s.evaluate([b, { key: 'o', limit: limit(), hits: 1 }]);
    expect(state!.allowed).toBe(false);
  });
});

describe('fixed window (memory store)', () => {
  it('counts exactly within the window and resets at its end', async () => {
    const c = clock(60_000 * 100); // start of a window
    const s = new MemoryStore(1000, c.now);
    const b = { key: 'f', limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 2, windowSeconds: 60 }), hits: 1 };
    expect((await s.evaluate([b]))[0]).toMatchObject({ allowed: true, remaining: 1, resetMs: 60_000 });
    expect((await s.evaluate([b]))[0]!.allowed).toBe(true);
    c.advance(30_000);
    expect((await s.evaluate([b]))[0]).toMatchObject({ allowed: false, remaining: 0, retryAfterMs: 30_000 });
    c.advance(30_000);
    expect((await s.evaluate([b]))[0]!.allowed).toBe(true);
  });
});

describe('RateLimiter', () => {
  const domain = compileRateLimitFile(
    'r.yaml',
    `domain: d
descriptors:
  - key: user
    rate_limit: {unit: minute, requests_per_unit: 2, name: per-user}
  - key: vip
    rate_limit: {unit: minute, requests_per_unit: 100, replaces: [{name: per-user}]}
  - key: free
    rate_limit: {unlimited: true}
  - key: trial
    shadow_mode: true
    rate_limit: {unit: minute, requests_per_unit: 1}
`,
    { algorithm: 'fixed_window' },
  );
  const rl = (mode: 'draft' | 'legacy' | 'both' = 'draft') => new RateLimiter(() => new Map([['d', domain]]), new MemoryStore(1000, clock(60_000 * 7).now), mode, 64);

  it('reports per-descriptor statuses, overall OVER_LIMIT and headers for the most restrictive limit', async () => {
    const r = rl('both');
    const one = [{ key: 'user', value: 'alice' }];
    await r.shouldRateLimit('d', [one], 1);
    const ok = await r.shouldRateLimit('d', [one], 1);
    expect(ok.over).toBe(false);
    expect(ok.headers).toContainEqual(['ratelimit', '"per-user";r=0;t=60']);
    const over = await r.shouldRateLimit('d', [one, [{ key: 'user', value: 'bob' }]], 1);
    expect(over.over).toBe(true);
    expect(over.descriptors.map((d) => d.over)).toEqual([true, false]);
    expect(over.headers).toEqual(
      expect.arrayContaining([
        ['ratelimit-policy', '"per-user";q=2;w=60'],
        ['x-ratelimit-remaining', '0'],
        ['retry-after', '60'],
      ]),
    );
  });

  it('drops replaced limits, ignores unlimited and unknown descriptors, never limits in shadow mode', async () => {
    const r = rl();
    const alice = [{ key: 'user', value: 'alice' }];
    for (let i = 0; i < 5; i++) expect((await r.shouldRateLimit('d', [alice, [{ key: 'vip', value: 'x' }]], 1)).over).toBe(false);
    expect((await r.shouldRateLimit('d', [[{ key: 'free', value: 'x' }], [{ key: 'nope', value: 'x' }]], 1)).descriptors.map((d) => d.limit)).toEqual([undefined, undefined]);
    const trial = [{ key: 'trial', value: 't' }];
    await r.shouldRateLimit('d', [trial], 1);
    const shadow = await r.shouldRateLimit('d', [trial], 1);
    expect(shadow.over).toBe(false);
    expect(shadow.descriptors[0]!.shadowOver).toBe(true);
    expect((await r.shouldRateLimit('other-domain', [alice], 1)).over).toBe(false);
  });

  it('labels each descriptor\'s limit for metrics by its configured name, else its path in the file, never by a request value', async () => {
    const r = rl();
    const d = await r.shouldRateLimit('d', [[{ key: 'user', value: 'alice' }], [{ key: 'trial', value: 'secret-value' }], [{ key: 'free', value: 'x' }]], 1);
    expect(d.descriptors.map((x) => x.limitLabel)).toEqual(['per-user', 'trial', undefined]);
  });
});

describe('requests_per_unit: 0 (memory store)', () => {
  it.each(['token_bucket', 'fixed_window'] as const)('%s admits nothing until the window ends, stores nothing, spends nothing elsewhere', async (algorithm) => {
    const c = clock(60_000 * 100 + 15_000); // 15 s into a minute window
    const s = new MemoryStore(1000, c.now);
    const zero = { key: 'z', limit: limit({ algorithm, requestsPerUnit: 0, burst: 1, windowSeconds: 60 }), hits: 1 };
    const other = { key: 'o', limit: limit(), hits: 1 };
    expect(await s.evaluate([zero, other])).toEqual([
      { allowed: false, remaining: 0, resetMs: 45_000, retryAfterMs: 45_000, used: 0 },
      { allowed: true, remaining: 2, resetMs: 1000, retryAfterMs: 0, used: 0 }, // reported, not consumed
    ]);
    expect((await s.evaluate([{ ...other, hits: 0 }]))[0]!.remaining).toBe(3);
    c.advance(60_000);
    expect((await s.evaluate([{ ...zero, hits: 5 }]))[0]).toEqual({ allowed: false, remaining: 0, resetMs: 45_000, retryAfterMs: 45_000, used: 0 });
    expect((await s.evaluate([{ ...zero, hits: 0 }]))[0]).toEqual({ allowed: true, remaining: 0, resetMs: 45_000, retryAfterMs: 0, used: 0 });
  });

  it.each(['token_bucket', 'fixed_window'] as const)('%s through the limiter: over limit, finite headers', async (algorithm) => {
    const d = compileRateLimitFile('z.yaml', 'domain: z\ndescriptors:\n  - key: closed\n    rate_limit: {unit: minute, requests_per_unit: 0, name: closed}\n', { algorithm });
    const r = new RateLimiter(() => new Map([['z', d]]), new MemoryStore(1000, clock(60_000 * 7 + 20_000).now), 'both', 64);
    const res = await r.shouldRateLimit('z', [[{ key: 'closed', value: 'x' }]], 1);
    expect(res.over).toBe(true);
    expect(res.descriptors[0]).toMatchObject({ over: true, state: { remaining: 0, resetMs: 40_000 } });
    expect(res.headers).toEqual([
      ['ratelimit-policy', '"closed";q=0;w=60'],
      ['ratelimit', '"closed";r=0;t=40'],
      ['x-ratelimit-limit', '0, 0;w=60'],
      ['x-ratelimit-remaining', '0'],
      ['x-ratelimit-reset', '40'],
      ['retry-after', '40'],
    ]);
  });
});

describe('RateLimiter descriptor cap', () => {
  it('refuses more than maxDescriptors before touching the store', async () => {
    const d = compileRateLimitFile('c.yaml', 'domain: c\ndescriptors:\n  - key: k\n    rate_limit: {unit: minute, requests_per_unit: 5}\n', { algorithm: 'token_bucket' });
    const store = new MemoryStore(1000, clock().now);
    const r = new RateLimiter(() => new Map([['c', d]]), store, 'draft', 2);
    const k = [{ key: 'k', value: 'v' }];
    expect(r.refusal('c', 2)).toBeUndefined();
    await expect(r.shouldRateLimit('c', [k, k, k], 1)).rejects.toThrow(new RateLimitRequestError('too many descriptors: 3, at most 2 per request (ratelimit.max_descriptors)'));
    expect((await r.shouldRateLimit('c', [k], 1)).descriptors[0]!.state?.remaining).toBe(4);
  });
});
