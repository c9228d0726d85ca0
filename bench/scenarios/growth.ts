// Growth: latency (at a fixed offered load) and memory as the inputs grow - rate-limit rules,
// API keys (file and Redis), distinct bucket keys in the memory store, and the policy bundle's
// data. Flat is the goal: lookups are hash-map lookups, nothing is scanned per request.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assembleApiKey, digestApiKey } from '../../src/authn/apikey-format.js';
import { measureMedian, measureRunsInTurn, warmUp, type Bench } from '../lib/bench.js';
import { buildPolicies, checkFixtures, checkRequest, oursCheckConfig } from '../lib/fixtures.js';
import { CHECK, ghz, RLS } from '../lib/ghz.js';
import { rssBytes } from '../lib/procs.js';
import { startBenchRedis } from '../lib/redis.js';
import { rlsOnlyConfig } from './ratelimit.js';
import { startOpaPeer, startOurs, type Server } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { ROOT } from '../lib/tools.js';

export interface GrowthPoint {
  size: number;
  result: LoadResult;
  rssMiB: number;
}
export interface GrowthResults {
  rps: number;
  rules: GrowthPoint[];
  apiKeysFile: GrowthPoint[];
  apiKeysRedis: GrowthPoint[];
  bucketKeys: GrowthPoint[];
  bucketBytesPerKey: { keys: number; bytesPerKey: number };
  bundleData: { ours: GrowthPoint[]; peer: GrowthPoint[] };
}

const mib = (pid: number): number => Math.round((rssBytes(pid) / 2 ** 20) * 10) / 10;

async function point(b: Bench, label: string, size: number, server: Server, method: typeof CHECK, data: unknown, rps: number): Promise<GrowthPoint> {
  await warmUp(b, { method, address: server.address, data, rps });
  const result = await measureMedian(b, `${label} ${size}`, { method, address: server.address, data, rps }, { server: server.pid });
  return { size, result, rssMiB: mib(server.pid) };
}

/** One server per size, started before any is measured; `data` is what that size's requests are. */
interface SizedServer {
  size: number;
  start(): Promise<Server>;
  data: unknown;
}

/**
 * The sizes' servers side by side, loaded in turn run by run (10, 1,000, ..., 10, 1,000, ...), as
 * the throughput scenarios do: one after the other, a drift of this shared machine between the
 * first size and the last read as growth (the published 10-key point once ran at 444 us of CPU
 * per call and the 1,000-key one at 568, where the same two servers measured in any other order
 * came out alike). The median run of each by p50.
 */
async function pointsInTurn(b: Bench, label: string, method: typeof CHECK, sized: SizedServer[], rps: number): Promise<GrowthPoint[]> {
  const servers: Server[] = [];
  try {
    for (const s of sized) servers.push(await s.start());
    for (const [i, s] of sized.entries()) await warmUp(b, { method, address: servers[i]!.address, data: s.data, rps });
    const measured = await measureRunsInTurn(
      b,
      sized.map((s, i) => ({ label: `${label} ${s.size}`, o: { method, address: servers[i]!.address, data: s.data, rps }, cpu: { server: servers[i]!.pid } })),
      b.quick ? 1 : 3,
      (r) => r.p50,
      // Steady state, as a server under this load sees it: without it every run of the Redis API
      // key servers began with all their entries expired (and 1,000 misses), after waiting its turn.
      b.quick ? 1 : 2,
    );
    return sized.map((s, i) => ({ size: s.size, result: measured[i]!.median, rssMiB: mib(servers[i]!.pid) }));
  } finally {
    for (const server of servers) await server.stop();
  }
}

function rulesConfig(n: number): string {
  const lines = ['domain: growth', 'descriptors:'];
  for (let i = 0; i < n; i++) lines.push(`  - key: tenant`, `    value: t${i}`, `    rate_limit: { unit: second, requests_per_unit: 1000000 }`);
  return `${lines.join('\n')}\n`;
}

