// The token bucket and the fixed window exist twice: in TypeScript (MemoryStore) and in the Redis
// Lua script (RedisStore). Seeded random sequences (keys, hits, hits_addend 0, clock steps,
// window boundaries, limits changed by a reload, limits of 0, bursts, shadow limits, one key
// named twice in a request) run against both, on one clock, and every answer must be identical.
//
// The Redis store evaluates the requests of one turn of the event loop in one script run
// (redis-batch.ts); the second test sends several requests per turn, the clock moving between some
// of them, and the memory store answering them one by one must agree.
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

  /** The clock's next move: stand still, a little, a token's interval, onto a window boundary (or 1 ms before), or far. */
  function move(r: ReturnType<typeof rng>, now: number, slot: Slot): number {
    const windowMs = slot.limit.windowSeconds * 1000;
    const m = r.int(0, 9);
    if (m <= 2) return now;
    if (m <= 5) return now + r.int(1, 999);
    if (m === 6 && slot.limit.requestsPerUnit > 0) return now + Math.round(windowMs / slot.limit.requestsPerUnit) * r.int(1, 3);
    if (m === 7) return (Math.floor(now / windowMs) + 1) * windowMs - r.int(0, 1);
    if (m === 8) return now + r.int(1000, 3 * windowMs);
    return now + r.int(1, 5);
  }

  /**
   * Seeded sequences; each step sends `perTurn(r)` requests in one turn of the event loop (the
   * clock standing still between them, or moving by `move` with probability `moveInTurn`).
   */
  async function compare(seedBase: number, perTurn: (r: ReturnType<typeof rng>) => number, moveInTurn: number): Promise<number> {
    let compared = 0;
    for (let seq = 0; seq < SEQUENCES; seq++) {
      const seed = seedBase + seq;
      const r = rng(seed);
      let now = Date.now() + 86_400_000 + r.int(0, 3_600_000);
      const memory = new MemoryStore(1000, () => now);
      const store = new RedisStore(redis.client, { now: () => now });
      // Every other sequence counts refused requests (ratelimit.count_refused_requests).
      const mode: EvaluateMode = seq % 2 === 0 ? 'all' : 'each';
      const slots: Slot[] = Array.from({ length: r.int(2, 5) }, (_, i) => {
        const algorithm: Algorithm = r.chance(0.5) ? 'token_bucket' : 'fixed_window';
        const windowSeconds = r.pick(WINDOWS);
        return { key: `parity:${seed}:${i}:${algorithm}:${windowSeconds}`, limit: randomLimit(r, algorithm, windowSeconds) };
      });

      for (let step = 0; step < STEPS; step++) {
        const turn: { buckets: BucketRequest[]; at: number; expected: Promise<BucketState[]>; actual: Promise<BucketState[]> }[] = [];
        const k = perTurn(r);
        for (let q = 0; q < k; q++) {
          const slot = r.pick(slots);
          if (q === 0 || r.chance(moveInTurn)) now = move(r, now, slot);
          // A reload may change a limit's rate, burst or shadow mode (the key stays, as in production).
          if (r.chance(0.03)) slot.limit = randomLimit(r, slot.limit.algorithm, slot.limit.windowSeconds);
          const hits = r.pick([0, 1, 1, 1, 1, 2, 3, r.int(4, 40)]);
          const buckets: BucketRequest[] = Array.from({ length: r.int(1, 3) }, () => {
            const s = r.pick(slots);
            return { key: s.key, limit: s.limit, hits };
          });
          // Both called in this turn, in this order, at this time: the memory store answers at once.
          turn.push({ buckets, at: now, expected: memory.evaluate(buckets, mode), actual: store.evaluate(buckets, mode) });
        }
        for (const [q, t] of turn.entries()) {
          const [expected, actual] = [await t.expected, await t.actual];
          if (JSON.stringify(actual) !== JSON.stringify(expected)) {
            const request = JSON.stringify(t.buckets.map((b) => ({ key: b.key, hits: b.hits, limit: b.limit })));
            expect(actual, `seed ${seed.toString(16)} (${mode}) step ${step} request ${q} of ${k} at ${t.at}: ${request}`).toEqual(expected);
          }
          compared += t.buckets.length;
        }
      }
    }
    return compared;
  }

  it('answers every request of seeded random sequences identically', async () => {
    expect(await compare(0x5eed0000, () => 1, 0)).toBeGreaterThan(SEQUENCES * STEPS);
  }, 120_000);

  it('answers identically when several requests share a turn (one script run), the clock still or moving between them', async () => {
    // 1 to 8 requests a turn; a fifth of them move the clock, which starts a run of its own.
    expect(await compare(0xba7c0000, (r) => r.int(1, 8), 0.2)).toBeGreaterThan(SEQUENCES * STEPS * 4);
  }, 120_000);
});
