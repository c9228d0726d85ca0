// count(key, windowS), the failure guard's counter, in each store: the same answers in memory and
// on a real Redis, and a rejection (never a failure-mode answer) when the shared store fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { RateLimitStore } from '../../src/ratelimit/limits.js';
import { MemoryStore } from '../../src/ratelimit/memory-store.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { ResilientStore } from '../../src/ratelimit/resilient-store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { capture } from '../helpers/log.js';
import { testLimit } from '../helpers/limits.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

async function countsThree(store: RateLimitStore, key: string): Promise<void> {
  const a = await store.count(key, 60);
  const b = await store.count(key, 60);
  const c = await store.count(key, 60);
  expect([a.count, b.count, c.count]).toEqual([1, 2, 3]);
  // The window starts with the first hit and is not extended by the later ones.
  expect(a.resetMs).toBeGreaterThan(59_000);
  expect(a.resetMs).toBeLessThanOrEqual(60_000);
  expect(c.resetMs).toBeLessThanOrEqual(a.resetMs);
  expect((await store.count(`${key}:other`, 60)).count).toBe(1);
}

describe('MemoryStore.count', () => {
  it('counts in a window that starts with the first hit and starts again after it', async () => {
    let now = 1_000_000;
    const store = new MemoryStore(100, () => now);
    await countsThree(store, 'bf:m');
    now += 30_000;
    expect(await store.count('bf:m', 60)).toEqual({ count: 4, resetMs: 30_000 });
    now += 30_001;
    expect(await store.count('bf:m', 60)).toEqual({ count: 1, resetMs: 60_000 });
  });
});

describe('RedisStore.count', () => {
  let redis: TestRedis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisStore(new Redis(redis.url));
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('counts in one round trip, with the window as the key\'s time to live', async () => {
    await countsThree(store, 'bf:r');
    const ttl = await redis.client.pttl('bf:r');
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('gives a counter left without a time to live one', async () => {
    await redis.client.set('bf:stuck', '5');
    expect((await store.count('bf:stuck', 60)).count).toBe(6);
    expect(await redis.client.pttl('bf:stuck')).toBeGreaterThan(59_000);
  });

  it('behind failure_mode deny: count rejects while Redis is stalled, where evaluate answers "over"', async () => {
    const client = new Redis(redis.url, { commandTimeout: 100, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    const logs = capture();
    const resilient = new ResilientStore(new RedisStore(client), 'deny', new MemoryStore(10), createLogger('info', logs.stream));
    expect((await resilient.count('bf:s', 60)).count).toBe(1);
    process.kill(redis.pid, 'SIGSTOP');
    try {
      await expect(resilient.count('bf:s', 60)).rejects.toThrow();
      // Within the probe interval it rejects at once, without waiting for a timeout.
      const t0 = performance.now();
      await expect(resilient.count('bf:s', 60)).rejects.toMatchObject({ code: 'store_unavailable' });
      expect(performance.now() - t0).toBeLessThan(50);
      const [state] = await resilient.evaluate([{ key: 'rl:x', limit: testLimit(), hits: 1 }]);
      expect(state?.allowed).toBe(false);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await new Promise((r) => setTimeout(r, 600));
    // The call that timed out was on the wire and may have landed once Redis resumed: a timeout
    // says nothing about whether a command ran. The one refused at once never left.
    expect((await resilient.count('bf:s', 60)).count).toBeGreaterThanOrEqual(2);
    expect((await redis.client.get('bf:s')) ?? '').toMatch(/^[23]$/);
    expect(resilient.degraded).toBe(false);
    await resilient.close();
  });
});
