// End to end through a real Envoy (envoy/envoy.yaml: ext_authz + ratelimit filters asking
// envoy-authz) against the same Envoy with both filters removed: the latency Envoy users pay
// for us, at fixed offered loads (open loop, vegeta). A third run puts the empty grpc-js server
// (bench/floor/empty-check.ts, on envoy-authz's core) behind the same filters: what the two
// filters cost on this machine with a server that does nothing - Envoy's gRPC calls, and the
// load generator, upstream and Envoy sharing one core - so that our own share can be read.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { envoyPorts, renderEnvoyConfig, startEnvoy, type EnvoyPorts, type RunningEnvoy } from '../../test/helpers/envoy.js';
import { freePort } from '../../test/helpers/ports.js';
import { sampleIdle, withCpu, describe as describeRun, type Bench } from '../lib/bench.js';
import { buildPolicies, checkFixtures, oursCheckConfig } from '../lib/fixtures.js';
import { cpuSeconds, pin, startPinned, waitForPort } from '../lib/procs.js';
import { startFloor, startOurs } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { ROOT } from '../lib/tools.js';
import { vegeta } from '../lib/vegeta.js';

export interface EnvoyResults {
  rates: number[];
  /** Per offered load: with our filters, and with the filters off. */
  filters: LoadResult[];
  direct: LoadResult[];
  /** The same filters asking the empty grpc-js server (absent in results from before it was measured). */
  empty?: LoadResult[];
  /** p99 added by the filters at each rate, in ms. */
  addedP99: number[];
  addedP50: number[];
}

/** Limits high enough that every request is admitted: the descriptors of envoy/envoy.yaml. */
const LIMITS = `domain: envoy-authz
descriptors:
  - key: user
    rate_limit: { unit: second, requests_per_unit: 1000000 }
  - key: client
    rate_limit: { unit: second, requests_per_unit: 1000000 }
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 1000000 }
  - key: route
    value: default
    rate_limit: { unit: second, requests_per_unit: 1000000 }
`;

interface Hcm {
  http_filters: { name: string }[];
}
interface Boot {
  static_resources: { listeners: { name: string; filter_chains: { filters: { typed_config: Hcm }[] }[] }[] };
}

/** The rendered bootstrap with the ext_authz and ratelimit filters removed from every listener. */
function withoutFilters(file: string, out: string): string {
  const boot = parse(readFileSync(file, 'utf8'), { maxAliasCount: 1000 }) as Boot;
  for (const l of boot.static_resources.listeners) {
    for (const fc of l.filter_chains) {
      for (const f of fc.filters) {
        f.typed_config.http_filters = f.typed_config.http_filters.filter((h) => h.name !== 'envoy.filters.http.ext_authz' && h.name !== 'envoy.filters.http.ratelimit');
      }
    }
  }
  writeFileSync(out, stringify(boot, { aliasDuplicateObjects: false }));
  return out;
}

const VARIANTS = ['direct', 'empty', 'filters'] as const;
type Variant = (typeof VARIANTS)[number];

/** The run whose p99 is the median of `runs` (the target is a p99). */
const medianByP99 = (runs: LoadResult[]): LoadResult => [...runs].sort((x, y) => x.p99 - y.p99)[Math.floor(runs.length / 2)]!;

