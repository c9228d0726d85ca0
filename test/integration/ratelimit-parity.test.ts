// The token bucket and the fixed window exist twice: in TypeScript (MemoryStore) and in the Redis
// Lua script (RedisStore). Seeded random sequences (keys, hits, hits_addend 0, clock steps,
// window boundaries, limits changed by a reload, limits of 0, bursts, shadow limits, one key
// named twice in a request) run against both, on one clock, and every answer must be identical.
//
// The clock: the memory store takes it as `now`; the Redis store passes it to the script in
// place of Redis TIME (a test-only option). Expiry only collects garbage in both stores: a
// stored value says which window (fixed window) or time (token bucket) it belongs to, so an
// expired key and a key from a past window or time answer alike. The test clock runs a day
// ahead of real time, and the script sets absolute expiry times on its clock, so no Redis key
// expires during the test while the memory store's do: the answers must not depend on expiry.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Algorithm, BucketRequest, BucketState, EvaluateMode, Limit } from '../../src/ratelimit/limits.js';
import { MemoryStore } from '../../src/ratelimit/memory-store.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { testLimit } from '../helpers/limits.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

/** mulberry32: a small seeded generator, so a failing sequence can be replayed from its seed. */
function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return { next, int, pick: (xs) => xs[int(0, xs.length - 1)]!, chance: (p) => next() < p };
}

interface Slot {
  readonly key: string;
  limit: Limit;
}

const RATES = [0, 1, 2, 3, 5, 7, 10, 60, 1000] as const;
const WINDOWS = [1, 2, 60, 3600] as const;

function randomLimit(r: ReturnType<typeof rng>, algorithm: Algorithm, windowSeconds: number): Limit {
  const requestsPerUnit = r.chance(0.1) ? 0 : r.pick(RATES);
  const burst = r.chance(0.5) ? Math.max(requestsPerUnit, 1) : r.int(1, 2 * requestsPerUnit + 3);
  return testLimit({ algorithm, windowSeconds, requestsPerUnit, burst, shadow: r.chance(0.1) });
}

describe('MemoryStore and RedisStore agree', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  const SEQUENCES = 80;
  const STEPS = 150;

  it('answers every request of seeded random sequences identically', async () => {
    let compared = 0;
    for (let seq = 0; seq < SEQUENCES; seq++) {
      const seed = 0x5eed0000 + seq;
      const r = rng(seed);
      let now = Date.now() + 86_400_000 + r.int(0, 3_600_000);
      const memory = new MemoryStore(1000, () => now);
      const store = new RedisStore(redis.client, { now: () => now });
      // Every other sequence counts refused requests (ratelimit.count_refused_requests).
      const mode: EvaluateMode = seq % 2 === 0 ? 'all' : 'each';
      const slots: Slot[] = Array.from({ length: r.int(2, 5) }, (_, i) => {
        const algorithm: Algorithm = r.chance(0.5) ? 'token_bucket' : 'fixed_window';
        const windowSeconds = r.pick(WINDOWS);
        return { key: `parity:${seq}:${i}:${algorithm}:${windowSeconds}`, limit: randomLimit(r, algorithm, windowSeconds) };
      });

      for (let step = 0; step < STEPS; step++) {
        // The clock: stand still, move a little, move by a token's interval, land exactly on a
        // window boundary (or one ms before it), or jump far.
        const slot = r.pick(slots);
        const windowMs = slot.limit.windowSeconds * 1000;
        const move = r.int(0, 9);
        if (move <= 2) now += 0;
        else if (move <= 5) now += r.int(1, 999);
        else if (move === 6 && slot.limit.requestsPerUnit > 0) now += Math.round(windowMs / slot.limit.requestsPerUnit) * r.int(1, 3);
        else if (move === 7) now = (Math.floor(now / windowMs) + 1) * windowMs - r.int(0, 1);
        else if (move === 8) now += r.int(1000, 3 * windowMs);
        else now += r.int(1, 5);
        // A reload may change a limit's rate, burst or shadow mode (the key stays, as in production).
        if (r.chance(0.03)) slot.limit = randomLimit(r, slot.limit.algorithm, slot.limit.windowSeconds);

        const hits = r.pick([0, 1, 1, 1, 1, 2, 3, r.int(4, 40)]);
        const buckets: BucketRequest[] = Array.from({ length: r.int(1, 3) }, () => {
          const s = r.pick(slots);
          return { key: s.key, limit: s.limit, hits };
        });

        const expected: BucketState[] = await memory.evaluate(buckets, mode);
        const actual: BucketState[] = await store.evaluate(buckets, mode);
        if (JSON.stringify(actual) !== JSON.stringify(expected)) {
          const request = JSON.stringify(buckets.map((b) => ({ key: b.key, hits: b.hits, limit: b.limit })));
          expect(actual, `seed ${seed.toString(16)} (${mode}) step ${step} at ${now}: ${request}`).toEqual(expected);
        }
        compared += buckets.length;
      }
    }
    expect(compared).toBeGreaterThan(SEQUENCES * STEPS);
  }, 120_000);
});
