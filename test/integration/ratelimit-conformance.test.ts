// envoyproxy/ratelimit conformance: the real binary (Makefile RATELIMIT_VERSION, built into
// .tools/bin/ratelimit by `make ratelimit-bin`) and envoy-authz load the same files
// (test/fixtures/ratelimit-conformance) and answer the same ShouldRateLimit sequences on real
// Redis (one redis-server each: our rate-limit keys do not carry redis.key_prefix). With
// fixed_window and count_refused_requests: true every answer must be identical (overall code,
// per-descriptor code, current limit, limit_remaining; duration_until_reset within 1.5 s,
// since upstream counts whole seconds), and so must the per-descriptor stats; with our default
// (count_refused_requests: false) the documented difference shows. Every invalid file is refused
// by both. Features of upstream main newer than the pinned binary are asserted as such.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { basename, join } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RateLimitRequest } from '../../src/gen/envoy/service/ratelimit/v3/RateLimitRequest.js';
import type { RateLimitResponse__Output } from '../../src/gen/envoy/service/ratelimit/v3/RateLimitResponse.js';
import { ConfigError } from '../../src/lib/errors.js';
import { loadRateLimitFiles } from '../../src/ratelimit/config.js';
import { envoyProtos } from '../../src/envoy/protos.js';
import { send } from '../helpers/client.js';
import { freePort } from '../helpers/ports.js';
import { clearOfWindowEnd } from '../helpers/limits.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { configYaml, ROOT, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = join(ROOT, '.tools', 'bin', 'ratelimit');
const FIX = join(ROOT, 'test', 'fixtures', 'ratelimit-conformance');
const files = (dir: string): string[] =>
  readdirSync(join(FIX, dir))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => join(FIX, dir, f));

// ---- the two servers ----

interface Upstream {
  address: string;
  debugPort: number;
  output(): string;
  stop(): Promise<void>;
}

