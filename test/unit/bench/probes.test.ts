// The bench's GC and allocation probes, preloaded into a real node process as the bench preloads
// them into envoy-authz: what they report must be what the process did, or the GC and allocation
// targets in docs/performance.md mean nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { allocProbe, summarizeAllocations } from '../../../bench/lib/alloc-profile.js';
import { spreadPercent } from '../../../bench/lib/bench.js';
import { gcDistribution, gcProbe } from '../../../bench/lib/gc.js';
import { tempDir } from '../../helpers/tmp.js';

const tmp = tempDir();
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});

/** A node process with the probe loaded that allocates ~`mb` MB of short-lived objects in makeGarbage() (kept in a ring, so that the optimizer cannot elide them), says "ready", then idles. */
async function allocating(probe: { nodeArgs: string[]; env: Record<string, string> }, mb: number): Promise<number> {
  const script = tmp.write(
    `garbage-${children.length}.mjs`,
    `const ring = new Array(1024);
     function makeGarbage(n) { for (let i = 0; i < n; i++) ring[i & 1023] = { a: i, b: [i, i + 1, i + 2] }; }
     makeGarbage(${Math.round((mb * 1e6) / 64)});
     process.stdout.write('ready\\n');
     setInterval(() => {}, 1000);`,
  );
  const child = spawn(process.execPath, [...probe.nodeArgs, script], { env: { ...process.env, ...probe.env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout, 'data');
  return child.pid!;
}

describe('bench probes', () => {
  it('the GC probe reports the bytes a process allocated and its pauses, and starts over on each read', async () => {
    const probe = gcProbe(tmp.dir, 'test');
    const pid = await allocating(probe, 64);
    const first = gcDistribution(await probe.take(pid), 1);
    // 64 MB of objects of about 64 bytes each (an object with an array of three small integers).
    expect(first.allocatedBytes).toBeGreaterThan(40e6);
    expect(first.allocatedBytes).toBeLessThan(400e6);
    expect(first.gcs).toBeGreaterThan(0);
    expect(first.byKind.scavenge?.count).toBeGreaterThan(0);
    expect(first.maxPauseMs).toBeGreaterThan(0);
    const second = await probe.take(pid);
    expect(second.allocatedBytes).toBeLessThan(first.allocatedBytes / 10);
  });

  it('the GC probe tells bytes promoted by scavenges from bytes allocated straight into old space, and times each pause', async () => {
    // Three processes: short-lived garbage (neither), objects kept across scavenges (promoted), and
    // property names never seen before (internalized strings and a dictionary: old space at once,
    // as node:http2's external header strings are).
    const run = async (name: string, body: string): Promise<ReturnType<typeof gcDistribution>> => {
      const probe = gcProbe(tmp.dir, name);
      const script = tmp.write(`${name}.mjs`, `const keep = []; ${body}; process.stdout.write('ready\\n'); setInterval(() => keep.length, 1000);`);
      const child = spawn(process.execPath, [...probe.nodeArgs, script], { env: { ...process.env, ...probe.env }, stdio: ['ignore', 'pipe', 'inherit'] });
      children.push(child);
      await once(child.stdout, 'data');
      return gcDistribution(await probe.take(child.pid!), 1);
    };
    const garbage = await run('garbage', 'const ring = new Array(1024); for (let i = 0; i < 1e6; i++) ring[i & 1023] = { a: i, b: [i] }');
    const promoted = await run('promoted', 'for (let i = 0; i < 300000; i++) keep.push({ a: i, b: [i] })');
    const old = await run('old', "const o = {}; for (let i = 0; i < 200000; i++) o['key-' + i + '-' + Math.random().toString(36).slice(2)] = 1; keep.push(o)");
    expect(garbage.promotedBytesPerCall).toBeLessThan(2e6);
    expect(garbage.oldAllocatedBytesPerCall).toBeLessThan(2e6);
    expect(promoted.promotedBytesPerCall).toBeGreaterThan(8e6);
    expect(promoted.oldAllocatedBytesPerCall).toBeLessThan(promoted.promotedBytesPerCall / 4);
    expect(old.oldAllocatedBytesPerCall).toBeGreaterThan(8e6);
    // Every pause has its start, within the process's life, in order.
    const probe = gcProbe(tmp.dir, 'times');
    const pid = await allocating(probe, 32);
    const pauses = (JSON.parse(JSON.stringify(await probe.take(pid))) as { pauses: { atMs?: number }[] }).pauses;
    expect(pauses.length).toBeGreaterThan(0);
    const at = pauses.map((p) => p.atMs!);
    expect(at.every((t) => Number.isFinite(t) && t >= 0 && t < 60_000)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  });

  it('the allocation profile charges the bytes to the function that allocated them', async () => {
    const probe = allocProbe(tmp.dir);
    const pid = await allocating(probe, 32);
    const s = summarizeAllocations(await probe.take(pid), 1);
    expect(s.functions[0]?.name).toBe('makeGarbage');
    expect(s.functions[0]!.bytesPerCall).toBeGreaterThan(16e6);
    expect(s.bytesPerCall).toBeGreaterThan(16e6);
  });

  it('spread of runs is (max - min) / median, in percent', () => {
    expect(spreadPercent([100, 95, 105])).toBe(10);
    expect(spreadPercent([1000, 1000, 1000])).toBe(0);
    expect(spreadPercent([42])).toBe(0);
  });
});
