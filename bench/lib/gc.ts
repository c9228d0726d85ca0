// GC pauses and bytes allocated by a server under test, from bench/lib/gc-probe.mjs preloaded
// into it (node --import): SIGUSR2 makes the probe write what it saw since the last signal and
// start over, so one signal before and one after a run frame exactly that run. Our servers only:
// the Go peers' collectors run concurrently and have no such probe.
//
// What the probe costs: a PerformanceObserver entry per collection and V8's heap statistics
// around it (v8.GCProfiler), nothing per call. Every check run measures it (CheckResults.probeCost).
// Measured once by hand, 2026-11-30, on the shared 2-core VM (load average 4.5): two servers
// (RS256 allow, cache on, max), four alternating 5 s runs each: without 1,190-1,372 calls/s at
// 596-710 us CPU/call, with 1,021-1,336 calls/s at 561-727 us/call - no difference beyond the
// run-to-run spread.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './stats.js';
import { ROOT } from './tools.js';

export interface GcPause {
  /** scavenge | mark-compact | incremental | weak-callbacks */
  kind: string;
  ms: number;
  /** When it started, ms after the probe started over. */
  atMs?: number;
}

interface Snapshot {
  allocatedBytes: number;
  /** Old-generation growth: what scavenges promoted, and what was allocated straight into old space. */
  promotedBytes?: number;
  oldAllocatedBytes?: number;
  pauses: GcPause[];
  heapUsed: number;
}

/** What every measured run of ours reports. */
export interface GcStats {
  bytesPerCall: number;
  gcs: number;
  maxPauseMs: number;
  pausesOver5ms: number;
}

/** The distribution the dedicated GC run reports. */
export interface GcDistribution extends GcStats {
  allocatedBytes: number;
  /** Pauses per kind: count, total and longest. */
  byKind: Record<string, { count: number; totalMs: number; maxMs: number }>;
  p50PauseMs: number;
  p99PauseMs: number;
  totalPauseMs: number;
  /** Heap in use when the run ended. */
  heapUsedMiB: number;
  /**
   * What grows the old generation, per call: bytes scavenges promoted (objects that outlived two
   * scavenges) and bytes allocated straight into old space (node:http2 makes every request header
   * value an external string there). Only a mark-compact frees them: together they set how often
   * one comes.
   */
  promotedBytesPerCall: number;
  oldAllocatedBytesPerCall: number;
  /** The pauses over PAUSE_LIMIT_MS: kind, length and when (s into the run). */
  longPauses: { kind: string; ms: number; atS?: number }[];
}

export const PAUSE_LIMIT_MS = 5;

export interface GcProbe {
  /** Node flags and environment that load the probe into the server. */
  nodeArgs: string[];
  env: Record<string, string>;
  /** What the probe saw since the last call (or since start), then starts over. */
  take(pid: number): Promise<Snapshot>;
}

export function gcProbe(workDir: string, name: string): GcProbe {
  const file = join(workDir, `gc-${name}.json`);
  return {
    nodeArgs: ['--import', join(ROOT, 'bench', 'lib', 'gc-probe.mjs')],
    env: { BENCH_GC_PROBE_FILE: file },
    take: async (pid) => {
      rmSync(file, { force: true });
      process.kill(pid, 'SIGUSR2');
      const until = Date.now() + 10_000;
      while (!existsSync(file)) {
        if (Date.now() > until) throw new Error(`GC probe of process ${pid} wrote no ${file} within 10 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    },
  };
}

const round = (v: number, digits = 2): number => Math.round(v * 10 ** digits) / 10 ** digits;

export function gcStats(s: Snapshot, calls: number): GcStats {
  return {
    bytesPerCall: Math.round(s.allocatedBytes / Math.max(1, calls)),
    gcs: s.pauses.length,
    maxPauseMs: round(s.pauses.reduce((m, p) => Math.max(m, p.ms), 0)),
    pausesOver5ms: s.pauses.filter((p) => p.ms > PAUSE_LIMIT_MS).length,
  };
}

export function gcDistribution(s: Snapshot, calls: number): GcDistribution {
  const byKind: GcDistribution['byKind'] = {};
  for (const p of s.pauses) {
    const k = (byKind[p.kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
    k.count++;
    k.totalMs = round(k.totalMs + p.ms);
    k.maxMs = round(Math.max(k.maxMs, p.ms));
  }
  const sorted = s.pauses.map((p) => p.ms).sort((a, b) => a - b);
  return {
    ...gcStats(s, calls),
    allocatedBytes: s.allocatedBytes,
    byKind,
    p50PauseMs: round(percentile(sorted, 50) || 0),
    p99PauseMs: round(percentile(sorted, 99) || 0),
    totalPauseMs: round(sorted.reduce((a, b) => a + b, 0)),
    heapUsedMiB: round(s.heapUsed / 2 ** 20, 1),
    promotedBytesPerCall: Math.round((s.promotedBytes ?? 0) / Math.max(1, calls)),
    oldAllocatedBytesPerCall: Math.round((s.oldAllocatedBytes ?? 0) / Math.max(1, calls)),
    longPauses: s.pauses.filter((p) => p.ms > PAUSE_LIMIT_MS).map((p) => ({ kind: p.kind, ms: round(p.ms), ...(p.atMs !== undefined ? { atS: round(p.atMs / 1000, 1) } : {}) })),
  };
}

/** "n KB/call, g GCs, max m ms, k > 5 ms" for the log. */
export function describeGc(g: GcStats): string {
  return `${Math.round(g.bytesPerCall / 100) / 10} KB/call, ${g.gcs} GCs, max pause ${g.maxPauseMs} ms, ${g.pausesOver5ms} over ${PAUSE_LIMIT_MS} ms`;
}
