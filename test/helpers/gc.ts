import v8 from 'node:v8';

type Space = { heapSpaceStatistics: { spaceName: string; spaceUsedSize: number }[] };
const oldSpace = (s: Space): number => s.heapSpaceStatistics.find((x) => x.spaceName === 'old_space')!.spaceUsedSize;

/** Old-space bytes gained in the scavenges that ran during `work` (what survived them: promoted). */
export async function promotedDuring(work: () => Promise<void>): Promise<number> {
  const profiler = new v8.GCProfiler();
  profiler.start();
  await work();
  let promoted = 0;
  for (const s of profiler.stop().statistics) if (s.gcType === 'Scavenge') promoted += Math.max(0, oldSpace(s.afterGC) - oldSpace(s.beforeGC));
  return promoted;
}