async function growRules(b: Bench, sizes: number[], rps: number): Promise<GrowthPoint[]> {
  return pointsInTurn(
    b,
    'rules',
    RLS,
    sizes.map((n) => {
      const file = join(b.workDir, `rules-${n}.yaml`);
      writeFileSync(file, rulesConfig(n));
      return {
        size: n,
        start: () => startOurs(b.workDir, `rules-${n}`, rlsOnlyConfig([file]), { cpus: b.serverCpus }),
        // Requests spread over every rule (at most 1000 distinct ones).
        data: Array.from({ length: Math.min(n, 1000) }, (_, i) => ({ domain: 'growth', descriptors: [{ entries: [{ key: 'tenant', value: `t${Math.floor((i * n) / Math.min(n, 1000))}` }] }] })),
      };
    }),
    rps,
  );
}

/** `n` API key entries; the first `usable` with known keys (returned), the rest random digests. */
function apiKeyEntries(n: number, usable: number): { entries: Record<string, unknown>[]; keys: string[] } {
  const entries: Record<string, unknown>[] = [];
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const id = `k${String(i).padStart(11, '0')}`;
    const key = assembleApiKey('eak', id, `s${String(i).padStart(31, '0')}`);
    if (i < usable) keys.push(key);
    entries.push({ id, digest: digestApiKey(key), owner: `svc-${i % 100}`, expires_at: '2099-01-01T00:00:00Z' });
  }
  return { entries, keys };
}

function apiKeyRequests(keys: string[]): unknown[] {
  return keys.map((k, i) => {
    const r = checkRequest('unused', i) as { attributes: { request: { http: { headers: Record<string, string> } } } };
    const headers = Object.entries(r.attributes.request.http.headers).filter(([name]) => name !== 'authorization');
    r.attributes.request.http.headers = Object.fromEntries([...headers, ['x-api-key', k]]);
    return r;
  });
}

async function growApiKeysFile(b: Bench, sizes: number[], rps: number): Promise<GrowthPoint[]> {
  return pointsInTurn(
    b,
    'api keys (file)',
    CHECK,
    sizes.map((n) => {
      const { entries, keys } = apiKeyEntries(n, Math.min(n, 1000));
      const file = join(b.workDir, `apikeys-${n}.json`);
      writeFileSync(file, JSON.stringify({ keys: entries }));
      return { size: n, start: () => startOurs(b.workDir, `apikeys-file-${n}`, { authentication: { api_keys: { file } } }, { cpus: b.serverCpus }), data: apiKeyRequests(keys) };
    }),
    rps,
  );
}

async function growApiKeysRedis(b: Bench, sizes: number[], rps: number): Promise<GrowthPoint[]> {
  const redis = await startBenchRedis(b.loadCpus);
  try {
    const { entries, keys } = apiKeyEntries(sizes[sizes.length - 1]!, 1000);
    // One hash per size (its own redis.key_prefix), all in the one Redis, so that the servers can run side by side.
    for (const n of sizes) {
      for (let i = 0; i < n; i += 10000) {
        const pipe = redis.client.pipeline();
        for (const e of entries.slice(i, Math.min(n, i + 10000))) pipe.hset(`growth${n}:apikeys`, String(e.id), JSON.stringify(e));
        await pipe.exec();
      }
    }
    return await pointsInTurn(
      b,
      'api keys (redis)',
      CHECK,
      sizes.map((n) => ({
        size: n,
        start: () => startOurs(b.workDir, `apikeys-redis-${n}`, { authentication: { api_keys: { redis: true } }, redis: { url: redis.url, key_prefix: `growth${n}:` } }, { cpus: b.serverCpus }),
        data: apiKeyRequests(keys.slice(0, Math.min(n, 1000))),
      })),
      rps,
    );
  } finally {
    await redis.stop();
  }
}

