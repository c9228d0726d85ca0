// A reply lost with its connection: Redis ran the command, the client never heard. ioredis sends
// such commands again once it has reconnected (autoResendUnfulfilledCommands), which for a
// rate-limit run or a failure counter means counting the same calls twice. The rate-limit
// connection fails them instead (ratelimit.failure_mode answers), and Redis counted them once.
import { createServer, connect, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { parseConfig } from '../../src/config/loader.js';
import { connectRateLimitRedis } from '../../src/lib/redis.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { testLimit } from '../helpers/limits.js';
import { capture } from '../helpers/log.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';

interface Proxy {
  readonly port: number;
  /** Connections the proxy has accepted. */
  connections(): number;
  /** Close the connection instead of passing on the next reply Redis sends. */
  dropNextReply(): void;
  close(): void;
}

/** A TCP proxy to Redis on loopback. */
function replyDroppingProxy(redisPort: number): Promise<Proxy> {
  let drop = false;
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(redisPort, '127.0.0.1');
    const both = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d) => {
      if (!drop) return void client.write(d);
      drop = false;
      both();
    });
    for (const s of [client, upstream]) s.on('error', both).on('close', both);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as { port: number }).port,
        connections: () => accepted,
        dropNextReply: () => void (drop = true),
        close: () => void server.close(),
      }),
    ),
  );
}

async function ready(conn: Redis): Promise<void> {
  for (let i = 0; i < 100 && conn.status !== 'ready'; i++) await sleep(20);
  expect(conn.status).toBe('ready');
}

describe('a rate-limit reply lost with its connection', () => {
  let redis: TestRedis;
  let proxy: Proxy;
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

  const bucket = { key: 'lost:run', limit: testLimit({ algorithm: 'fixed_window', requestsPerUnit: 100, burst: 100 }), hits: 1 };

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
