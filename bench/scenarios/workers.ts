// All cores: Check (JWT + Rego, cache on) with 1 and with 2 worker processes behind one port
// (server.workers). Nothing is pinned here: on a two-core machine the load generator and Redis
// share both cores with the workers, so this shows how far a second worker carries, not a clean 2x.
import { measureMedian, warmUp, type Bench } from '../lib/bench.js';
import { buildPolicies, checkFixtures, checkRequest, oursCheckConfig } from '../lib/fixtures.js';
import { CHECK } from '../lib/ghz.js';
import { startBenchRedis } from '../lib/redis.js';
import { startOurs } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';

export interface WorkersResults {
  cpus: string;
  runs: { workers: number; result: LoadResult }[];
}

export async function runWorkers(b: Bench): Promise<WorkersResults> {
  const cpus = `${b.serverCpus},${b.loadCpus}`;
  const f = await checkFixtures(b.quick ? 50 : 1000);
  const { bundle } = buildPolicies(b.workDir, f, 100);
  const data = f.tokens.ES256.allow.map((t, i) => checkRequest(t, i));
  const redis = await startBenchRedis(cpus);
  const runs: WorkersResults['runs'] = [];
  try {
    for (const workers of [1, 2]) {
      // Shared state, as more than one worker requires (the same for one, to compare like with like).
      const config = { ...oursCheckConfig(b.workDir, f, bundle, 10000), server: { workers }, ratelimit: { store: 'redis' }, revocation: { store: 'redis' }, redis: { url: redis.url } };
      const server = await startOurs(b.workDir, `workers-${workers}`, config, { cpus });
      try {
        // The port opens with the first worker; give the others time to start.
        await new Promise((r) => setTimeout(r, 3000));
        // More connections than workers: the primary hands out connections, not calls.
        const load = { method: CHECK, address: server.address, data, connections: 8, concurrency: 64, cpus };
        await warmUp(b, load);
        runs.push({ workers, result: await measureMedian(b, `${workers} worker${workers > 1 ? 's' : ''}`, load) });
      } finally {
        await server.stop();
      }
    }
  } finally {
    await redis.stop();
  }
  return { cpus, runs };
}
