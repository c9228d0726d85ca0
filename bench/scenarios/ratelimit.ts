// ShouldRateLimit with 1 and 3 descriptors: envoy-authz on its memory store and on Redis
// (fixed window, envoyproxy/ratelimit's algorithm, and token bucket, our default) against
// envoyproxy/ratelimit on the same Redis with the same config file. Redis's own counters tell
// the commands and socket reads each request cost.
import { measure, measureRunsInTurn, warmUp, type Bench, type CpuOf } from '../lib/bench.js';
import { ghz, RLS } from '../lib/ghz.js';
import { startBenchRedis, type BenchRedis } from '../lib/redis.js';
import { startOurs, startRatelimitPeer, type Server } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';

export type RlsServer = 'ours_memory' | 'ours_redis_fixed' | 'ours_redis_bucket' | 'peer';
export interface RedisCost {
  /** Commands the server sent per request (Redis MONITOR sample; commands run by a Lua script excluded). */
  clientCommandsPerRequest?: number;
  /** Keys those commands evaluated or counted per request (a script's KEYS, an INCRBY's key), in the same sample. */
  clientKeysPerRequest?: number;
  /** Commands Redis executed per request, including those inside scripts (INFO commandstats). */
  commandsPerRequest: number;
  readsPerRequest: number;
  commands: Record<string, number>;
}
/** One of the max runs a median was taken from (the spread across them is a target). */
export interface RunSummary {
  throughput: number;
  serverCpuUs?: number;
  redisCpuUs?: number;
}
export interface RlsResults {
  users: number;
  max: Record<'d1' | 'd3', Partial<Record<RlsServer, LoadResult & { redis?: RedisCost; runs?: RunSummary[] }>>>;
  loads: Partial<Record<RlsServer, LoadResult[]>>;
  fractions: number[];
}

/** One config file for everyone, in envoyproxy/ratelimit's format; limits high enough that every request is admitted. */
export const RLS_CONFIG = `domain: bench
descriptors:
  - key: user
    rate_limit: { unit: second, requests_per_unit: 1000000 }
  - key: client
    rate_limit: { unit: second, requests_per_unit: 1000000 }
  - key: route
    value: orders
    rate_limit: { unit: second, requests_per_unit: 1000000 }
`;

/** envoy-authz serving only the rate-limit service (as envoyproxy/ratelimit does), on `rl.store`. */
export function rlsOnlyConfig(files: string[], rl: Record<string, unknown> = {}, redisUrl?: string): Record<string, unknown> {
  return { check: { enabled: false }, ratelimit: { files, ...rl }, ...(redisUrl !== undefined ? { redis: { url: redisUrl } } : {}) };
}

export function rlsRequests(users: number, descriptors: 1 | 3): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < users; i++) {
    const d = [{ entries: [{ key: 'user', value: `user-${i}` }] }];
    if (descriptors === 3) d.push({ entries: [{ key: 'client', value: `client-${i % 50}` }] }, { entries: [{ key: 'route', value: 'orders' }] });
    out.push({ domain: 'bench', descriptors: d, hits_addend: 1 });
  }
  return out;
}

const FRACTIONS = [0.25, 0.5, 0.75, 1];
const RLS_WARMUP_SECONDS = 10;

async function redisCost(redis: BenchRedis, requests: number): Promise<RedisCost> {
  const { commands, reads } = await redis.counters();
  const total = Object.values(commands).reduce((s, n) => s + n, 0);
  const per = (n: number): number => Math.round((n / Math.max(1, requests)) * 100) / 100;
  return { commandsPerRequest: per(total), readsPerRequest: per(reads), commands };
}

