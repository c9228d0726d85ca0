// The rate-limit service against real Redis: the algorithms on Redis time, accuracy with two
// instances and with a Redis Cluster, and every failure mode with Redis stopped mid-stream.
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearOfWindowEnd, testLimit } from '../helpers/limits.js';
import type { Limit } from '../../src/ratelimit/limits.js';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { send } from '../helpers/client.js';
import { rlsClient, type RlsClient } from '../helpers/grpc.js';
import { startRedis, startRedisCluster, startRedisOn, type TestRedis } from '../helpers/redis.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const limit = (over: Partial<Limit> = {}): Limit => testLimit({ windowSeconds: 1, reportedUnit: 'SECOND', ...over });

const LIMITS = `domain: acc
descriptors:
  - key: window
    rate_limit: {unit: minute, requests_per_unit: 50, quota: true}
  - key: bucket
    rate_limit: {unit: hour, requests_per_unit: 50}
  - key: closed
    rate_limit: {unit: minute, requests_per_unit: 0, name: closed}
  - key: closed_quota
    rate_limit: {unit: minute, requests_per_unit: 0, quota: true}
`;

function serviceConfig(tmp: ReturnType<typeof tempDir>, name: string, redisUrl: string, extra: Record<string, unknown> = {}): string {
  tmp.write('limits.yaml', LIMITS);
  return tmp.write(
    `${name}.yaml`,
    configYaml({
      server: { address: '127.0.0.1:0' },
      redis: { url: redisUrl, key_prefix: `${name}:`, command_timeout_ms: 300, connect_timeout_ms: 300 },
      ...extra,
      ratelimit: { files: ['limits.yaml'], store: 'redis', ...(extra.ratelimit as object) },
    }),
  );
}

async function admitted(clients: RlsClient[], key: string, total: number): Promise<number> {
  const calls = Array.from({ length: total }, (_, i) => clients[i % clients.length]!.shouldRateLimit('acc', [[[key, 'same']]]));
  return (await Promise.all(calls)).filter((r) => r.overall_code === 'OK').length;
}

describe('Redis store', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  it('runs the token bucket on Redis time: burst, refusal without consumption, refill', async () => {
    const s = new RedisStore(redis.client);
    // A token every 3 s (10 per 30 s, burst 3): the calls up to the refusal span a refill only if
    // the machine stalls for seconds.
    const slow = limit({ windowSeconds: 30 });
    const b = { key: 'tb:1', limit: slow, hits: 1 };
    const r = [];
    for (let i = 0; i < 4; i++) r.push((await s.evaluate([b]))[0]!);
    expect(r.map((x) => x.allowed)).toEqual([true, true, true, false]);
    expect(r[3]!.retryAfterMs).toBeGreaterThan(0);
    expect(r[3]!.retryAfterMs).toBeLessThanOrEqual(3000);
    const other = { key: 'tb:2', limit: slow, hits: 1 };
    expect((await s.evaluate([other, b])).map((x) => x.allowed)).toEqual([true, false]);
    expect((await s.evaluate([{ ...other, hits: 0 }]))[0]!.remaining).toBe(3); // the refused request consumed nothing
    const refill = r[3]!.retryAfterMs + 50;
    await new Promise((res) => setTimeout(res, refill));
    expect((await s.evaluate([b]))[0]!.allowed).toBe(true);
  });

  it('counts fixed windows exactly', async () => {
    const s = new RedisStore(redis.client);
    const b = { key: 'fw:1', limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 3, windowSeconds: 3600 }), hits: 1 };
    const res = [];
    for (let i = 0; i < 5; i++) res.push((await s.evaluate([b]))[0]!.allowed);
    expect(res).toEqual([true, true, true, false, false]);
    // The counter names its window (count:start), which ends at its expiry.
    const [count, start] = (await redis.client.get('fw:1'))!.split(':').map(Number);
    expect(count).toBe(3);
    expect(start! % 3_600_000).toBe(0);
    // Its expiry is the window's end. SET's PX counts from the script's start on Redis 7.2 and
    // later, and from the moment SET runs before it - up to a ms after TIME's reading.
    const expiry = await redis.client.pexpiretime('fw:1');
    expect(expiry).toBeGreaterThanOrEqual(start! + 3_600_000);
    expect(expiry).toBeLessThanOrEqual(start! + 3_600_001);
  });

  it('reads the counters and buckets that the previous version wrote', async () => {
    const s = new RedisStore(redis.client);
    const fw = { key: 'fw:old', limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 3, windowSeconds: 3600 }), hits: 1 };
    await redis.client.set(fw.key, '2', 'PX', 60_000); // a bare count (INCRBY), its window ending at its expiry
    expect((await s.evaluate([fw])).map((x) => [x.allowed, x.remaining])).toEqual([[true, 0]]);
    expect((await s.evaluate([fw]))[0]!.allowed).toBe(false);
    const tb = { key: 'tb:old', limit: limit({ requestsPerUnit: 1, burst: 1, windowSeconds: 3600 }), hits: 1 };
    await redis.client.set(tb.key, (Number((await redis.client.time())[0]) * 1000 + 600_000).toFixed(3), 'PX', 700_000); // a TAT rounded to 3 decimals
    expect((await s.evaluate([tb]))[0]).toMatchObject({ allowed: false, remaining: 0 });
  });

  it.each(['token_bucket', 'fixed_window'] as const)('%s with requests_per_unit 0 admits nothing until the window ends, stores nothing, spends nothing elsewhere', async (algorithm) => {
    const s = new RedisStore(redis.client);
    const zero = { key: `zero:${algorithm}`, limit: limit({ algorithm, requestsPerUnit: 0, burst: 1, windowSeconds: 60 }), hits: 1 };
    const other = { key: `zero-other:${algorithm}`, limit: limit(), hits: 1 };
    const [z, o] = await s.evaluate([zero, other]);
    expect(z).toMatchObject({ allowed: false, remaining: 0 });
    expect(z!.resetMs).toBeGreaterThan(0);
    expect(z!.resetMs).toBeLessThanOrEqual(60_000);
    expect(z!.retryAfterMs).toBe(z!.resetMs);
    expect(o!.allowed).toBe(true);
    expect((await s.evaluate([{ ...other, hits: 0 }]))[0]!.remaining).toBe(3); // the refused request consumed nothing
    expect((await s.evaluate([{ ...zero, hits: 0 }]))[0]).toMatchObject({ allowed: true, remaining: 0, retryAfterMs: 0 });
    expect(await redis.client.exists(zero.key, other.key)).toBe(0);
  });
});

