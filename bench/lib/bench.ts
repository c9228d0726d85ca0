// What every scenario gets: where to write, how long to measure, which cores to use.
import { describeGc, gcStats, type GcProbe } from './gc.js';
import { ghz, type GhzRun } from './ghz.js';
import { cpuSeconds } from './procs.js';
import { coreTimes, idlePercent } from './machine.js';
import type { LoadResult } from './stats.js';

export interface Bench {
  workDir: string;
  resultsDir: string;
  /** Measured seconds per run, and the warm-up before the first measured run of a server. */
  seconds: number;
  warmupSeconds: number;
  /** The server under test runs here; the load generator (and Redis, Envoy, upstream) on loadCpus. */
  serverCpus: string;
  loadCpus: string;
  /** Smaller sizes and shorter runs (a smoke run of the whole bench). */
  quick: boolean;
  log(message: string): void;
}

export type GhzOptions = Omit<GhzRun, 'seconds' | 'cpus' | 'workDir' | 'concurrency' | 'connections'> & Partial<Pick<GhzRun, 'concurrency' | 'connections'>>;

/** Load shape of every gRPC run: two HTTP/2 connections (as an Envoy with two workers holds) and 32 calls in flight. */
const DEFAULTS = { concurrency: 32, connections: 2 };

export async function warmUp(b: Bench, o: GhzOptions & { cpus?: string }, seconds = b.warmupSeconds): Promise<void> {
  await ghz({ ...DEFAULTS, ...o, seconds, cpus: o.cpus ?? b.loadCpus, workDir: b.workDir });
}

/** Processes whose CPU time per request a run reports. */
export interface CpuOf {
  server: number;
  redis?: number;
  /** The server's GC probe (bench/lib/gc.ts), when it was started with one: the run reports allocation and GC pauses. */
  gc?: GcProbe;
}

/** CPU microseconds per request of each process over `run` (the load generator's core is often the limit on two cores, so this is the server's cost that throughput alone can hide). */
export async function withCpu(cpu: CpuOf | undefined, run: () => Promise<LoadResult>): Promise<LoadResult> {
  if (!cpu) return run();
  if (cpu.gc) await cpu.gc.take(cpu.server);
  const before = { server: cpuSeconds(cpu.server), redis: cpu.redis !== undefined ? cpuSeconds(cpu.redis) : 0 };
  const r = await run();
  const per = (s: number): number => Math.round((s * 1e6) / Math.max(1, r.requests) * 10) / 10;
  const after = { server: cpuSeconds(cpu.server), redis: cpu.redis !== undefined ? cpuSeconds(cpu.redis) : 0 };
  return {
    ...r,
    serverCpuUs: per(after.server - before.server),
    ...(cpu.redis !== undefined ? { redisCpuUs: per(after.redis - before.redis) } : {}),
    ...(cpu.gc ? { gc: gcStats(await cpu.gc.take(cpu.server), r.requests) } : {}),
  };
}

export function describe(r: LoadResult): string {
  const cpu = r.serverCpuUs !== undefined ? `; cpu ${r.serverCpuUs} us/req${r.redisCpuUs !== undefined ? `, redis ${r.redisCpuUs} us/req` : ''}${r.proxyCpuUs !== undefined ? `, Envoy ${r.proxyCpuUs} us/req` : ''}` : '';
  const idle = r.coresIdle ? `; idle: server cores ${r.coresIdle.server}%, load cores ${r.coresIdle.load}%` : '';
  return `${r.throughput}/s p50 ${r.p50} p99 ${r.p99} p99.9 ${r.p999} ms${cpu}${idle}${r.gc ? `; ${describeGc(r.gc)}` : ''}${r.errors ? ` (${r.errors} errors: ${JSON.stringify(r.statuses)}${r.errorMessages ? `, first messages: ${JSON.stringify(r.errorMessages)}` : ''})` : ''}`;
}

/**
 * The median of `times` measured runs (by throughput for max runs, by p50 at a fixed load): one
 * disturbed run on a shared machine then moves no figure. Each run is printed.
 */
export async function measureMedian(b: Bench, label: string, o: MeasureOptions, cpu?: CpuOf, times = b.quick ? 1 : 3): Promise<LoadResult> {
  return (await measureRuns(b, label, o, cpu, times)).median;
}