export async function runEnvoy(b: Bench): Promise<EnvoyResults> {
  const rates = b.quick ? [1000] : [500, 1000, 2000];
  const times = b.quick ? 1 : 3;
  const f = await checkFixtures(1);
  const { bundle } = buildPolicies(b.workDir, f, 100);
  const limits = join(b.workDir, 'envoy-limits.yaml');
  writeFileSync(limits, LIMITS);
  const ours = await startOurs(b.workDir, 'envoy', { ...oursCheckConfig(b.workDir, f, bundle, 10000), ratelimit: { files: [limits] } }, { cpus: b.serverCpus });
  const upstreamPort = await freePort();
  const upstream = startPinned('upstream', process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'floor', 'upstream.ts'), String(upstreamPort)], { cpus: b.loadCpus, cwd: ROOT });
  const empty = await startFloor(b.serverCpus, { shippedFlags: true });
  const envoys: RunningEnvoy[] = [];
  const runs: Record<Variant, LoadResult[][]> = { direct: rates.map(() => []), empty: rates.map(() => []), filters: rates.map(() => []) };
  try {
    await waitForPort(upstream, upstreamPort);
    // Three Envoys side by side (each its own ports), measured in turn at every rate, `times`
    // runs each: drift on this shared machine then hits the three alike, and the median run of
    // each is kept. Without the shipped tracer: the filters' cost is measured, not tracing's.
    const certs = join(ROOT, '.dev', 'certs');
    const configFor = (v: Variant, ports: EnvoyPorts): string =>
      v === 'direct'
        ? withoutFilters(renderEnvoyConfig(ports, certs, join(b.workDir, 'envoy-direct-full.yaml'), { tracing: false }), join(b.workDir, 'envoy-direct.yaml'))
        : renderEnvoyConfig(ports, certs, join(b.workDir, `envoy-${v}.yaml`), { tracing: false });
    const setups = {} as Record<Variant, { ports: EnvoyPorts; file: string; serverPid: number; envoyPid: number }>;
    const headers = { authorization: `Bearer ${f.tokens.RS256.allow[0]!}` };
    const url = (v: Variant): string => `http://127.0.0.1:${setups[v].ports.http}/orders/42`;
    for (const v of VARIANTS) {
      // Each Envoy's ports are picked just before it binds them: picked all at once, one was
      // taken in between (the warm-up of the Envoy before opens connections on ephemeral ports
      // from the same range) and the run failed with "Address already in use".
      const server = v === 'empty' ? empty : ours;
      const ports = await envoyPorts(server.port, upstreamPort);
      const file = configFor(v, ports);
      const envoy = await startEnvoy(file, ports.admin);
      envoys.push(envoy);
      setups[v] = { ports, file, serverPid: server.pid, envoyPid: envoy.process.pid! };
      // Envoy shares the load generator's core: the server core stays the server's alone.
      pin(envoy.process.pid!, b.loadCpus);
      await vegeta({ url: url(v), headers, rps: 500, seconds: b.warmupSeconds, cpus: b.loadCpus, workDir: b.workDir });
    }
    for (const [i, rps] of rates.entries()) {
      for (let t = 0; t < times; t++) {
        for (const v of VARIANTS) {
          // What the load generator's core does beside the server's: how idle it is, and Envoy's
          // own CPU per request, which the filters' two gRPC calls add to.
          const idle = sampleIdle(b.serverCpus, b.loadCpus, b.seconds);
          const proxy0 = cpuSeconds(setups[v].envoyPid);
          const run = await withCpu({ server: setups[v].serverPid }, () => vegeta({ url: url(v), headers, rps, seconds: b.seconds, cpus: b.loadCpus, workDir: b.workDir }));
          const proxyCpuUs = Math.round(((cpuSeconds(setups[v].envoyPid) - proxy0) * 1e6) / Math.max(1, run.requests));
          const coresIdle = await idle;
          const r = { ...run, proxyCpuUs, ...(coresIdle ? { coresIdle } : {}) };
          b.log(`  envoy ${v} @${rps}/s: ${describeRun(r)} ${JSON.stringify(r.statuses)}`);
          runs[v][i]!.push(r);
        }
      }
    }
  } finally {
    for (const e of envoys) await e.stop();
    await upstream.stop();
    await empty.stop();
    await ours.stop();
  }
  const [direct, emptyRuns, filters] = VARIANTS.map((v) => runs[v].map(medianByP99)) as [LoadResult[], LoadResult[], LoadResult[]];
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    rates,
    filters,
    direct,
    empty: emptyRuns,
    addedP99: rates.map((_, i) => round(filters[i]!.p99 - direct[i]!.p99)),
    addedP50: rates.map((_, i) => round(filters[i]!.p50 - direct[i]!.p50)),
  };
}