function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const until = Date.now() + 10_000;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null) return reject(new Error(`envoyproxy/ratelimit exited ${child.exitCode}: ${output()}`));
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > until) reject(new Error(`envoyproxy/ratelimit did not listen: ${output()}`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

/** The real binary on `configFiles`, configured as its README says (env vars), loopback only. */
async function startUpstream(configFiles: string[], redisPort: number, env: Record<string, string> = {}): Promise<Upstream> {
  // Its default stats sink logs each counter's increments to stderr at every flush.
  const tmp = tempDir();
  const dir = join(tmp.dir, 'runtime', 'ratelimit', 'config');
  mkdirSync(dir, { recursive: true });
  for (const f of configFiles) copyFileSync(f, join(dir, basename(f)));
  const [grpc, http, debug] = [await freePort(), await freePort(), await freePort()];
  const child = spawn(BIN, [], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      PORT: String(http),
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: String(grpc),
      DEBUG_HOST: '127.0.0.1',
      DEBUG_PORT: String(debug),
      USE_STATSD: 'false',
      LOG_LEVEL: 'warn',
      RUNTIME_ROOT: join(tmp.dir, 'runtime'),
      RUNTIME_SUBDIRECTORY: 'ratelimit',
      RUNTIME_WATCH_ROOT: 'false',
      BACKEND_TYPE: 'redis',
      REDIS_SOCKET_TYPE: 'tcp',
      REDIS_URL: `127.0.0.1:${redisPort}`,
      NEAR_LIMIT_RATIO: '0.8',
      ...env,
    },
  });
  let out = '';
  const collect = (b: Buffer): void => {
    if (out.length < 16_000_000) out += b.toString();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitForPort(grpc, child, () => out);
  return {
    address: `127.0.0.1:${grpc}`,
    debugPort: debug,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

async function startOurs(redis: TestRedis, name: string, configFiles: string[], ratelimit: Record<string, unknown>): Promise<Awaited<ReturnType<typeof startInProcess>>> {
  const tmp = tempDir();
  const file = tmp.write(
    `${name}.yaml`,
    configYaml({
      server: { address: '127.0.0.1:0' },
      // A generous command timeout: on a stalled machine calls must not go to the failure mode's
      // local buckets, whose answers upstream would not give.
      redis: { url: redis.url, key_prefix: `conformance-${name}:`, command_timeout_ms: 2000 },
      ratelimit: { files: configFiles, store: 'redis', algorithm: 'fixed_window', headers: 'none', ...ratelimit },
    }),
  );
  return startInProcess(file);
}

// ---- calls and answers ----

type Desc = [string, string][] | { entries: [string, string][]; limit: { requests_per_unit: number; unit: string } };
interface Call {
  domain: string;
  descriptors: Desc[];
  hits?: number;
}

interface Answer {
  error?: { code: number; details: string };
  overall?: string;
  statuses?: { code: string; limit: { rpu: number; unit: string; name: string } | null; remaining: number; reset: number | null }[];
  headers?: number;
}

function caller(address: string): { call(c: Call): Promise<Answer>; close(): void } {
  const Ctor = envoyProtos().envoy.service.ratelimit.v3.RateLimitService;
  const client = new Ctor(address, credentials.createInsecure());
  const call = (c: Call): Promise<Answer> => {
    const req: RateLimitRequest = {
      domain: c.domain,
      descriptors: c.descriptors.map((d) =>
        Array.isArray(d) ? { entries: d.map(([key, value]) => ({ key, value })) } : { entries: d.entries.map(([key, value]) => ({ key, value })), limit: { requests_per_unit: d.limit.requests_per_unit, unit: d.limit.unit as 'HOUR' } },
      ),
      ...(c.hits !== undefined ? { hits_addend: c.hits } : {}),
    };
    return new Promise((resolve) => {
      client.ShouldRateLimit(req, new Metadata(), { deadline: Date.now() + 5000 }, (err: ServiceError | null, res?: RateLimitResponse__Output) => {
        if (err) return resolve({ error: { code: err.code, details: err.details } });
        resolve({
          overall: res?.overall_code ?? '',
          // Retry-After on a refusal is our documented addition; upstream adds no header by default.
          headers: (res?.response_headers_to_add ?? []).filter((h) => h.key !== 'retry-after').length,
          statuses: (res?.statuses ?? []).map((s) => ({
            code: s.code ?? '',
            limit: s.current_limit ? { rpu: s.current_limit.requests_per_unit ?? 0, unit: s.current_limit.unit ?? '', name: s.current_limit.name ?? '' } : null,
            remaining: s.limit_remaining ?? 0,
            reset: s.duration_until_reset ? Number(s.duration_until_reset.seconds ?? 0) + (s.duration_until_reset.nanos ?? 0) / 1e9 : null,
          })),
        });
      });
    });
  };
  return { call, close: () => client.close() };
}

/** Equal but for duration_until_reset: upstream counts whole seconds, and ours is asked a moment later (1.5 s of slack). */
function expectSame(ours: Answer, theirs: Answer, what: string): void {
  const strip = (a: Answer): Answer => ({ ...a, ...(a.statuses ? { statuses: a.statuses.map((s) => ({ ...s, reset: s.reset === null ? null : 0 })) } : {}) });
  expect(strip(ours), what).toEqual(strip(theirs));
  ours.statuses?.forEach((s, i) => {
    const t = theirs.statuses![i]!.reset;
    if (s.reset !== null && t !== null) expect(Math.abs(s.reset - t), `${what}: duration_until_reset of status ${i}`).toBeLessThanOrEqual(1.5);
  });
}

/** Waits out the last seconds of an hour: every counting limit below is hourly or longer. */
const awayFromHourEnd = (): Promise<void> => clearOfWindowEnd(3600, 20_000);

const d = (...pairs: [string, string][]): [string, string][] => pairs;
const rep = (n: number, c: Call): Call[] => Array.from({ length: n }, () => c);

// Every matching rule, every key of valid/, multi-descriptor requests, hits_addend, replaces,
// shadow_mode, unlimited, wildcards, requests_per_unit 0, Envoy's limit override.
const SEQUENCE: Call[] = [
  ...rep(4, { domain: 'conf-match', descriptors: [d(['key1', 'value1'], ['subkey1', 'x'])] }),
  ...rep(2, { domain: 'conf-match', descriptors: [d(['key1', 'value1'], ['subkey2', 'fixed'])] }),
  ...rep(3, { domain: 'conf-match', descriptors: [d(['key1', 'other'])] }),
  { domain: 'conf-match', descriptors: [d(['key1', 'value1'])] },
  ...rep(2, { domain: 'conf-match', descriptors: [d(['key2', 'exact'])] }),
  ...rep(3, { domain: 'conf-match', descriptors: [d(['key2', 'pre_long_x'])] }),
  { domain: 'conf-match', descriptors: [d(['key2', 'pre_a'])] },
  { domain: 'conf-match', descriptors: [d(['key2', 'other'])] },
  ...rep(3, { domain: 'conf-match', descriptors: [d(['key3', 'x'], ['deep', 'y'])] }),
  { domain: 'conf-match', descriptors: [d(['key3', 'x'])] },
  { domain: 'conf-match', descriptors: [d(['key1', 'other'], ['subkey1', 'x'])] },
  { domain: 'conf-match', descriptors: [d(['key1', 'value1'], ['other', 'x'])] },
  ...rep(3, { domain: 'conf-match', descriptors: [d(['status', '200'])] }),
  ...rep(3, { domain: 'conf-match', descriptors: [d(['hex', '0x1F'])] }),
  { domain: 'conf-match', descriptors: [d(['hex', '31'])] },
  { domain: 'conf-match', descriptors: [d(['unit', 'second'])] },
  { domain: 'conf-match', descriptors: [d(['unit', 'minute'])] },
  { domain: 'conf-match', descriptors: [d(['unit', 'day'])] },
  { domain: 'conf-match', descriptors: [d(['unit', 'month'])] },
  { domain: 'conf-match', descriptors: [d(['unit', 'year'])] },
  // hits_addend
  { domain: 'conf-match', descriptors: [d(['key1', 'h'])], hits: 2 },
  { domain: 'conf-match', descriptors: [d(['key1', 'h'])] },
  { domain: 'conf-match', descriptors: [d(['key1', 'h2'])], hits: 5 },
  { domain: 'conf-match', descriptors: [d(['key1', 'h2'])], hits: 0 },
  // several descriptors: one over, the others counted (upstream's counting)
  ...rep(3, { domain: 'conf-match', descriptors: [d(['key1', 'm']), d(['key3', 'm'], ['deep', 'm']), d(['nomatch', 'x'])] }),
  ...rep(2, { domain: 'conf-match', descriptors: [d(['key3', 'm'], ['deep', 'm'])] }),
  { domain: 'conf-match', descriptors: [d(['key1', 'm2']), d(['key1', 'm2'])] },
  { domain: 'conf-match', descriptors: [d(['key1', 'm2'])] },
  { domain: 'no-such-domain', descriptors: [d(['key1', 'x'])] },
  // shadow_mode, unlimited, replaces
  ...rep(3, { domain: 'conf-modes', descriptors: [d(['shadow', 'x'])] }),
  { domain: 'conf-modes', descriptors: [d(['shadow', 'y']), d(['user', 's'])] },
  ...rep(2, { domain: 'conf-modes', descriptors: [d(['free', 'x'])] }),
  { domain: 'conf-modes', descriptors: [d(['free', 'odd'])] },
  { domain: 'conf-modes', descriptors: [d(['free_odd', 'x'])] },
  ...rep(2, { domain: 'conf-modes', descriptors: [d(['user', 'u'])] }),
  ...rep(3, { domain: 'conf-modes', descriptors: [d(['user', 'u']), d(['vip', 'u'])] }),
  ...rep(2, { domain: 'conf-modes', descriptors: [d(['user', 'u']), d(['freevip', 'u'])] }),
  { domain: 'conf-modes', descriptors: [d(['user', 'u'])] },
  // detailed_metric, value_to_metric, share_threshold (one counter for every f* value)
  ...rep(5, { domain: 'conf-modes', descriptors: [d(['detailed', 'a'])] }),
  ...rep(2, { domain: 'conf-modes', descriptors: [d(['detailed', 'b'])] }),
  ...rep(5, { domain: 'conf-modes', descriptors: [d(['vtm', 'a'])] }),
  { domain: 'conf-modes', descriptors: [d(['files', 'f1'])] },
  { domain: 'conf-modes', descriptors: [d(['files', 'f2'])] },
  { domain: 'conf-modes', descriptors: [d(['files', 'fxyz'])] },
  { domain: 'conf-modes', descriptors: [d(['files', 'f1'])] },
  { domain: 'conf-modes', descriptors: [d(['files', 'g'])] },
  // requests_per_unit 0 or absent; a known key at another level is ignored; anchors
  ...rep(2, { domain: 'conf-modes', descriptors: [d(['zero', 'x'])] }),
  { domain: 'conf-modes', descriptors: [d(['norpu', 'x'])] },
  ...rep(3, { domain: 'conf-modes', descriptors: [d(['ignored', 'x'])] }),
  ...rep(3, { domain: 'conf-modes', descriptors: [d(['alias', 'x'])] }),
  { domain: 'conf-modes', descriptors: [d(['anchor', 'x'])] },
  // the last of a repeated key wins
  ...rep(3, { domain: 'conf-dupkey', descriptors: [d(['b', 'x'])] }),
  { domain: 'conf-dupkey', descriptors: [d(['a', 'x'])] },
  // quota_mode beside nothing over
  { domain: 'conf-quota', descriptors: [d(['plain', 'x']), d(['q2', 'x'])] },
  // Envoy's per-descriptor limit override (a known domain only)
  ...rep(3, { domain: 'conf-match', descriptors: [{ entries: [['key1', 'ov']], limit: { requests_per_unit: 2, unit: 'HOUR' } }] }),
  { domain: 'no-such-domain', descriptors: [{ entries: [['key1', 'ov']], limit: { requests_per_unit: 2, unit: 'HOUR' } }] },
  // request validation
  { domain: 'conf-match', descriptors: [] },
  { domain: '', descriptors: [d(['key1', 'x'])] },
];

// ---- the suite ----

describe('envoyproxy/ratelimit conformance (real binary beside ours, real Redis)', () => {
  let redis: TestRedis;
  let redisCounting: TestRedis;
  let redisDefault: TestRedis;
  let upstream: Upstream;
  let ours: Awaited<ReturnType<typeof startOurs>>;
  let oursDefault: Awaited<ReturnType<typeof startOurs>>;

  beforeAll(async () => {
    if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run make ratelimit-bin (make test builds it)`);
    [redis, redisCounting, redisDefault] = await Promise.all([startRedis(), startRedis(), startRedis()]);
    const valid = files('valid');
    [upstream, ours, oursDefault] = await Promise.all([
      startUpstream(valid, redis.port, { STATS_FLUSH_INTERVAL: '50ms' }),
      startOurs(redisCounting, 'counting', valid, { count_refused_requests: true }),
      startOurs(redisDefault, 'default', valid, {}),
    ]);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([upstream?.stop(), ours?.shutdown(), oursDefault?.shutdown()]);
    await Promise.all([redis?.stop(), redisCounting?.stop(), redisDefault?.stop()]);
  });

  it('loads every valid file in both', () => {
    expect(upstream.output()).not.toContain('Error loading new configuration');
  });

  it('answers every call of the sequence identically with count_refused_requests: true, and counts the same stats', async () => {
    await awayFromHourEnd();
    const [a, b] = [caller(upstream.address), caller(ours.address)];
    try {
      for (const [i, c] of SEQUENCE.entries()) {
        const theirs = await a.call(c);
        const mine = await b.call(c);
        expectSame(mine, theirs, `call ${i}: ${JSON.stringify(c)}`);
      }
    } finally {
      a.close();
      b.close();
    }
    // upstream's counters (the increments its stats sink logs at every flush) against ours (/metrics),
    // read again until they agree or 5 s have passed: upstream flushes every 50 ms, when it runs.
    const counters = async (): Promise<{ theirs: Map<string, number>; mine: Map<string, number> }> => {
      const metrics = (await send(`http://${ours.adminAddress}/metrics`)).body;
      const theirs = new Map<string, number>();
      for (const m of upstream.output().matchAll(/"name":"ratelimit\.service\.rate_limit\.(.+?)\.(total_hits|over_limit|near_limit|within_limit|shadow_mode)","type":"counter","value":"([\d.]+)"/g)) {
        const k = `${m[1]} ${m[2]}`;
        if (Number(m[3]) > 0) theirs.set(k, (theirs.get(k) ?? 0) + Number(m[3]));
      }
      const mine = new Map<string, number>();
      for (const m of metrics.matchAll(/^envoy_authz_ratelimit_(total_hits|over_limit|near_limit|within_limit|shadow_mode)_total\{domain="([^"]+)",key="([^"]*)"\} (\d+)$/gm)) {
        mine.set(`${m[2]}.${m[3]} ${m[1]}`, Number(m[4]));
      }
      return { theirs, mine };
    };
    await vi.waitFor(
      async () => {
        const { theirs, mine } = await counters();
        expect(theirs.size).toBeGreaterThan(20);
        expect(Object.fromEntries(mine)).toEqual(Object.fromEntries(theirs));
      },
      { timeout: 5000, interval: 100 },
    );
  }, 40_000);

  it('differs with our default (count_refused_requests: false) exactly as documented: a refused request spends nothing', async () => {
    await awayFromHourEnd();
    const [a, b, c] = [caller(upstream.address), caller(ours.address), caller(oursDefault.address)];
    try {
      // key1=* allows 2 an hour, key3/deep 2 an hour.
      const one = { domain: 'conf-match', descriptors: [d(['key1', 'diff'])] };
      const both = { domain: 'conf-match', descriptors: [d(['key1', 'diff']), d(['key3', 'diff'], ['deep', 'diff'])] };
      const deep = { domain: 'conf-match', descriptors: [d(['key3', 'diff'], ['deep', 'diff'])] };
      for (const call of [one, one]) for (const [n, x] of [a, b, c].entries()) expect(await x.call(call), String(n)).toMatchObject({ overall: 'OK' });
      // Refused by key1: upstream (and ours counting) still count key3/deep; our default does not.
      const refused = await Promise.all([a.call(both), b.call(both), c.call(both)]);
      expect(refused.map((r) => r.overall)).toEqual(['OVER_LIMIT', 'OVER_LIMIT', 'OVER_LIMIT']);
      expect(refused.map((r) => r.statuses![1]!.remaining)).toEqual([1, 1, 1]);
      const next = [await a.call(deep), await b.call(deep), await c.call(deep)];
      expect(next.map((r) => [r.overall, r.statuses![0]!.remaining])).toEqual([
        ['OK', 0],
        ['OK', 0],
        ['OK', 1],
      ]);
      // An over-limit hits_addend: upstream counts it in its own counter too; our default does not.
      const big = { domain: 'conf-match', descriptors: [d(['key1', 'diff2'])], hits: 5 };
      const small = { domain: 'conf-match', descriptors: [d(['key1', 'diff2'])] };
      for (const x of [a, b, c]) expect((await x.call(big)).overall).toBe('OVER_LIMIT');
      expect([await a.call(small), await b.call(small), await c.call(small)].map((r) => r.overall)).toEqual(['OVER_LIMIT', 'OVER_LIMIT', 'OK']);
    } finally {
      a.close();
      b.close();
      c.close();
    }
  }, 60_000);

  it('merges one domain split across two files only when told to, as upstream', async () => {
    const split = files('merge');
    const refused = await startUpstream(split, redis.port);
    const merging = await startUpstream(split, redis.port, { MERGE_DOMAIN_CONFIG: 'true' });
    const mine = await startOurs(redisCounting, 'merge', split, { count_refused_requests: true, merge_domain_configs: true });
    try {
      expect(refused.output()).toMatch(/Error loading new configuration: .*duplicate domain 'conf-merge'/);
      await expect(loadRateLimitFiles(split, { algorithm: 'fixed_window' })).rejects.toThrow(/duplicate domain "conf-merge"/);
      const [a, b] = [caller(merging.address), caller(mine.address)];
      try {
        for (const c of [...rep(2, { domain: 'conf-merge', descriptors: [d(['a', 'x']), d(['b', 'x'])] }), { domain: 'conf-merge', descriptors: [d(['b', 'x'])] }]) {
          expectSame(await b.call(c), await a.call(c), JSON.stringify(c));
        }
      } finally {
        a.close();
        b.close();
      }
    } finally {
      await Promise.all([refused.stop(), merging.stop(), mine.shutdown()]);
    }
  });

  it('refuses every invalid file in both', async () => {
    const invalid = files('invalid');
    expect(invalid.length).toBeGreaterThanOrEqual(30);
    const refusedByUpstream: string[] = [];
    for (let i = 0; i < invalid.length; i += 6) {
      await Promise.all(
        invalid.slice(i, i + 6).map(async (f) => {
          const u = await startUpstream([f], redis.port);
          try {
            const answer = await caller(u.address).call({ domain: 'd', descriptors: [d(['a', 'x'])] });
            // The refusal is logged as upstream's loader runs, which can be after it starts serving: wait
            // for the line (up to 10 s: six binaries start at once, beside the rest of the suite).
            const logged = (): boolean => u.output().includes(`Error loading new configuration: ${basename(f)}:`);
            for (let t = 0; t < 200 && !logged(); t++) await new Promise((r) => setTimeout(r, 50));
            if (logged() && answer.error?.details === 'no rate limit configuration loaded') refusedByUpstream.push(basename(f));
          } finally {
            await u.stop();
          }
        }),
      );
    }
    expect(refusedByUpstream.sort()).toEqual(invalid.map((f) => basename(f)).sort());
    for (const f of invalid) {
      await expect(loadRateLimitFiles([f], { algorithm: 'fixed_window' }), basename(f)).rejects.toBeInstanceOf(ConfigError);
    }
  }, 90_000);

  it('follows upstream main where the pinned binary is older: descriptor metadata, * inside a value, quota_mode answers', async () => {
    // The pinned binary predates metadata: it refuses the file; main and we load it.
    const meta = await startUpstream(files('main-only').filter((f) => f.endsWith('metadata.yaml')), redis.port);
    try {
      expect(meta.output()).toContain("unknown key 'metadata'");
    } finally {
      await meta.stop();
    }
    const mid = files('main-only').filter((f) => f.endsWith('mid-wildcard.yaml'));
    const old = await startUpstream(mid, redis.port);
    const mine = await startOurs(redisDefault, 'main', files('main-only'), { count_refused_requests: true });
    const [a, b] = [caller(old.address), caller(mine.address)];
    try {
      await awayFromHourEnd();
      // main's wildcardMatch: /api/*/users matches /api/v1/users; the pinned binary reads it literally.
      const c = { domain: 'conf-mid', descriptors: [d(['path', '/api/v1/users'])] };
      expect((await a.call(c)).statuses![0]!.limit).toBeNull();
      expect((await b.call(c)).statuses![0]!.limit).toMatchObject({ rpu: 2, unit: 'HOUR' });
      expect((await b.call({ domain: 'conf-meta', descriptors: [d(['tier', 'gold'])] })).statuses![0]!.remaining).toBe(1);
      // quota_mode over its limit: main answers OVER_LIMIT for the descriptor, and the request is
      // refused only when every quota descriptor is over; the pinned binary answered OK.
      const q = caller(upstream.address);
      const o = caller(ours.address);
      try {
        const both = { domain: 'conf-quota', descriptors: [d(['q1', 'y']), d(['q2', 'y'])] };
        await q.call(both);
        await o.call(both);
        const pin = await q.call(both);
        const main = await o.call(both);
        expect(pin.overall).toBe('OK');
        expect(pin.statuses!.map((s) => s.code)).toEqual(['OK', 'OK']);
        expect(main.overall).toBe('OK');
        expect(main.statuses!.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OK']);
        const third = await o.call(both);
        expect(third.overall).toBe('OVER_LIMIT');
        expect(third.statuses!.map((s) => s.code)).toEqual(['OVER_LIMIT', 'OVER_LIMIT']);
        expect((await o.call({ domain: 'conf-quota', descriptors: [d(['plain', 'y']), d(['q1', 'y'])] })).overall).toBe('OVER_LIMIT');
      } finally {
        q.close();
        o.close();
      }
    } finally {
      a.close();
      b.close();
      await Promise.all([old.stop(), mine.shutdown()]);
    }
  }, 60_000);
});