/** measureMedian, with every run kept (in the order they ran) for a spread. */
export async function measureRuns(b: Bench, label: string, o: MeasureOptions, cpu?: CpuOf, times = b.quick ? 1 : 3): Promise<{ median: LoadResult; runs: LoadResult[] }> {
  const runs: LoadResult[] = [];
  for (let i = 0; i < times; i++) runs.push(await measure(b, label, o, cpu));
  const key = (r: LoadResult): number => (o.rps === undefined ? r.throughput : r.p50);
  return { median: [...runs].sort((x, y) => key(x) - key(y))[Math.floor(runs.length / 2)]!, runs };
}

/**
 * Several servers' runs in turn (a, b, a, b, ...), `times` each, so that drift on a shared machine
 * hits them alike (for ratios between servers started side by side); the median run of each by
 * `key` (default: throughput, for max runs).
 */
export async function measureInTurn(b: Bench, entries: { label: string; o: MeasureOptions; cpu?: CpuOf }[], times = b.quick ? 1 : 3, key = (r: LoadResult): number => r.throughput): Promise<LoadResult[]> {
  return (await measureRunsInTurn(b, entries, times, key)).map((m) => m.median);
}

/**
 * measureInTurn, with every run of each entry kept (in the order they ran) for a spread.
 * `warmSeconds`: each run is preceded by that much of its own load, unmeasured - for servers whose
 * caches expire while the others run (API key entries live 5 s; a run waits 15 s or more for its turn).
 */
export async function measureRunsInTurn(
  b: Bench,
  entries: { label: string; o: MeasureOptions; cpu?: CpuOf }[],
  times = b.quick ? 1 : 3,
  key = (r: LoadResult): number => r.throughput,
  warmSeconds = 0,
): Promise<{ median: LoadResult; runs: LoadResult[] }[]> {
  const runs: LoadResult[][] = entries.map(() => []);
  for (let i = 0; i < times; i++)
    for (const [j, e] of entries.entries()) {
      if (warmSeconds > 0) await warmUp(b, e.o, warmSeconds);
      runs[j]!.push(await measure(b, e.label, e.o, e.cpu));
    }
  return runs.map((rs) => ({ median: [...rs].sort((x, y) => key(x) - key(y))[Math.floor(rs.length / 2)]!, runs: rs }));
}

/**
 * How idle the server's and the load generator's cores are while the load runs: read at 500 ms
 * into the run and 200 ms before its end, so that the load generator's start-up and the harness's
 * parsing of its report (on the load generator's core, with the server's idle) stay out of the figure.
 */
export function sampleIdle(serverCpus: string, loadCpus: string, seconds: number): Promise<LoadResult['coresIdle']> {
  const fromMs = 500;
  const toMs = seconds * 1000 - 200;
  if (toMs - fromMs < 500) return Promise.resolve(undefined);
  const read = (): { server: ReturnType<typeof coreTimes>; load: ReturnType<typeof coreTimes> } => ({ server: coreTimes(serverCpus), load: coreTimes(loadCpus) });
  return new Promise((resolve) => {
    setTimeout(() => {
      const from = read();
      setTimeout(() => {
        const to = read();
        const server = idlePercent(from.server, to.server);
        const load = idlePercent(from.load, to.load);
        resolve(server !== undefined && load !== undefined ? { server, load } : undefined);
      }, toMs - fromMs);
    }, fromMs);
  });
}

/** (max - min) / median of `values`, in percent (0 for fewer than two). */
export function spreadPercent(values: number[]): number {
  if (values.length < 2) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)]!;
  return median > 0 ? Math.round(((sorted[sorted.length - 1]! - sorted[0]!) / median) * 1000) / 10 : Number.NaN;
}

/** A run's load; `seconds` overrides b.seconds (longer runs where a far percentile is the point). */
export type MeasureOptions = GhzOptions & { cpus?: string; seconds?: number };

/** One measured run: unthrottled when o.rps is unset (max throughput), else at that offered load. */
export async function measure(b: Bench, label: string, o: MeasureOptions, cpu?: CpuOf): Promise<LoadResult> {
  const loadCpus = o.cpus ?? b.loadCpus;
  const seconds = o.seconds ?? b.seconds;
  const idle = sampleIdle(b.serverCpus, loadCpus, seconds);
  let r = await withCpu(cpu, () => ghz({ ...DEFAULTS, ...o, seconds, cpus: loadCpus, workDir: b.workDir }));
  const coresIdle = await idle;
  if (coresIdle) r = { ...r, coresIdle };
  b.log(`  ${label}${o.rps !== undefined ? ` @${o.rps}/s` : ' max'}: ${describe(r)}`);
  return r;
}

export const ratio = (a: number, b: number): number => (b > 0 ? Math.round((a / b) * 100) / 100 : Number.NaN);
