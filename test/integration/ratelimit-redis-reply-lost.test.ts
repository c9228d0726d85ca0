// A reply lost with its connection: Redis ran the command, the client never heard. ioredis sends
// such commands again once it has reconnected (autoResendUnfulfilledCommands; a Cluster client
// tries the node again after refreshing its slots), which for a rate-limit run or a failure
// counter means counting the same calls twice. The rate-limit connection fails them instead
// (ratelimit.failure_mode answers), and Redis counted them once.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import { parseConfig } from '../../src/config/loader.js';
import { connectRateLimitRedis } from '../../src/lib/redis.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { testLimit } from '../helpers/limits.js';
import { capture } from '../helpers/log.js';
import { replyDroppingProxy, type ReplyDroppingProxy } from '../helpers/redis-proxy.js';
import { startRedis, startRedisCluster, type TestRedis } from '../helpers/redis.js';

// A fixed window of a day: the three calls of a test share one window unless they straddle
// midnight UTC. (testLimit's 10 s window rolled over between them once in CI, where the
// reconnect was slow: the third call then counted 1.)
const dayWindow = testLimit({ algorithm: 'fixed_window', requestsPerUnit: 100, burst: 100, windowSeconds: 86_400 });

async function ready(conn: Redis): Promise<void> {
  for (let i = 0; i < 100 && conn.status !== 'ready'; i++) await sleep(20);
  expect(conn.status).toBe('ready');
}

describe('a rate-limit reply lost with its connection', () => {
  let redis: TestRedis;
  let proxy: ReplyDroppingProxy;
  let conn: Redis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    proxy = await replyDroppingProxy(redis.port);
    const cfg = parseConfig('test.yaml', `redis: {url: "redis://127.0.0.1:${proxy.port}", command_timeout_ms: 1000}\n`).redis!;
    conn = connectRateLimitRedis(cfg, createLogger('info', capture().stream)) as Redis;
    store = new RedisStore(conn);
  });
  afterAll(async () => {
    await store?.close();
    proxy?.close();
    await redis?.stop();
  });

  const bucket = { key: 'lost:run', limit: dayWindow, hits: 1 };

  it('a script run is not sent again after the reconnect: the call fails, Redis counted it once', async () => {
    expect((await store.evaluate([bucket]))[0]).toMatchObject({ allowed: true, remaining: 99 });
    const before = proxy.connections();
    proxy.dropNextReply();
    await expect(store.evaluate([bucket])).rejects.toThrow();
    await ready(conn);
    expect(proxy.connections()).toBe(before + 1);
    // The lost run counted once; this call is the third.
    expect((await store.evaluate([bucket]))[0]).toMatchObject({ allowed: true, remaining: 97 });
    expect(await redis.client.get('lost:run')).toMatch(/^3:/);
  });

  it('neither is the failure counter\'s INCR', async () => {
    expect((await store.count('lost:count', 60)).count).toBe(1);
    proxy.dropNextReply();
    await expect(store.count('lost:count', 60)).rejects.toThrow();
    await ready(conn);
    expect((await store.count('lost:count', 60)).count).toBe(3);
  });
});

describe('a rate-limit reply lost with its connection, in a Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let conn: Cluster;
  let store: RedisStore;
  beforeAll(async () => {
    cluster = await startRedisCluster(3, { proxied: true });
    const seeds = cluster.proxies.map((p) => `"127.0.0.1:${p.port}"`).join(', ');
    const cfg = parseConfig('test.yaml', `redis: {url: "redis://127.0.0.1:6379", mode: cluster, nodes: [${seeds}], command_timeout_ms: 1000}\n`).redis!;
    conn = connectRateLimitRedis(cfg, createLogger('info', capture().stream)) as Cluster;
    store = new RedisStore(conn);
  }, 60_000);
  afterAll(async () => {
    await store?.close();
    await cluster?.stop();
  });

  it('a script run is not tried again on the node after the connection closed: the call fails, Redis counted it once', async () => {
    const key = 'lost:cluster';
    const b = { key, limit: dayWindow, hits: 1 };
    expect((await store.evaluate([b]))[0]).toMatchObject({ allowed: true, remaining: 99 });
    // The proxy of the node serving the key's slot (nodes announce their proxies' addresses).
    const owner = conn.slots[calculateSlot(key)]![0]!;
    const proxy = cluster.proxies.find((p) => owner === `127.0.0.1:${p.port}`)!;
    expect(proxy).toBeDefined();
    proxy.dropNextReply();
    await expect(store.evaluate([b])).rejects.toThrow();
    expect((await store.evaluate([b]))[0]).toMatchObject({ allowed: true, remaining: 97 });
  });
});
