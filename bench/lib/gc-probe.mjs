// Preloaded into the server under test (node --import): records every GC pause (a
// PerformanceObserver on 'gc' entries) and the bytes the V8 heap allocated (v8.GCProfiler's
// heap statistics around each collection). On SIGUSR2 it writes what it has to
// $BENCH_GC_PROBE_FILE and starts over, so the bench reads exactly one measured run.
// Bench-only: the product does not load it.
import { writeFileSync, renameSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
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
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) pauses.push({ kind: KINDS[e.detail?.kind] ?? String(e.detail?.kind), ms: e.duration });
  }).observe({ entryTypes: ['gc'] });
  let profiler = new v8.GCProfiler();
  profiler.start();
  let baseline = v8.getHeapStatistics().used_heap_size;
  process.on('SIGUSR2', () => {
    const data = profiler.stop();
    const now = v8.getHeapStatistics().used_heap_size;
    // Allocated = growth between collections: from the last "after" (or the baseline) to the next "before".
    let allocated = 0;
    let from = baseline;
    for (const s of data?.statistics ?? []) {
      allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - from);
      from = s.afterGC.heapStatistics.usedHeapSize;
    }
    allocated += Math.max(0, now - from);
    const out = { allocatedBytes: allocated, pauses, heapUsed: now };
    writeFileSync(`${file}.tmp`, JSON.stringify(out));
    renameSync(`${file}.tmp`, file);
    pauses = [];
    baseline = v8.getHeapStatistics().used_heap_size;
    profiler = new v8.GCProfiler();
    profiler.start();
  });
}