async function growBucketKeys(b: Bench, sizes: number[], rps: number): Promise<GrowthPoint[]> {
  const file = join(b.workDir, 'bucket-keys.yaml');
  writeFileSync(file, 'domain: bench\ndescriptors:\n  - key: user\n    rate_limit: { unit: hour, requests_per_unit: 1000000 }\n');
  const max = sizes[sizes.length - 1]! * 2;
  const server = await startOurs(b.workDir, 'bucket-keys', rlsOnlyConfig([file], { memory_max_keys: max }), { cpus: b.serverCpus });
  const out: GrowthPoint[] = [];
  try {
    let filled = 0;
    for (const n of sizes) {
      // ghz numbers its calls from 0 in every run: a prefix per fill keeps the users distinct.
      if (n > filled) {
        await ghz({ method: RLS, address: server.address, data: { domain: 'bench', descriptors: [{ entries: [{ key: 'user', value: `fill${filled}-{{.RequestNumber}}` }] }] }, seconds: 0, total: n - filled, concurrency: 32, connections: 2, cpus: b.loadCpus, workDir: b.workDir });
        filled = n;
      }
      // Measured with users that already have buckets (the lookups that grow with the table).
      const data = Array.from({ length: 1000 }, (_, i) => ({ domain: 'bench', descriptors: [{ entries: [{ key: 'user', value: `fill0-${Math.floor((i * n) / 1000) % Math.min(n, sizes[0]!)}` }] }] }));
      out.push(await point(b, 'bucket keys (memory)', n, server, RLS, data, rps));
    }
  } finally {
    await server.stop();
  }
  return out;
}

function bucketBytes(keys: number): { keys: number; bytesPerKey: number } {
  const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(ROOT, 'bench', 'lib', 'bucket-memory.ts'), String(keys)], { cwd: ROOT }).toString();
  return JSON.parse(out) as { keys: number; bytesPerKey: number };
}

async function growBundleData(b: Bench, sizes: number[], rps: number): Promise<GrowthResults['bundleData']> {
  const f = await checkFixtures(200);
  const data = f.tokens.RS256.allow.map((t, i) => checkRequest(t, i));
  const ours: GrowthPoint[] = [];
  const peer: GrowthPoint[] = [];
  for (const n of sizes) {
    const { bundle, peerDir } = buildPolicies(b.workDir, f, n);
    for (const side of ['ours', 'peer'] as const) {
      // 100,000 roles are ~10 MB of data: more than the default 64 MiB of wasm memory holds once parsed.
      const config = oursCheckConfig(b.workDir, f, bundle, 10000);
      const server = side === 'ours' ? await startOurs(b.workDir, `bundle-${n}`, { ...config, policy: { ...(config.policy as object), memory_max_pages: 16384 } }, { cpus: b.serverCpus }) : await startOpaPeer(peerDir, b.serverCpus);
      try {
        (side === 'ours' ? ours : peer).push(await point(b, `bundle data roles (${side})`, n, server, CHECK, data, rps));
      } finally {
        await server.stop();
      }
    }
  }
  return { ours, peer };
}

export async function runGrowth(b: Bench): Promise<GrowthResults> {
  const rps = 1000;
  const q = b.quick;
  const rules = await growRules(b, q ? [10, 1000] : [10, 100, 1000, 10000], rps);
  const apiKeysFile = await growApiKeysFile(b, q ? [10, 1000] : [10, 1000, 10000, 50000], rps);
  const apiKeysRedis = await growApiKeysRedis(b, q ? [10, 10000] : [10, 1000, 100000, 1000000], rps);
  const bucketKeys = await growBucketKeys(b, q ? [10000, 50000] : [10000, 100000, 1000000], rps);
  const bucketBytesPerKey = bucketBytes(q ? 100000 : 1000000);
  b.log(`  memory store: ${bucketBytesPerKey.bytesPerKey} bytes per bucket key at ${bucketBytesPerKey.keys} keys`);
  const bundleData = await growBundleData(b, q ? [10, 1000] : [10, 1000, 100000], rps);
  return { rps, rules, apiKeysFile, apiKeysRedis, bucketKeys, bucketBytesPerKey, bundleData };
}
