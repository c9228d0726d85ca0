// The CPU profile summaries of docs/performance.md: a window on the monotonic clock keeps only the
// samples of the load run (a profile of the whole process also holds its start-up), and that
// clock is the one V8 stamps a real profile with.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hitsByNode, latestProfile, summarizeProfile, type CpuProfile } from '../../../bench/lib/profile.js';

const dir = mkdtempSync(join(tmpdir(), 'profile-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two functions: `startUp` sampled in the first 3 ms, `handler` (ours) in the next 4 ms.
const PROFILE = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 }, hitCount: 0 },
    { id: 2, callFrame: { functionName: 'startUp', url: 'node:internal/modules/esm/loader', lineNumber: 9 }, hitCount: 3 },
    { id: 3, callFrame: { functionName: 'handler', url: 'file:///app/dist/src/server/transport.js', lineNumber: 41 }, hitCount: 4 },
  ],
  startTime: 1_000_000,
  endTime: 1_007_000,
  samples: [2, 2, 2, 3, 3, 3, 3],
  timeDeltas: [500, 1000, 1000, 1000, 1000, 1000, 1000],
};

describe('CPU profile summaries', () => {
  it('counts every sample without a window, and only the window\'s with one', () => {
    expect([...hitsByNode(PROFILE).entries()]).toEqual([
      [2, 3],
      [3, 4],
    ]);
    // Samples at 1,000,500 / 1,501,500 ... : the window from 1,003,000 holds the last four.
    expect([...hitsByNode(PROFILE, { fromUs: 1_003_000, toUs: 1_007_000 }).entries()]).toEqual([[3, 4]]);
    expect([...hitsByNode(PROFILE, { fromUs: 1_002_000, toUs: 1_004_000 }).entries()]).toEqual([
      [2, 1],
      [3, 1],
    ]);
    expect(hitsByNode(PROFILE, { fromUs: 2_000_000, toUs: 3_000_000 }).size).toBe(0);
  });

  it('summarizes the window by area and function, and says so', () => {
    const file = join(dir, 'synthetic.cpuprofile');
    writeFileSync(file, JSON.stringify(PROFILE));
    const whole = summarizeProfile(file);
    expect(whole.loadRunOnly).toBeUndefined();
    expect(whole.seconds).toBe(0);
    expect(whole.areas).toEqual([
      { area: 'src/server', percent: 57.1 },
      { area: 'node: internals', percent: 42.9 },
    ]);
    const run = summarizeProfile(file, 15, { fromUs: 1_003_000, toUs: 1_007_000 });
    expect(run.loadRunOnly).toBe(true);
    expect(run.areas).toEqual([{ area: 'src/server', percent: 100 }]);
    expect(run.functions).toEqual([{ name: 'handler', where: 'dist/src/server/transport.js:42', percent: 100 }]);
  });

  it('windows a real profile with the clock its samples carry', () => {
    // A child spins 400 ms, printing the monotonic clock (us) half way: its own process, as the servers are.
    const child = join(dir, 'child');
    const out = execFileSync(process.execPath, ['--cpu-prof', '--cpu-prof-dir', child, '-e', 'const spin = (ms) => { const t = Date.now(); while (Date.now() - t < ms); }; spin(200); console.log(String(process.hrtime.bigint() / 1000n)); spin(200);']).toString();
    const mid = Number(out.trim());
    const p = JSON.parse(readFileSync(latestProfile(child)!, 'utf8')) as CpuProfile;
    const count = (hits: Map<number, number>): number => [...hits.values()].reduce((s, h) => s + h, 0);
    const total = count(hitsByNode(p));
    const first = count(hitsByNode(p, { fromUs: 0, toUs: mid }));
    expect(total).toBeGreaterThan(100);
    // Each half of the spin holds about half of the samples: had the clocks differed, a window on
    // the child's clock would hold all of them or none.
    expect(first / total).toBeGreaterThan(0.2);
    expect(first / total).toBeLessThan(0.8);
  });
});
