// The Redis API key store against a real redis-server: an entry Redis has to be asked for comes
// later (a promise); once cached - found or not - it comes back at once, so a Check with a known
// key makes no promise for it; Redis being away is an UnavailableError, never "unknown key". An
// entry in use is fetched again before its time runs out, in the background: its requests never
// wait for Redis, and no entry is served older than its time.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { RedisApiKeyStore } from '../../src/authn/apikey-store.js';
import { commandsSinceReset, startRedis, type TestRedis } from '../helpers/redis.js';

describe('RedisApiKeyStore', () => {
  let redis: TestRedis;
  const k = generateApiKey('eak');

  beforeAll(async () => {
    redis = await startRedis();
    await redis.client.hset('t:apikeys', k.id, JSON.stringify({ id: k.id, digest: digestApiKey(k.key), owner: 'svc-batch', expires_at: new Date(Date.now() + 86400_000).toISOString() }));
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('asks Redis once per id, then answers from its cache at once (found or not)', async () => {
    const store = new RedisApiKeyStore(redis.client, 't:apikeys');
    const first = store.get(k.id);
    expect(first).toBeInstanceOf(Promise);
    expect(await first).toMatchObject({ id: k.id, owner: 'svc-batch' });
    const again = store.get(k.id);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toMatchObject({ id: k.id, owner: 'svc-batch' });

    const missing = store.get('AAAAAAAAAAAA');
    expect(missing).toBeInstanceOf(Promise);
    expect(await missing).toBeUndefined();
    expect(store.get('AAAAAAAAAAAA')).toBeUndefined();
  });

  /** HGET and HMGET commands since the last RESETSTAT: the store's lookups of Redis. */
  const hgets = async (): Promise<number> => {
    const c = await commandsSinceReset(redis.client);
    return (c.hget ?? 0) + (c.hmget ?? 0);
  };
  const entry = (id: string, owner: string): string => JSON.stringify({ id, digest: digestApiKey(k.key), owner, expires_at: new Date(Date.now() + 86400_000).toISOString() });

  // The entries' times run on a test clock (`now`, 1 s entries: fetched again from 750 ms, a batch
  // waits 25 ms); only Redis and the batch's timer take real time.
  const clock = (): { now: number; read: () => number } => {
    const c = { now: 1_000_000, read: () => c.now };
    return c;
  };

  it('keeps a key in use answered at once: in the last quarter of its time the entry is fetched again in the background, and the change is seen', async () => {
    const id = 'REFRESHAAAAA';
    await redis.client.hset('t:apikeys', id, entry(id, 'before'));
    const c = clock();
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 1000, c.read);
    expect(await store.get(id)).toMatchObject({ owner: 'before' });
    await redis.client.hset('t:apikeys', id, entry(id, 'after'));
    await redis.client.config('RESETSTAT');
    // Asked for every 50 ms (40 ms real, for the fetch) over 3 times its time: never a promise.
    const owners: string[] = [];
    for (let i = 0; i < 60; i++) {
      c.now += 50;
      const r = store.get(id);
      expect(r).not.toBeInstanceOf(Promise);
      owners.push((r as { owner: string }).owner);
      await sleep(40);
    }
    expect(owners[0]).toBe('before');
    expect(owners.at(-1)).toBe('after');
    // Fetched again when 750 ms old (the first ask in its last quarter), then every 750-800 ms: 3 or 4 in 3 s.
    expect(await hgets()).toBeGreaterThanOrEqual(3);
    expect(await hgets()).toBeLessThanOrEqual(4);
  });

  it('serves no entry older than its time: a key not asked for in its last quarter is asked of Redis again, a removed one is refused', async () => {
    const id = 'STALEAAAAAAA';
    await redis.client.hset('t:apikeys', id, entry(id, 'before'));
    const c = clock();
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 1000, c.read);
    expect(await store.get(id)).toMatchObject({ owner: 'before' });
    await redis.client.hset('t:apikeys', id, entry(id, 'after'));
    expect(store.get(id)).toMatchObject({ owner: 'before' });
    c.now += 1001; // past its time (served up to 1,000 ms old, not after)
    const late = store.get(id);
    expect(late).toBeInstanceOf(Promise);
    expect(await late).toMatchObject({ owner: 'after' });
    await redis.client.hdel('t:apikeys', id);
    c.now += 800; // in its last quarter: served, and fetched again
    expect(store.get(id)).toMatchObject({ owner: 'after' });
    // Served until the background fetch lands (the test clock stands still meanwhile).
    await expect.poll(() => store.get(id), { timeout: 3000, interval: 20 }).toBeUndefined();
  });

  it('keeps the compiled entry when a refresh reads the same JSON', async () => {
    const c = clock();
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 1000, c.read);
    const first = await store.get(k.id);
    await redis.client.config('RESETSTAT');
    c.now += 850;
    expect(store.get(k.id)).toBe(first);
    await expect.poll(hgets, { timeout: 3000, interval: 20 }).toBe(1);
    expect(store.get(k.id)).toBe(first);
  });

  it('gathers the refreshes of a short while into one HMGET, each entry served and refreshed', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `BATCH${String(i).padStart(7, 'A')}`);
    for (const id of ids) await redis.client.hset('t:apikeys', id, entry(id, 'before'));
    const c = clock();
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 1000, c.read);
    await Promise.all(ids.map((id) => Promise.resolve(store.get(id))));
    for (const id of ids) await redis.client.hset('t:apikeys', id, entry(id, 'after'));
    c.now += 800;
    await redis.client.config('RESETSTAT');
    // All 40 asked for in their last quarter within 25 ms: served at once, one HMGET for all.
    expect(ids.map((id) => (store.get(id) as { owner: string }).owner)).toEqual(ids.map(() => 'before'));
    await expect.poll(async () => (await commandsSinceReset(redis.client)).hmget, { timeout: 3000, interval: 20 }).toBe(1);
    expect((await commandsSinceReset(redis.client)).hget).toBeUndefined();
    await expect.poll(() => ids.map((id) => (store.get(id) as { owner: string }).owner), { timeout: 3000, interval: 20 }).toEqual(ids.map(() => 'after'));
  });

  it('fetches an entry about to run out at once, not after the batch\'s wait', async () => {
    const c = clock();
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 1000, c.read);
    expect(await store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    await redis.client.config('RESETSTAT');
    c.now += 990; // 10 ms left, under the 25 ms a batch waits: one HGET now
    expect(store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    // The HGET was written before this INFO on the same connection.
    const stats = await commandsSinceReset(redis.client);
    expect(stats.hget).toBe(1);
    expect(stats.hmget).toBeUndefined();
    await sleep(20);
    // Fetched again at 990: 800 ms later it has 190 ms left, so it waits for the batch.
    c.now += 800;
    expect(store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    expect((await commandsSinceReset(redis.client)).hmget).toBeUndefined();
    await expect.poll(async () => (await commandsSinceReset(redis.client)).hmget, { timeout: 3000, interval: 20 }).toBe(1);
  });

  it('sends a waiting batch at once when an entry in it runs out first: the miss does not wait for the batch', async () => {
    const c = clock();
    // 40 s entries: a batch waits 1 s (5 s entries: 125 ms).
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 40_000, c.read);
    expect(await store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    c.now += 30_001; // queued for the batch
    expect(store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    c.now += 10_000; // run out (evicted alike) before the batch left
    const t0 = performance.now();
    const miss = store.get(k.id);
    expect(miss).toBeInstanceOf(Promise);
    expect(await miss).toMatchObject({ owner: 'svc-batch' });
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('judges an entry\'s age on the clock of the lookup, also late in a long turn of the event loop', async () => {
    const store = new RedisApiKeyStore(redis.client, 't:apikeys', 100);
    expect(await store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    expect(store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    const until = performance.now() + 200;
    while (performance.now() < until) {
      // one busy turn (many requests)
    }
    const late = store.get(k.id);
    expect(late).toBeInstanceOf(Promise);
    await late;
  });

  it('asks Redis once for concurrent misses of one id', async () => {
    const store = new RedisApiKeyStore(redis.client, 't:apikeys');
    await redis.client.config('RESETSTAT');
    const all = await Promise.all(Array.from({ length: 10 }, () => Promise.resolve(store.get(k.id))));
    expect(all.every((r) => r?.owner === 'svc-batch')).toBe(true);
    expect(await hgets()).toBe(1);
  });

  it('keeps serving an entry whose refresh failed until its time runs out, then fails as unavailable', async () => {
    const down = await startRedis();
    await down.client.hset('t:apikeys', k.id, entry(k.id, 'svc-batch'));
    const c = clock();
    const store = new RedisApiKeyStore(down.client, 't:apikeys', 1000, c.read);
    expect(await store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
    process.kill(down.pid, 'SIGSTOP');
    try {
      c.now += 850;
      // Its refresh waits on the stalled Redis; the entry is served meanwhile.
      expect(store.get(k.id)).toMatchObject({ owner: 'svc-batch' });
      await sleep(50);
      down.client.disconnect();
      await sleep(20);
      c.now += 200;
      const r = store.get(k.id);
      expect(r).toBeInstanceOf(Promise);
      await expect(r).rejects.toMatchObject({ code: 'store_unavailable' });
    } finally {
      process.kill(down.pid, 'SIGCONT');
      await down.stop();
    }
  });

  it('fails as unavailable, by rejecting, when Redis cannot answer', async () => {
    const down = await startRedis();
    const store = new RedisApiKeyStore(down.client, 't:apikeys');
    await down.stop();
    const r = store.get(k.id);
    expect(r).toBeInstanceOf(Promise);
    await expect(r).rejects.toMatchObject({ code: 'store_unavailable' });
  });
});
