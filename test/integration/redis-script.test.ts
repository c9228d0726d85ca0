// The rate-limit script on a real Redis (bucket-script.ts, redis-batch.ts, redis-script.ts): the
// calls of one turn in one script run (one EVALSHA, TIME and MGET, one SET per key changed),
// loaded again when Redis forgot it, and calls of a later turn written without waiting for the
// replies of earlier ones (ioredis' auto-pipelining held them back: one pipeline in flight at a
// time).
import { setImmediate as nextImmediate, setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/ratelimit/redis-store.js';
import { testLimit } from '../helpers/limits.js';
import { commandsSinceReset, startRedis, type TestRedis } from '../helpers/redis.js';

// Fixed windows of a day: the calls of a test share one window unless they straddle midnight UTC
// (a 10 s window could roll over between them on a slow machine).
const DAY = 86_400;
const bucket = (key: string) => ({ key, limit: testLimit({ algorithm: 'fixed_window', requestsPerUnit: 100, burst: 100, windowSeconds: DAY }), hits: 1 });

async function readsSinceReset(admin: Redis): Promise<number> {
  return Number(/^total_reads_processed:(\d+)/m.exec(await admin.info('stats'))?.[1]);
}

describe('the rate-limit script on Redis', () => {
  let redis: TestRedis;
  let client: Redis;
  let store: RedisStore;
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { enableAutoPipelining: true });
    store = new RedisStore(client);
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  it('loads the script again after Redis forgot it (SCRIPT FLUSH), and keeps counting', async () => {
    expect((await store.evaluate([bucket('s:flush')]))[0]).toMatchObject({ allowed: true, remaining: 99 });
    await redis.client.script('FLUSH');
    expect((await store.evaluate([bucket('s:flush')]))[0]).toMatchObject({ allowed: true, remaining: 98 });
    expect((await store.evaluate([bucket('s:flush')]))[0]).toMatchObject({ allowed: true, remaining: 97 });
    // Every call ran the script exactly once, whether by EVALSHA or EVAL.
    expect(await redis.client.get('s:flush')).toMatch(/^3:/);
  });

  it('writes a later tick\'s call while an earlier one still waits for Redis: both reach it in one read', async () => {
    await store.evaluate([bucket('s:warm')]);
    await redis.client.config('RESETSTAT');
    process.kill(redis.pid, 'SIGSTOP');
    let first: Promise<unknown>;
    let second: Promise<unknown>;
    try {
      first = store.evaluate([bucket('s:a')]);
      await nextImmediate();
      second = store.evaluate([bucket('s:b')]);
      // Both written to the socket while Redis is stopped (nothing waits for the first reply).
      await sleep(100);
    } finally {
      process.kill(redis.pid, 'SIGCONT');
    }
    await Promise.all([first, second]);
    // One read for both calls, one for this INFO (auto-pipelining: the second call left after the first reply, a read of its own).
    expect(await readsSinceReset(redis.client)).toBe(2);
  });

  it('sends the calls of handlers started from one check phase (as the gRPC transport starts them) in one write: one Redis read', async () => {
    await store.evaluate([bucket('s:warm')]);
    await redis.client.config('RESETSTAT');
    const calls = await new Promise<Promise<unknown>[]>((resolve) => {
      const out: Promise<unknown>[] = [];
      for (let i = 0; i < 20; i++) setImmediate(() => out.push(store.evaluate([bucket(`s:phase:${i}`)])));
      setImmediate(() => resolve(out));
    });
    await Promise.all(calls);
    // One read for the 20 calls, one for this INFO.
    expect(await readsSinceReset(redis.client)).toBe(2);
  });

  it('sends keys of any bytes as they are (multi-byte UTF-8, CR LF, RESP markers), under a multi-byte prefix, with each limit\'s own parameters', async () => {
    const prefixed = new RedisStore(client, { keyPrefix: 'prä:' });
    const key = 's:ü𝄞\r\n*3\r\n$1\r\n';
    const small = { key, limit: testLimit({ algorithm: 'fixed_window', requestsPerUnit: 5, burst: 5, windowSeconds: DAY }), hits: 2 };
    const shadow = { key: `${key}:shadow`, limit: testLimit({ algorithm: 'token_bucket', requestsPerUnit: 3, burst: 3, shadow: true }), hits: 4 };
    const [a, b] = await prefixed.evaluate([small, shadow]);
    expect(a).toMatchObject({ allowed: true, remaining: 3 });
    // A shadow bucket over its burst does not refuse the request; the enforced one is spent.
    expect(b).toMatchObject({ allowed: false });
    expect(await redis.client.get(`prä:${key}`)).toMatch(/^2:/);
    expect((await prefixed.evaluate([small]))[0]).toMatchObject({ allowed: true, remaining: 1 });
    expect((await prefixed.evaluate([small]))[0]).toMatchObject({ allowed: false, remaining: 1 });
  });

  it('runs TIME, one MGET and one SET with its expiry per bucket it changes, and no write for a refused request', async () => {
    const fw = bucket('s:cmd:fw');
    const tb = { key: 's:cmd:tb', limit: testLimit({ algorithm: 'token_bucket', requestsPerUnit: 1, burst: 1, windowSeconds: 60 }), hits: 1 };
    await store.evaluate([bucket('s:cmd:warm')]);
    await redis.client.config('RESETSTAT');
    await store.evaluate([fw, tb, bucket('s:cmd:other')]);
    expect(await commandsSinceReset(redis.client)).toEqual({ evalsha: 1, time: 1, mget: 1, set: 3 });
    // Every written bucket has its expiry: the window's end, the bucket's full refill plus a second.
    expect(await redis.client.pttl('s:cmd:fw')).toBeGreaterThan(0);
    expect(await redis.client.pttl('s:cmd:fw')).toBeLessThanOrEqual(DAY * 1000 - (Date.now() % (DAY * 1000)) + 1000);
    expect(await redis.client.pttl('s:cmd:tb')).toBeGreaterThan(60_000);
    expect(await redis.client.pttl('s:cmd:tb')).toBeLessThanOrEqual(61_000);
    // The bucket is empty: this request is refused, and nothing is written.
    await redis.client.config('RESETSTAT');
    expect((await store.evaluate([fw, tb])).map((s) => s.allowed)).toEqual([true, false]);
    expect(await commandsSinceReset(redis.client)).toEqual({ evalsha: 1, time: 1, mget: 1 });
  });

  it('runs the calls of one turn as one script: one EVALSHA, TIME and MGET, one SET per key changed, and nothing of a refused call', async () => {
    const route = { key: 's:turn:route', limit: testLimit({ algorithm: 'fixed_window', requestsPerUnit: 1000, burst: 1000, windowSeconds: DAY }), hits: 1 };
    const tight = { key: 's:turn:tight', limit: testLimit({ algorithm: 'token_bucket', requestsPerUnit: 1, burst: 2, windowSeconds: 60 }), hits: 1 };
    await store.evaluate([bucket('s:turn:warm')]);
    await redis.client.config('RESETSTAT');
    // 20 calls in one turn: each names the shared route, and its own user; every fifth also the tight bucket.
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.evaluate(i % 5 === 0 ? [route, bucket(`s:turn:user:${i}`), tight] : [route, bucket(`s:turn:user:${i}`)])),
    );
    // The third and fourth tight calls (i = 10, 15) are refused and spend nothing, not even from the route or their user:
    // the keys changed are the route, 18 users and the tight bucket.
    expect(await commandsSinceReset(redis.client)).toEqual({ evalsha: 1, time: 1, mget: 1, set: 20 });
    // The route's remaining as each call saw it: a refused call sees what the calls before it spent,
    // and the call after it sees the same (989 twice, 985 twice).
    expect(answers.map((a) => a[0]!.remaining)).toEqual([999, 998, 997, 996, 995, 994, 993, 992, 991, 990, 989, 989, 988, 987, 986, 985, 985, 984, 983, 982]);
    expect([0, 5, 10, 15].map((i) => answers[i]![2]!.allowed)).toEqual([true, true, false, false]);
    expect(await redis.client.get('s:turn:route')).toMatch(/^18:/);
    expect(await redis.client.get('s:turn:user:10')).toBeNull();
    // Each key's expiry is its last write's.
    expect(await redis.client.pttl('s:turn:tight')).toBeGreaterThan(120_000);
    expect(await redis.client.pttl('s:turn:tight')).toBeLessThanOrEqual(121_000);
  });

  it('splits a turn of more than 64 calls into runs of at most 64, sent in one write', async () => {
    await store.evaluate([bucket('s:split:warm')]);
    await redis.client.config('RESETSTAT');
    await Promise.all(Array.from({ length: 150 }, (_, i) => store.evaluate([bucket(`s:split:${i}`)])));
    expect((await commandsSinceReset(redis.client)).evalsha).toBe(3);
    // One read for the three runs, one for the INFO above, one for this one.
    expect(await readsSinceReset(redis.client)).toBe(3);
  });

  it('fails every call of a run when Redis refuses the script (maxmemory reached), and answers again after', async () => {
    await redis.client.config('SET', 'maxmemory', '1');
    let results: PromiseSettledResult<unknown>[];
    try {
      results = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => store.evaluate([bucket(`s:oom:${i}`)])));
    } finally {
      await redis.client.config('SET', 'maxmemory', '0');
    }
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 5 }, () => 'rejected'));
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/OOM/);
    expect(await redis.client.exists('s:oom:0')).toBe(0);
    expect((await Promise.all(Array.from({ length: 5 }, (_, i) => store.evaluate([bucket(`s:oom:${i}`)])))).map((a) => a[0]!.remaining)).toEqual([99, 99, 99, 99, 99]);
  });

  it('closes a run at 1 Mi characters of keys: long descriptor values do not make one giant command', async () => {
    await store.evaluate([bucket('s:long:warm')]);
    await redis.client.config('RESETSTAT');
    const long = (i: number): string => `s:long:${i}:${'v'.repeat(400_000)}`;
    const answers = await Promise.all([0, 1, 2, 3].map((i) => store.evaluate([bucket(long(i))])));
    expect(answers.map((a) => a[0]!.remaining)).toEqual([99, 99, 99, 99]);
    // 400,000 characters a call: two calls a run.
    expect((await commandsSinceReset(redis.client)).evalsha).toBe(2);
  });

  it('rejects the calls of a run whose command cannot be built, and sends the other runs of the turn', async () => {
    // A limit whose parameters throw when read stands for any failure while building a command
    // (V8's longest string was one): thrown in the flush, it would end the process.
    const poisoned = { ...bucket('s:poison:limit'), limit: Object.defineProperty({ ...testLimit() }, 'requestsPerUnit', { get: () => { throw new RangeError('Invalid string length'); } }) };
    const calls = Array.from({ length: 64 }, (_, i) => store.evaluate([bucket(`s:poison:${i}`)]));
    const bad = store.evaluate([poisoned]);
    const after = Promise.allSettled(Array.from({ length: 3 }, (_, i) => store.evaluate([bucket(`s:poison:after:${i}`)])));
    await expect(bad).rejects.toThrow('Invalid string length');
    expect((await Promise.all(calls)).map((a) => a[0]!.remaining)).toEqual(Array.from({ length: 64 }, () => 99));
    // The poisoned call's run: the three calls after it in the turn shared it.
    expect((await after).map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
  });

  it('turns a failure while a call joins its run into a rejection, never a throw (the standalone path has no async layer)', async () => {
    const broken = new RedisStore(client, {
      now: () => {
        throw new Error('clock failed');
      },
    });
    let pending: Promise<unknown> | undefined;
    expect(() => (pending = broken.evaluate([bucket('s:clock')]))).not.toThrow();
    await expect(pending).rejects.toThrow('clock failed');
    await expect(broken.evaluate([])).resolves.toEqual([]);
    // What was thrown is the rejection, unchanged, even when it is not an Error.
    const odd = Object.create(null) as object;
    const strange = new RedisStore(client, {
      now: () => {
        // eslint-disable-next-line @typescript-eslint/only-throw-error -- a value that is not an Error, on purpose
        throw odd;
      },
    });
    let rejected: Promise<unknown> | undefined;
    expect(() => (rejected = strange.evaluate([bucket('s:clock')]))).not.toThrow();
    await expect(rejected).rejects.toBe(odd);
    expect(() => (rejected = store.evaluate(undefined as never))).not.toThrow();
    await expect(rejected).rejects.toThrow(TypeError);
  });

  it('reads a token bucket whose value is not a number (not ours) as missing, and answers the other calls of its run', async () => {
    await redis.client.set('s:garbage', 'not-a-number');
    const tb = { key: 's:garbage', limit: testLimit({ algorithm: 'token_bucket', requestsPerUnit: 10, burst: 3 }), hits: 1 };
    const [a, b, c] = await Promise.all([store.evaluate([bucket('s:garbage:a')]), store.evaluate([tb]), store.evaluate([bucket('s:garbage:c')])]);
    expect([a[0]!.remaining, b[0]!.remaining, c[0]!.remaining]).toEqual([99, 2, 99]);
  });

  it('loads the script again for a run of several calls, each answered on its own', async () => {
    await redis.client.script('FLUSH');
    const answers = await Promise.all(Array.from({ length: 4 }, () => store.evaluate([bucket('s:flush:run')])));
    expect(answers.map((a) => a[0]!.remaining)).toEqual([99, 98, 97, 96]);
  });

  it('answers 200 calls of one tick in order, each with its own reply', async () => {
    const answers = await Promise.all(Array.from({ length: 200 }, () => store.evaluate([bucket('s:many')])));
    expect(answers.map((a) => a[0]!.remaining)).toEqual([...Array.from({ length: 100 }, (_, i) => 99 - i), ...Array.from({ length: 100 }, () => 0)]);
    expect(answers.map((a) => a[0]!.allowed)).toEqual([...Array.from({ length: 100 }, () => true), ...Array.from({ length: 100 }, () => false)]);
  });
});