describe('accuracy with two instances on one Redis', () => {
  const tmp = tempDir();
  let redis: TestRedis;
  let a: Awaited<ReturnType<typeof startInProcess>>;
  let b: Awaited<ReturnType<typeof startInProcess>>;
  let clients: RlsClient[];

  beforeAll(async () => {
    redis = await startRedis();
    // A generous command timeout: a stalled event loop (two instances and their clients share
    // it) must not send calls to the failure mode's local buckets, which would admit more.
    const file = serviceConfig(tmp, 'acc', redis.url, { redis: { url: redis.url, key_prefix: 'acc:', command_timeout_ms: 2000 } });
    a = await startInProcess(file);
    b = await startInProcess(file);
    clients = [rlsClient(a.address), rlsClient(b.address), rlsClient(a.address), rlsClient(b.address)];
  });
  afterAll(async () => {
    clients?.forEach((c) => c.close());
    await a?.shutdown();
    await b?.shutdown();
    await redis?.stop();
  });

  it('admits exactly the fixed-window limit under 300 concurrent calls', async () => {
    await clearOfWindowEnd(60);
    expect(await admitted(clients, 'window', 300)).toBe(50);
  });

  it('never admits more than the token bucket holds', async () => {
    const n = await admitted(clients, 'bucket', 300);
    expect(n).toBeLessThanOrEqual(51); // 50 tokens, plus at most one refilled (50/hour) during the test
    expect(n).toBeGreaterThanOrEqual(50);
  });

  it('fills every descriptor status and the rate-limit headers', async () => {
    const r = await clients[0]!.shouldRateLimit('acc', [[['window', 'fresh']], [['nope', 'x']]]);
    expect(r.overall_code).toBe('OK');
    expect(r.statuses?.[0]).toMatchObject({ code: 'OK', current_limit: { requests_per_unit: 50, unit: 'MINUTE' }, limit_remaining: 49 });
    expect(Number(r.statuses?.[0]?.duration_until_reset?.seconds)).toBeLessThanOrEqual(60);
    expect(r.statuses?.[1]).toEqual(expect.objectContaining({ code: 'OK' }));
    expect(r.response_headers_to_add?.map((h) => h.key)).toEqual(['ratelimit-policy', 'ratelimit']);
    // Its own bucket, spent in this test and this minute: the window is a minute on the Unix epoch,
    // and 'same' (spent by the first test) started afresh when a minute ended between the two.
    await clearOfWindowEnd(60);
    for (let i = 0; i < 50; i++) await clients[i % 2]!.shouldRateLimit('acc', [[['window', 'spent']]]);
    const over = await clients[1]!.shouldRateLimit('acc', [[['window', 'spent']]]);
    expect(over.overall_code).toBe('OVER_LIMIT');
    expect(over.response_headers_to_add?.find((h) => h.key === 'retry-after')).toBeDefined();
    expect(a.logs.lines().concat(b.logs.lines()).some((l) => l.event === 'ratelimit' && l.domain === 'acc')).toBe(true);
  });

  it.each(['closed', 'closed_quota'])('answers requests_per_unit 0 (%s) as over limit with finite headers', async (key) => {
    const r = await clients[0]!.shouldRateLimit('acc', [[[key, 'x']]]);
    expect(r.overall_code).toBe('OVER_LIMIT');
    expect(r.statuses?.[0]).toMatchObject({ code: 'OVER_LIMIT', current_limit: { requests_per_unit: 0, unit: 'MINUTE' }, limit_remaining: 0 });
    // Until the end of the current minute, as envoyproxy/ratelimit answers.
    const d = r.statuses?.[0]?.duration_until_reset;
    const resetMs = Number(d?.seconds) * 1000 + (d?.nanos ?? 0) / 1e6;
    expect(resetMs).toBeGreaterThan(0);
    expect(resetMs).toBeLessThanOrEqual(60_000);
    const headers: Record<string, string | undefined> = Object.fromEntries((r.response_headers_to_add ?? []).map((h) => [h.key ?? '', h.value]));
    expect(Object.keys(headers)).toEqual(['ratelimit-policy', 'ratelimit', 'retry-after']);
    const t = /^"(?:closed|default)";r=0;t=(\d+)$/.exec(headers['ratelimit'] ?? '')?.[1];
    expect(Number(t)).toBe(Math.ceil(resetMs / 1000));
    expect(headers['retry-after']).toBe(t);
  });
});

