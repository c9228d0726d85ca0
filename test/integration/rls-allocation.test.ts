// What a ShouldRateLimit on Redis allocates and keeps: decoded from its bytes, through the adapter,
// the limiter and one EVALSHA on a real Redis, to the answer's bytes - in batches of 14 calls per
// turn of the event loop, as the transport runs them at full load (docs/performance.md,
// ShouldRateLimit). The bytes were 16.6 KB per call with one descriptor (26.4 KB with three)
// before the script's call was sent in Redis's wire format and the answer written straight to
// protobuf bytes, and 11.6 KB (16.5 KB) before the one-pass request decoder; nothing a call
// allocates may outlive two scavenges (then only a mark-compact frees it).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Stop } from '../../src/lib/stop.js';
import { compileRateLimitFile } from '../../src/ratelimit/config.js';
import { RateLimiter } from '../../src/ratelimit/limiter.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { InFlight } from '../../src/server/inflight.js';
import { shouldRateLimitMethod } from '../../src/server/codecs.js';
import { rateLimitHandlers } from '../../src/server/rls-service.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { heapDuring } from '../helpers/gc.js';
// The bench's own rate-limit file (bench/scenarios/ratelimit.ts): the shapes measured there.
import { RLS_CONFIG } from '../../bench/scenarios/ratelimit.js';

describe('what a ShouldRateLimit on Redis allocates', () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { commandTimeout: 5000 });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  it.each([1, 3] as const)('%i descriptor(s): under the bound per call, and nothing promoted', async (d) => {
    const domain = compileRateLimitFile('bench.yaml', RLS_CONFIG, { algorithm: 'fixed_window' });
    const limiter = new RateLimiter(() => new Map([['bench', domain]]), new RedisStore(client), 'draft', 64);
    const handlers = rateLimitHandlers({ limiter, log: createLogger('silent'), inflight: new InFlight() });
    // Decoded and encoded as the service does (server/codecs.ts).
    const def = shouldRateLimitMethod();
    const encode = (v: unknown): Buffer => def.responseSerialize(v);
    const requests = Array.from({ length: 1000 }, (_, i) => {
      const descriptors = [{ entries: [{ key: 'user', value: `user-${i}` }] }];
      if (d === 3) descriptors.push({ entries: [{ key: 'client', value: `client-${i % 50}` }] }, { entries: [{ key: 'route', value: 'orders' }] });
      return def.requestSerialize({ domain: 'bench', descriptors, hits_addend: 1 });
    });
    const metadata = new Map<string, string>();
    const one = (i: number): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const call = { request: def.requestDeserialize(requests[i % 1000]!), metadata, signal: new Stop(), getDeadline: () => Infinity };
        handlers.ShouldRateLimit(call as never, (err, res) => (err ? reject(new Error(String(err.details))) : resolve(encode(res))));
      });
    const run = async (calls: number): Promise<void> => {
      for (let i = 0; i < calls; i += 14) {
        await new Promise((r) => setImmediate(r));
        await Promise.all(Array.from({ length: 14 }, (_, k) => one(i + k)));
      }
    };
    await run(5000); // warm: compiled code, connection, the keys in Redis

    const calls = 14_000;
    const { allocated, promoted } = await heapDuring(() => run(calls));
    // Measured 9.0 KB (1 descriptor) and 13.9 KB (3) with the store returning the batch's promise
    // (9.6 and 14.5 with two async layers around it); 10.7 KB and 14.9 KB with the one-pass request
    // decoder; 11.6 KB and 16.5 KB with proto-loader's; 16.6 KB and 26.4 KB before the wire writers.
    expect(allocated / calls).toBeLessThan(d === 1 ? 9_500 : 14_600);
    expect(promoted / calls).toBeLessThan(200);
  });
});
