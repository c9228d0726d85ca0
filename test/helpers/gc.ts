import v8 from 'node:v8';

type Space = { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
const oldSpace = (s: Space): number => s.heapSpaceStatistics.find((x) => x.spaceName === 'old_space')!.spaceUsedSize;

/**
 * What `work` did to the heap: bytes allocated (the heap's growth between collections, as
 * bench/lib/gc-probe.mjs counts it) and old-space bytes gained in its scavenges (what survived
 * them: promoted).
 */
export async function heapDuring(work: () => Promise<void>): Promise<{ allocated: number; promoted: number }> {
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  await work();
  let allocated = 0;
  let promoted = 0;
  let from = before;
  for (const s of profiler.stop().statistics) {
    allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - from);
    from = s.afterGC.heapStatistics.usedHeapSize;
    if (s.gcType === 'Scavenge') promoted += Math.max(0, oldSpace(s.afterGC) - oldSpace(s.beforeGC));
  }
  allocated += Math.max(0, v8.getHeapStatistics().used_heap_size - from);
  return { allocated, promoted };
}

/** Old-space bytes gained in the scavenges that ran during `work` (what survived them: promoted). */
export async function promotedDuring(work: () => Promise<void>): Promise<number> {
  return (await heapDuring(work)).promoted;
}

/**
 * Bytes allocated per call by `run(calls)`, measured after a warm-up run of its own (compiling
 * and feedback allocate too).
 */
export async function allocatedPerCall(run: (calls: number) => void, calls: number, warmCalls = Math.ceil(calls / 4)): Promise<number> {
  run(warmCalls);
  return (await heapDuring(() => Promise.resolve(run(calls)))).allocated / calls;
}
