// Rules pushed under load: ShouldRateLimit (1 descriptor, Redis) at a fixed offered load while
// the rate-limit file - the bench's rules plus 10,000 more descriptors - is replaced every few
// seconds, against the same load with the file left alone. envoy-authz and envoyproxy/ratelimit
// in turn on the server core, each replacing its own file the way it is deployed (ours: a file it
// polls every second; the peer: its runtime directory, which it watches). What an operator sees:
// whether a rules push shows in the latency of every call. Each server is checked to have loaded
// the last version: it enforces that version's marker rule.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { warmUp, withCpu, type Bench } from '../lib/bench.js';
import { credentials } from '@grpc/grpc-js';
import { envoyProtos } from '../../src/envoy/protos.js';
import { ghz, RLS } from '../lib/ghz.js';
import { startBenchRedis } from '../lib/redis.js';
import { ratelimitPeerConfigFile, startOurs, startRatelimitPeer } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { RLS_CONFIG, rlsOnlyConfig, rlsRequests } from './ratelimit.js';

export type ReloadServer = 'ours' | 'peer';
export interface ReloadRow {
  server: ReloadServer;
  /** The file left alone. */
  steady: LoadResult;
  /** The file replaced every `everySeconds`. */
  reloading: LoadResult;
  /** Versions written during the reloading run, and whether the server enforced the last one after it. */
  versions: number;
  loadedLast: boolean;
}
export interface ReloadResults {
  descriptors: number;
  fileBytes: number;
  rps: number;
  seconds: number;
  everySeconds: number;
  rows: ReloadRow[];
}

/** The bench's rules, a marker naming the version, and `n` more descriptors. */
export function reloadRules(version: number, n: number): string {
  const lines = [RLS_CONFIG.trimEnd(), `  - key: version`, `    value: v${version}`, `    rate_limit: { unit: second, requests_per_unit: 1 }`];
  for (let i = 0; i < n; i++) lines.push(`  - key: tenant`, `    value: t${i}`, `    rate_limit: { unit: minute, requests_per_unit: ${1000 + ((i + version) % 7)} }`);
  return `${lines.join('\n')}\n`;
}

/** Replaces `file` at once (a rename from `dir`, outside the watched directories): neither server may read half a file. */
function replace(dir: string, file: string, text: string): void {
  const tmp = join(dir, 'next-rules.tmp');
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/** Whether `address` enforces version `v`'s marker rule (1 per second): the same question to either server. */
function enforces(address: string, v: number): Promise<boolean> {
  const Service = envoyProtos().envoy.service.ratelimit.v3.RateLimitService;
  const client = new Service(address, credentials.createInsecure());
  return new Promise<boolean>((resolve) => {
    client.ShouldRateLimit({ domain: 'bench', descriptors: [{ entries: [{ key: 'version', value: `v${v}` }] }], hits_addend: 1 }, { deadline: Date.now() + 2000 }, (err, res) => {
      resolve(!err && res?.statuses?.[0]?.current_limit?.requests_per_unit === 1);
    });
  }).finally(() => client.close());
}

export async function runReload(b: Bench): Promise<ReloadResults> {
  const descriptors = b.quick ? 1000 : 10_000;
  const seconds = b.quick ? 6 : 30;
  const everySeconds = b.quick ? 2 : 5;
  const rps = 2000;
  const data = rlsRequests(b.quick ? 100 : 1000, 1);
  const redis = await startBenchRedis(b.loadCpus);
  const ourFile = join(b.workDir, 'reload', 'rules', 'rls-reload.yaml');
  mkdirSync(join(b.workDir, 'reload', 'rules'), { recursive: true });
  const first = reloadRules(0, descriptors);
  writeFileSync(ourFile, first);
  const rows: ReloadRow[] = [];
  try {
    for (const server of ['peer', 'ours'] as const) {
      const s =
        server === 'ours'
          ? await startOurs(b.workDir, 'rls-reload', rlsOnlyConfig([ourFile], { store: 'redis', algorithm: 'fixed_window', reload_interval_ms: 1000 }, redis.url), { cpus: b.serverCpus })
          : await startRatelimitPeer(b.workDir, first, redis.port, b.serverCpus, { LIMIT_RESPONSE_HEADERS_ENABLED: 'true' });
      const file = server === 'ours' ? ourFile : ratelimitPeerConfigFile(b.workDir);
      try {
        const cpuOf = { server: s.pid, redis: redis.proc.child.pid! };
        const load = { method: RLS, address: s.address, data, seconds, rps, concurrency: 32, connections: 2, cpus: b.loadCpus, workDir: b.workDir };
        await warmUp(b, { method: RLS, address: s.address, data, rps });
        const steady = await withCpu(cpuOf, () => ghz(load));
        b.log(`  ${server} steady @${rps}/s: p99 ${steady.p99} p99.9 ${steady.p999} ms`);
        let version = 0;
        const pushes = setInterval(() => replace(b.workDir, file, reloadRules(++version, descriptors)), everySeconds * 1000);
        const reloading = await withCpu(cpuOf, () => ghz(load)).finally(() => clearInterval(pushes));
        // The last push may have come just before the run ended: give its load up to 15 s.
        let ok = false;
        for (let i = 0; i < 60 && !ok; i++) {
          ok = await enforces(s.address, version);
          if (!ok) await new Promise((r) => setTimeout(r, 250));
        }
        b.log(`  ${server} reloading (${version} versions, last loaded: ${ok}) @${rps}/s: p99 ${reloading.p99} p99.9 ${reloading.p999} ms`);
        rows.push({ server, steady, reloading, versions: version, loadedLast: ok });
      } finally {
        await s.stop();
      }
    }
  } finally {
    await redis.stop();
  }
  return { descriptors, fileBytes: Buffer.byteLength(first), rps, seconds, everySeconds, rows };
}