describe('Redis Cluster', () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    client = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })), { enableAutoPipelining: false });
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it('passes the same accuracy test', async () => {
    const s = new RedisStore(client);
    expect(s.kind).toBe('redis-cluster');
    const b = { key: 'rl:cluster|one', limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 40, windowSeconds: 3600 }), hits: 1 };
    const results = await Promise.all(Array.from({ length: 200 }, () => s.evaluate([b])));
    expect(results.filter((r) => r[0]!.allowed).length).toBe(40);
  });

  it('groups a request\'s buckets by slot and consumes nothing when one slot refuses', async () => {
    const s = new RedisStore(client);
    const keys = ['rl:a', 'rl:b', 'rl:c', 'rl:d', 'rl:e'];
    const tight = { key: 'rl:tight', limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 1, windowSeconds: 3600 }), hits: 1 };
    await s.evaluate([tight]);
    const wide = keys.map((key) => ({ key, limit: limit({ algorithm: 'fixed_window', requestsPerUnit: 5, windowSeconds: 3600 }), hits: 1 }));
    const r = await s.evaluate([...wide, tight]);
    expect(r.at(-1)!.allowed).toBe(false);
    const after = await s.evaluate(wide.map((w) => ({ ...w, hits: 0 })));
    expect(after.map((x) => x.remaining)).toEqual([5, 5, 5, 5, 5]);
  });
});

describe('Redis failure modes', () => {
  const tmp = tempDir();

  it.each([
    ['deny', 'OVER_LIMIT'],
    ['allow', 'OK'],
    ['local', 'local'],
  ] as const)('failure_mode %s: Redis stopped mid-stream, the service answers and recovers', async (mode, expected) => {
    const redis = await startRedis();
    const svc = await startInProcess(serviceConfig(tmp, `fm-${mode}`, redis.url, { ratelimit: { failure_mode: mode } }));
    const c = rlsClient(svc.address);
    const ready = async (): Promise<{ ready: boolean; components: Record<string, string> }> =>
      JSON.parse((await send(`http://${svc.adminAddress}/readyz`)).body) as { ready: boolean; components: Record<string, string> };
    try {
      expect((await c.shouldRateLimit('acc', [[['window', 'x']]])).overall_code).toBe('OK');
      await redis.stop();
      if (expected === 'local') {
        // In-process buckets take over: the limit still holds, counted locally (in one minute
        // window: the quota's windows are aligned on the epoch).
        await clearOfWindowEnd(60, 10_000);
        const codes = [];
        for (let i = 0; i < 52; i++) codes.push((await c.shouldRateLimit('acc', [[['window', 'local']]])).overall_code);
        expect(codes.filter((x) => x === 'OK').length).toBe(50);
      } else {
        expect((await c.shouldRateLimit('acc', [[['window', 'x']]])).overall_code).toBe(expected);
      }
      expect((await ready()).components.ratelimit_store).toBe(`redis degraded (failure_mode ${mode})`);
      expect((await send(`http://${svc.adminAddress}/metrics`)).body).toContain(`envoy_authz_ratelimit_store_degraded{store="redis",mode="${mode}"} 1`);
      const back = startRedisOn(redis.port);
      try {
        const until = Date.now() + 8000;
        let code = '';
        while (Date.now() < until) {
          code = (await c.shouldRateLimit('acc', [[['window', 'after']]])).overall_code ?? '';
          if ((await ready()).components.ratelimit_store === 'redis') break;
          await new Promise((r) => setTimeout(r, 100));
        }
        expect((await ready()).components.ratelimit_store).toBe('redis');
        expect(code).toBe('OK');
      } finally {
        await back.stop();
      }
    } finally {
      c.close();
      await svc.shutdown();
    }
  });
});
