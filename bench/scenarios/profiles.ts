// CPU profiles of envoy-authz under load, in runs of their own (profiling slows a server down,
// so no measured run is profiled): Check with the token cache on and off, ShouldRateLimit on
// memory and on Redis at max throughput, and Check at 1,000 calls/s (where fixed per-call
// costs show). The summaries count only the samples taken during the load run, not the
// process's start-up or warm-up. Summaries go into the results; the raw .cpuprofile files stay in
// bench/results/profiles/ (not in git) for Chrome DevTools or speedscope.
import { join } from 'node:path';
import { measure, warmUp, type Bench } from '../lib/bench.js';
import { latestProfile, monotonicUs, summarizeProfile, type ProfileSummary, type ProfileWindow } from '../lib/profile.js';
import { profileTargets } from './targets.js';

const RUNS: { name: string; target: string; rps?: number }[] = [
  { name: 'check-cache-max', target: 'check' },
  { name: 'check-nocache-max', target: 'check-nocache' },
  { name: 'check-cache-1000rps', target: 'check', rps: 1000 },
  { name: 'rls-memory-max', target: 'rls-memory' },
  { name: 'rls-redis-max', target: 'rls-redis' },
];

export async function runProfiles(b: Bench): Promise<Record<string, ProfileSummary>> {
  const targets = await profileTargets(b);
  const out: Record<string, ProfileSummary> = {};
  for (const run of RUNS) {
    const t = targets[run.target]!;
    const dir = join(b.resultsDir, 'profiles', run.name);
    const server = await t.start(dir);
    let window: ProfileWindow | undefined;
    try {
      const load = { method: t.method, address: server.address, data: t.data, ...(run.rps !== undefined ? { rps: run.rps } : {}) };
      await warmUp(b, load);
      const fromUs = monotonicUs();
      await measure(b, `profile ${run.name}`, load);
      window = { fromUs, toUs: monotonicUs() };
    } finally {
      await server.stop();
      await t.stop?.();
    }
    const file = latestProfile(dir);
    if (file) out[run.name] = { ...summarizeProfile(file, 15, window), file: file.slice(file.indexOf('bench/results/')) };
  }
  return out;
}
