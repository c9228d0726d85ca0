// What every load run reports, whatever tool produced it.
import type { GcStats } from './gc.js';

export interface LoadResult {
  /** Offered load in requests/s; undefined for an unthrottled (max throughput) run. */
  offered?: number;
  /** Completed requests per second over the measured interval. */
  throughput: number;
  requests: number;
  errors: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  /** The slowest call, ms. */
  max?: number;
  /** Status (gRPC code or HTTP status) -> count. */
  statuses: Record<string, number>;
  /** The first error message of each status that is not OK (gRPC runs), to tell the cause of a rare error. */
  errorMessages?: Record<string, string>;
  /** CPU time per completed request, in microseconds: of the server under test, and of Redis when used. */
  serverCpuUs?: number;
  redisCpuUs?: number;
  /**
   * Idle share of the server's cores and of the load generator's (ghz, and Redis, Envoy, upstream
   * where they run) while the load runs, percent; time stolen by the hypervisor counts as not idle.
   */
  coresIdle?: { server: number; load: number };
  /** CPU time per request of the proxy in front of the server (Envoy, through-Envoy runs), microseconds. */
  proxyCpuUs?: number;
  /** Allocation and GC pauses of the server over the run (our servers, with the GC probe loaded). */
  gc?: GcStats;
}

/** Nearest-rank percentile of ascending-sorted values. */
export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  // The epsilon keeps float error (0.999 * 1000 = 999.0000000000001) from moving the rank up one.
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length - 1e-9) - 1));
  return sorted[rank]!;
}

export function summarize(latenciesMs: number[], seconds: number, errors: number, statuses: Record<string, number>, offered?: number): LoadResult {
  const sorted = Float64Array.from(latenciesMs).sort();
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    ...(offered !== undefined ? { offered } : {}),
    throughput: Math.round(latenciesMs.length / seconds),
    requests: latenciesMs.length,
    errors,
    p50: round(percentile(sorted, 50)),
    p90: round(percentile(sorted, 90)),
    p99: round(percentile(sorted, 99)),
    p999: round(percentile(sorted, 99.9)),
    max: round(sorted.length > 0 ? sorted[sorted.length - 1]! : 0),
    statuses,
  };
}
