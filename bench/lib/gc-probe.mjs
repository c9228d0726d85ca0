// Preloaded into the server under test (node --import): records every GC pause (a
// PerformanceObserver on 'gc' entries, with when it started) and the bytes the V8 heap allocated
// (v8.GCProfiler's heap statistics around each collection). The old generation's growth is split
// in two: bytes scavenges promoted (objects that outlived two scavenges), and bytes allocated
// straight into old space between collections (node:http2's external header strings, code, maps):
// only a mark-compact frees either. On SIGUSR2 it writes what it has to $BENCH_GC_PROBE_FILE and
// starts over, so the bench reads exactly one measured run. Bench-only: the product does not load it.
import { writeFileSync, renameSync } from 'node:fs';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import process from 'node:process';
import v8 from 'node:v8';

const file = process.env.BENCH_GC_PROBE_FILE;
if (file) {
  const KINDS = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks',
  };
  let pauses = [];
  let since = performance.now();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ kind: KINDS[e.detail?.kind] ?? String(e.detail?.kind), ms: e.duration, atMs: Math.round(e.startTime - since) });
  }).observe({ entryTypes: ['gc'] });
  const OLD = new Set(['old_space', 'code_space', 'large_object_space', 'code_large_object_space']);
  const oldBytes = (h) => h.heapSpaceStatistics.reduce((n, x) => (OLD.has(x.spaceName) ? n + x.spaceUsedSize : n), 0);
  const oldNow = () => v8.getHeapSpaceStatistics().reduce((n, x) => (OLD.has(x.space_name) ? n + x.space_used_size : n), 0);
  let profiler = new v8.GCProfiler();
  profiler.start();
  let baseline = v8.getHeapStatistics().used_heap_size;
  let oldBaseline = oldNow();
  process.on('SIGUSR2', () => {
    const data = profiler.stop();
    const now = v8.getHeapStatistics().used_heap_size;
    // Allocated = growth between collections: from the last "after" (or the baseline) to the next "before".
    let allocated = 0;
    let from = baseline;
    // The old generation the same way, and what each scavenge moved into it.
    let oldAllocated = 0;
    let promoted = 0;
    let oldFrom = oldBaseline;
    for (const s of data?.statistics ?? []) {
      allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - from);
      from = s.afterGC.heapStatistics.usedHeapSize;
      oldAllocated += Math.max(0, oldBytes(s.beforeGC) - oldFrom);
      if (s.gcType === 'Scavenge') promoted += Math.max(0, oldBytes(s.afterGC) - oldBytes(s.beforeGC));
      oldFrom = oldBytes(s.afterGC);
    }
    allocated += Math.max(0, now - from);
    oldAllocated += Math.max(0, oldNow() - oldFrom);
    const out = { allocatedBytes: allocated, promotedBytes: promoted, oldAllocatedBytes: oldAllocated, pauses, heapUsed: now };
    writeFileSync(`${file}.tmp`, JSON.stringify(out));
    renameSync(`${file}.tmp`, file);
    pauses = [];
    since = performance.now();
    baseline = v8.getHeapStatistics().used_heap_size;
    oldBaseline = oldNow();
    profiler = new v8.GCProfiler();
    profiler.start();
  });
}
