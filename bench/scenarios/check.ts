// Check with a JWT (RS256, ES256) and an RBAC Rego policy, allow and deny: envoy-authz (verified-
// token cache on, as shipped, and off) against the OPA Go peer verifying the JWT in Rego (OPA's
// defaults: no verified-token cache; and with its io_jwt cache on), and against the empty
// grpc-js handler (the floor).
import { measure, measureMedian, warmUp, type Bench } from '../lib/bench.js';
import { buildPolicies, checkFixtures, checkRequest, oursCheckConfig, type Alg } from '../lib/fixtures.js';
import { CHECK } from '../lib/ghz.js';
import { startFloor, startOpaPeer, startOurs, type Server } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';

export type CheckServer = 'ours' | 'ours_nocache' | 'peer' | 'peer_cache';
export interface CheckResults {
  tokens: number;
  roles: number;
  /** max[alg][outcome][server] */
  max: Record<Alg, Record<'allow' | 'deny', Record<CheckServer, LoadResult>>>;
  floor: LoadResult;
  /** The floor at the same fixed offered loads as the RS256 latency runs (CPU per call at low load). */
  floorLoads?: LoadResult[];
  /** Fixed offered loads (fractions of the peer's max), allow: loads[alg][server][] */
  loads: Record<Alg, Record<CheckServer, LoadResult[]>>;
  fractions: number[];
}

const FRACTIONS = [0.25, 0.5, 0.75, 1];

export async function runCheck(b: Bench): Promise<CheckResults> {
  const tokens = b.quick ? 50 : 1000;
  const roles = 100;
  b.log(`check: ${tokens} distinct tokens per algorithm and outcome, ${roles} roles`);
  const f = await checkFixtures(tokens);
  const { bundle, peerDir } = buildPolicies(b.workDir, f, roles);
  const data = (alg: Alg, outcome: 'allow' | 'deny'): unknown[] => f.tokens[alg][outcome].map((t, i) => checkRequest(t, i));

  const starters: Record<CheckServer, () => Promise<Server>> = {
    ours: () => startOurs(b.workDir, 'check', oursCheckConfig(b.workDir, f, bundle, 10000), { cpus: b.serverCpus }),
    ours_nocache: () => startOurs(b.workDir, 'check-nocache', oursCheckConfig(b.workDir, f, bundle, 0), { cpus: b.serverCpus }),
    peer: () => startOpaPeer(peerDir, b.serverCpus),
    peer_cache: () => startOpaPeer(peerDir, b.serverCpus, 10000),
  };
  const max = { RS256: { allow: {}, deny: {} }, ES256: { allow: {}, deny: {} } } as CheckResults['max'];
  const loads = { RS256: {}, ES256: {} } as CheckResults['loads'];
  // The peer first: its max throughput sets the offered loads of everyone's latency runs.
  for (const name of ['peer', 'peer_cache', 'ours', 'ours_nocache'] as const) {
    const server = await starters[name]();
    try {
      await warmUp(b, { method: CHECK, address: server.address, data: data('RS256', 'allow') });
      for (const alg of ['RS256', 'ES256'] as const) {
        for (const outcome of ['allow', 'deny'] as const) {
          max[alg][outcome][name] = await measureMedian(b, `${name} ${alg} ${outcome}`, { method: CHECK, address: server.address, data: data(alg, outcome) }, { server: server.pid });
        }
        const peerMax = max[alg].allow.peer.throughput;
        loads[alg][name] = [];
        for (const fr of FRACTIONS) {
          loads[alg][name].push(await measure(b, `${name} ${alg} allow`, { method: CHECK, address: server.address, data: data(alg, 'allow'), rps: Math.max(100, Math.round(peerMax * fr)) }, { server: server.pid }));
        }
      }
    } finally {
      await server.stop();
    }
  }
  const floorServer = await startFloor(b.serverCpus);
  let floor: LoadResult;
  const floorLoads: LoadResult[] = [];
  try {
    const load = { method: CHECK, address: floorServer.address, data: data('RS256', 'allow') };
    await warmUp(b, load);
    floor = await measureMedian(b, 'floor (empty grpc-js Check)', load, { server: floorServer.pid });
    for (const r of loads.RS256.peer) floorLoads.push(await measure(b, 'floor (empty grpc-js Check)', { ...load, rps: r.offered ?? 100 }, { server: floorServer.pid }));
  } finally {
    await floorServer.stop();
  }
  return { tokens, roles, max, floor, floorLoads, loads, fractions: FRACTIONS };
}
