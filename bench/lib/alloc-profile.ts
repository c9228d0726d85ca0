// Where the bytes a Check allocates come from: a sampling heap profile (bench/lib/alloc-probe.mjs,
// collected objects included) summed by function (self) and by area, per call answered.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { areaOf, whereOf } from './profile.js';
import { ROOT } from './tools.js';

interface HeapNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: HeapNode[];
}

export interface AllocationSummary {
  calls: number;
  /** Sampled bytes per call (an estimate; the GC probe's figure is the measured one). */
  bytesPerCall: number;
  functions: { name: string; where: string; bytesPerCall: number; percent: number }[];
  areas: { area: string; bytesPerCall: number; percent: number }[];
  /** By area of the nearest caller in our code or a package: native and node: internals charged to whoever called them. */
  owners: { area: string; bytesPerCall: number; percent: number }[];
}

export interface AllocProbe {
  nodeArgs: string[];
  env: Record<string, string>;
  /** The profile since the last call, then sampling starts over. */
  take(pid: number): Promise<HeapNode>;
}

export function allocProbe(workDir: string): AllocProbe {
  const file = join(workDir, 'alloc-profile.json');
  return {
    nodeArgs: ['--import', join(ROOT, 'bench', 'lib', 'alloc-probe.mjs')],
    env: { BENCH_ALLOC_PROFILE_FILE: file },
    take: async (pid) => {
      rmSync(file, { force: true });
      process.kill(pid, 'SIGUSR2');
      const until = Date.now() + 30_000;
      while (!existsSync(file)) {
        if (Date.now() > until) throw new Error(`allocation probe of process ${pid} wrote no ${file} within 30 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return (JSON.parse(readFileSync(file, 'utf8')) as { head: HeapNode }).head;
    },
  };
}

export function summarizeAllocations(head: HeapNode, calls: number, top = 15): AllocationSummary {
  const byFn = new Map<string, { name: string; where: string; bytes: number }>();
  const byArea = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let total = 0;
  const stack: { n: HeapNode; owner: string }[] = [{ n: head, owner: '(node: internals, called from the event loop)' }];
  while (stack.length) {
    const { n, owner: callerOwner } = stack.pop()!;
    const own = areaOf(n.callFrame.url, n.callFrame.functionName || '(anonymous)');
    const owner = n.callFrame.url.startsWith('node:') || n.callFrame.url === '' ? callerOwner : own;
    for (const c of n.children) stack.push({ n: c, owner });
    if (n.selfSize === 0) continue;
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + n.selfSize);
    total += n.selfSize;
    const { functionName, url, lineNumber } = n.callFrame;
    const name = functionName || '(anonymous)';
    const where = whereOf(url, lineNumber);
    const key = `${name}@${where}`;
    const e = byFn.get(key) ?? { name, where, bytes: 0 };
    e.bytes += n.selfSize;
    byFn.set(key, e);
    byArea.set(own, (byArea.get(own) ?? 0) + n.selfSize);
  }
  const per = (b: number): number => Math.round(b / Math.max(1, calls));
  const pct = (b: number): number => Math.round((b / (total || 1)) * 1000) / 10;
  const rank = (m: Map<string, number>): AllocationSummary['areas'] => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([area, b]) => ({ area, bytesPerCall: per(b), percent: pct(b) }));
  return {
    calls,
    bytesPerCall: per(total),
    functions: [...byFn.values()].sort((a, b) => b.bytes - a.bytes).slice(0, top).map((e) => ({ name: e.name, where: e.where, bytesPerCall: per(e.bytes), percent: pct(e.bytes) })),
    areas: rank(byArea),
    owners: rank(byOwner),
  };
}
