// Servers with the load that drives them, for profiling one at a time (bench/profile.ts).
import type { Bench } from '../lib/bench.js';
import { buildPolicies, checkFixtures, checkRequest, oursCheckConfig } from '../lib/fixtures.js';
import { CHECK, RLS } from '../lib/ghz.js';
import { startBenchRedis } from '../lib/redis.js';
import { RLS_CONFIG, rlsOnlyConfig, rlsRequests } from './ratelimit.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startOurs, type Server } from '../lib/servers.js';

export interface ProfileTarget {
  method: { proto: string; call: string };
  data: unknown;
  start(profileDir: string): Promise<Server>;
  stop?(): Promise<void>;
}

export async function profileTargets(b: Bench): Promise<Record<string, ProfileTarget>> {
  const f = await checkFixtures(200);
  const { bundle } = buildPolicies(b.workDir, f, 100);
  const data = f.tokens.RS256.allow.map((t, i) => checkRequest(t, i));
  const rlsFile = join(b.workDir, 'rls.yaml');
  writeFileSync(rlsFile, RLS_CONFIG);
  return {
    'rls-memory': { method: RLS, data: rlsRequests(1000, 1), start: (profileDir) => startOurs(b.workDir, 'rls-memory', rlsOnlyConfig([rlsFile], { store: 'memory' }), { cpus: b.serverCpus, profileDir }) },
    'rls-redis': (() => {
      let stopRedis: (() => Promise<void>) | undefined;
      return {
        method: RLS,
        data: rlsRequests(1000, 1),
        start: async (profileDir: string) => {
          const redis = await startBenchRedis(b.loadCpus);
          stopRedis = () => redis.stop();
          return startOurs(b.workDir, 'rls-redis', rlsOnlyConfig([rlsFile], { store: 'redis' }, redis.url), { cpus: b.serverCpus, profileDir });
        },
        stop: () => stopRedis?.() ?? Promise.resolve(),
      };
    })(),
    check: { method: CHECK, data, start: (profileDir) => startOurs(b.workDir, 'check', oursCheckConfig(b.workDir, f, bundle, 10000), { cpus: b.serverCpus, profileDir }) },
    'check-nocache': { method: CHECK, data, start: (profileDir) => startOurs(b.workDir, 'check-nocache', oursCheckConfig(b.workDir, f, bundle, 0), { cpus: b.serverCpus, profileDir }) },
  };
}