export async function runRateLimit(b: Bench): Promise<RlsResults> {
  const users = b.quick ? 100 : 1000;
  const redis = await startBenchRedis(b.loadCpus);
  const file = join(b.workDir, 'rls-bench.yaml');
  writeFileSync(file, RLS_CONFIG);
  const ours = (name: string, rl: Record<string, unknown>): Promise<Server> =>
    startOurs(b.workDir, name, rlsOnlyConfig([file], rl, rl.store === 'redis' ? redis.url : undefined), { cpus: b.serverCpus });
  const starters: Record<RlsServer, () => Promise<Server>> = {
    // Both answer with rate-limit headers (ours sends its draft RateLimit headers by default): the same work per answer.
    peer: () => startRatelimitPeer(b.workDir, RLS_CONFIG, redis.port, b.serverCpus, { LIMIT_RESPONSE_HEADERS_ENABLED: 'true' }),
    ours_redis_fixed: () => ours('rls-redis-fixed', { store: 'redis', algorithm: 'fixed_window' }),
    ours_redis_bucket: () => ours('rls-redis-bucket', { store: 'redis' }),
    ours_memory: () => ours('rls-memory', { store: 'memory' }),
  };
  const max: RlsResults['max'] = { d1: {}, d3: {} };
  const loads: RlsResults['loads'] = {};
  // The four servers side by side (each loaded alone), in turn run by run, so that drift on this
  // shared machine hits them alike (one after the other, the memory store's three max runs in one
  // scenario ranged from 3,913 to 6,710 calls/s).
  const names = ['peer', 'ours_redis_fixed', 'ours_redis_bucket', 'ours_memory'] as const;
  const servers: Partial<Record<RlsServer, Server>> = {};
  try {
    for (const name of names) {
      const server = await starters[name]();
      servers[name] = server;
      // 10 s, not the bench's usual 3: a fresh envoy-authz on Redis spent 180 and 160 us of CPU a
      // call in its first two 5 s windows at max, then mostly 103-133 (bench/NOTES.md item 24),
      // and its first measured run came out the slowest of three.
      await warmUp(b, { method: RLS, address: server.address, data: rlsRequests(users, 1) }, b.quick ? b.warmupSeconds : RLS_WARMUP_SECONDS);
    }
    const at = (name: RlsServer): Server => servers[name]!;
    const cpuOf = (name: RlsServer): CpuOf => ({ server: at(name).pid, ...(name === 'ours_memory' ? {} : { redis: redis.proc.child.pid! }) });
    const label = (name: RlsServer, d: number): string => `${name} ${d} descriptor${d > 1 ? 's' : ''}`;
    for (const d of [1, 3] as const) {
      await redis.client.flushall();
      const measured = await measureRunsInTurn(
        b,
        names.map((name) => ({ label: label(name, d), o: { method: RLS, address: at(name).address, data: rlsRequests(users, d) }, cpu: cpuOf(name) })),
      );
      for (const [i, name] of names.entries()) {
        const runs = measured[i]!.runs.map((v): RunSummary => ({ throughput: v.throughput, ...(v.serverCpuUs !== undefined ? { serverCpuUs: v.serverCpuUs } : {}), ...(v.redisCpuUs !== undefined ? { redisCpuUs: v.redisCpuUs } : {}) }));
        const r = { ...measured[i]!.median, runs };
        if (name === 'ours_memory') {
          max[`d${d}`][name] = r;
          continue;
        }
        // Redis's counters over one run of its own, divided by that run's calls.
        const load = { method: RLS, address: at(name).address, data: rlsRequests(users, d) };
        await redis.reset();
        const cost = await redisCost(redis, (await measure(b, `${label(name, d)} (Redis counters)`, load)).requests);
        // Which of those commands the server sent (the rest ran inside its Lua script): a short sample at a low rate,
        // a fixed number of calls (a timed run cancels its last calls in flight, which ghz then leaves uncounted
        // although they reached Redis: 1.01 and 2.02 commands per call where Redis's own counters said 1 and 2).
        const sent = await redis.clientCommands(async () => {
          const sample = await ghz({ ...load, seconds: 2, total: 400, rps: 200, concurrency: 4, connections: 1, cpus: b.loadCpus, workDir: b.workDir });
          return sample.requests + sample.errors;
        });
        max[`d${d}`][name] = { ...r, redis: { ...cost, clientCommandsPerRequest: sent.commands, clientKeysPerRequest: sent.keys } };
        b.log(`    redis: ${JSON.stringify(max[`d${d}`][name]?.redis)}`);
      }
    }
    const peerMax = max.d1.peer?.throughput ?? 1000;
    for (const name of names) loads[name] = [];
    for (const fr of FRACTIONS) {
      for (const name of names) loads[name]!.push(await measure(b, label(name, 1), { method: RLS, address: at(name).address, data: rlsRequests(users, 1), rps: Math.max(100, Math.round(peerMax * fr)) }, cpuOf(name)));
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
    await redis.stop();
  }
  return { users, max, loads, fractions: FRACTIONS };
}
