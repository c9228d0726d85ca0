// Check with a JWT (RS256, ES256) and an RBAC Rego policy, allow and deny: envoy-authz (verified-
// token cache on, as shipped, and off) against the OPA peer verifying the JWT in Rego (OPA's
// defaults: no verified-token cache; and with its io_jwt cache on), and against the empty
// grpc-js handler (the floor). The peer is the real opa-envoy-plugin when `make bench` could
// build it (Makefile: opa-envoy-plugin), else its stand-in bench/peers/opa-authz; when the real
// one ran, the stand-in is measured once beside it so that its older figures can be translated.
// Every run of ours also reports bytes allocated per call and GC pauses (bench/lib/gc.ts), and
// one long run at half the peer's max, on a server of its own after a warm-up at that load (the
// steady state of a long-running server, see runGc), reports the pause distribution.
//
// opa-envoy-plugin v1.19.1-envoy accepts OPA's io_jwt cache setting but hands OPA no inter-query
// value cache when it evaluates (internal/internal.go: interQueryValueCache is never set), so its
// "io_jwt cache on" rows verify every token as its defaults do; the stand-in's cache works.
import { measure, measureInTurn, ratio, warmUp, type Bench, type CpuOf, type MeasureOptions } from '../lib/bench.js';
import { assertCheckAnswers } from '../lib/answers.js';
import { buildPolicies, checkFixtures, checkRequest, oursCheckConfig, type Alg } from '../lib/fixtures.js';
import { allocProbe, summarizeAllocations, type AllocationSummary } from '../lib/alloc-profile.js';
import { gcDistribution, gcProbe, type GcDistribution, type GcProbe } from '../lib/gc.js';
import { CHECK } from '../lib/ghz.js';
import { pluginBinary, pluginPeer, standInPeer, startFloor, startOpaPeer, startOurs, startPluginPeer, type CheckPeer, type Server } from '../lib/servers.js';
import type { LoadResult } from '../lib/stats.js';
import { ALLOCATION_BASELINE } from '../lib/targets.js';

export type CheckServer = 'ours' | 'ours_nocache' | 'peer' | 'peer_cache';
type PeerServer = 'peer' | 'peer_cache';

/** The stand-in beside the real plugin, runs in turn: RS256 allow, max throughput (median of 3), OPA defaults and io_jwt cache on. */
export interface StandInComparison {
  peer: CheckPeer;
  /** The real plugin's runs of this comparison (not the max table's, measured minutes apart). */
  real: Record<PeerServer, LoadResult>;
  max: Record<PeerServer, LoadResult>;
  /** Real plugin / stand-in: throughput, and server CPU per call. */
  throughputRatio: Record<PeerServer, number>;
  cpuRatio: Record<PeerServer, number>;
}

/** The long run at a fixed share of the peer's max (RS256 allow, token cache on, as shipped), after its warm-up. */
export interface GcRun {
  fraction: number;
  seconds: number;
  result: LoadResult;
  gc: GcDistribution;
  /** The warm-up at the same load on the same (fresh) server, in chunks: a fresh heap's first mark-compacts are here, not in the run. */
  warmup?: { seconds: number; markCompacts: number; chunks: { result: LoadResult; gc: GcDistribution }[] };
}

export interface CheckResults {
  tokens: number;
  roles: number;
  /** Which program was the peer (`peer`, `peer_cache` rows). */
  peer: CheckPeer;
  /** max[alg][outcome][server] */
  max: Record<Alg, Record<'allow' | 'deny', Record<CheckServer, LoadResult>>>;
  /** The floor's max (RS256 allow), measured in turn with the four servers' max runs. */
  floor: LoadResult;
  /** True when `floor` was measured in turn with the max runs (older results measured it alone, last). */
  floorInTurn?: boolean;
  /**
   * The floor at the same fixed offered loads as the latency runs, measured in turn with them: what
   * an empty gRPC handler's own p99.9 is at those loads (and its CPU per call at low load).
   */
  floorLoads?: Partial<Record<Alg, LoadResult[]>>;
  /** Fixed offered loads (fractions of the peer's max), allow: loads[alg][server][] */
  loads: Record<Alg, Record<CheckServer, LoadResult[]>>;
  fractions: number[];
  /** Only when the real plugin was the peer. */
  standIn?: StandInComparison;
  gcRun?: GcRun;
  /** The same GC run protocol on the floor (empty grpc-js handler, the node options we ship): the pauses of gRPC on node:http2 alone. */
  floorGcRun?: GcRun;
  /** Bytes per Check at the allocation baseline's load (ALLOCATION_BASELINE.rps), on the GC run's server after its run. */
  allocationAtBaseline?: { seconds: number; result: LoadResult; gc: GcDistribution };
  /** RS256 allow max of ours (cache on) with and without the GC probe, runs in turn; the median run of each by CPU per call. */
  probeCost?: { without: LoadResult; with: LoadResult };
  /** Where the bytes go: a sampling heap profile of ours in a run of its own, same load as gcRun. */
  allocations?: AllocationSummary & { result: LoadResult };
}

const FRACTIONS = [0.25, 0.5, 0.75, 1];
const GC_FRACTION = 0.5;
const CACHE_ENTRIES = 10000;

export async function runCheck(b: Bench): Promise<CheckResults> {
  const tokens = b.quick ? 50 : 1000;
  const roles = 100;
  const plugin = pluginBinary();
  const peer = plugin ? pluginPeer(plugin) : standInPeer();
  b.log(`check: ${tokens} distinct tokens per algorithm and outcome, ${roles} roles; peer: ${peer.name} ${peer.version}`);
  const f = await checkFixtures(tokens);
  const { bundle, peerDir } = buildPolicies(b.workDir, f, roles);
  const data = (alg: Alg, outcome: 'allow' | 'deny'): unknown[] => f.tokens[alg][outcome].map((t, i) => checkRequest(t, i));

  const probes: Partial<Record<CheckServer, GcProbe>> = { ours: gcProbe(b.workDir, 'ours'), ours_nocache: gcProbe(b.workDir, 'ours_nocache') };
  const ours = (name: string, cache: number, probe?: Pick<GcProbe, 'nodeArgs' | 'env'>): Promise<Server> =>
    startOurs(b.workDir, name, oursCheckConfig(b.workDir, f, bundle, cache), { cpus: b.serverCpus, ...(probe ? { nodeArgs: probe.nodeArgs, env: probe.env } : {}) });
  const startPeer = (cache: number): Promise<Server> => (plugin ? startPluginPeer(plugin, b.workDir, peerDir, b.serverCpus, cache) : startOpaPeer(peerDir, b.serverCpus, cache));
  const starters: Record<CheckServer, () => Promise<Server>> = {
    ours: () => ours('check', CACHE_ENTRIES, probes.ours),
    ours_nocache: () => ours('check-nocache', 0, probes.ours_nocache),
    peer: () => startPeer(0),
    peer_cache: () => startPeer(CACHE_ENTRIES),
  };
  const started = async (name: string, start: () => Promise<Server>): Promise<Server> => {
    const server = await start();
    try {
      await assertCheckAnswers(name, server.address, checkRequest(f.tokens.RS256.allow[0]!), checkRequest(f.tokens.RS256.deny[0]!));
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  };
  /** Two servers started side by side (both on the server core, loaded one at a time), both stopped after `use`. */
  const pair = async (aName: string, a: () => Promise<Server>, bName: string, b2: () => Promise<Server>, use: (a: Server, b: Server) => Promise<void>): Promise<void> => {
    const first = await started(aName, a);
    try {
      const second = await started(bName, b2);
      try {
        await use(first, second);
      } finally {
        await second.stop();
      }
    } finally {
      await first.stop();
    }
  };

  const max = { RS256: { allow: {}, deny: {} }, ES256: { allow: {}, deny: {} } } as CheckResults['max'];
  const loads = { RS256: {}, ES256: {} } as CheckResults['loads'];
  let gcRun: GcRun | undefined;
  let floorGcRun: GcRun | undefined;
  let allocationAtBaseline: CheckResults['allocationAtBaseline'];
  // The peer first: its max throughput sets the offered loads of everyone's latency runs.
  const names = ['peer', 'peer_cache', 'ours', 'ours_nocache'] as const;
  const cpuOf = (name: CheckServer, server: Server): CpuOf => {
    const probe = probes[name];
    return { server: server.pid, ...(probe ? { gc: probe } : {}) };
  };
  // Max throughput: the four servers side by side (each loaded alone), in turn run by run, so that
  // drift on this shared machine hits them alike: one after the other, a ratio between two servers
  // moved by up to 1.6x from one run to the next. The floor takes its turns with them in RS256
  // allow, the runs its ratio to ours is taken from: measured on its own at the end of the
  // scenario, 20 minutes after ours, that ratio read 0.73x in one run and 0.5x in the next.
  let floor: LoadResult | undefined;
  {
    const servers: Partial<Record<CheckServer, Server>> = {};
    let floorServer: Server | undefined;
    try {
      for (const name of names) {
        const server = await started(name, starters[name]);
        servers[name] = server;
        await warmUp(b, { method: CHECK, address: server.address, data: data('RS256', 'allow') });
      }
      floorServer = await startFloor(b.serverCpus, { shippedFlags: true });
      await warmUp(b, { method: CHECK, address: floorServer.address, data: data('RS256', 'allow') });
      for (const alg of ['RS256', 'ES256'] as const) {
        for (const outcome of ['allow', 'deny'] as const) {
          const withFloor = alg === 'RS256' && outcome === 'allow';
          const medians = await measureInTurn(b, [
            ...names.map((name) => ({ label: `${name} ${alg} ${outcome}`, o: { method: CHECK, address: servers[name]!.address, data: data(alg, outcome) }, cpu: cpuOf(name, servers[name]!) })),
            ...(withFloor ? [{ label: `floor (empty grpc-js Check) ${alg} ${outcome}`, o: { method: CHECK, address: floorServer.address, data: data(alg, outcome) }, cpu: { server: floorServer.pid } }] : []),
          ]);
          names.forEach((name, i) => (max[alg][outcome][name] = medians[i]!));
          if (withFloor) floor = medians[names.length];
        }
      }
    } finally {
      for (const server of Object.values(servers)) await server.stop();
      await floorServer?.stop();
    }
  }
  if (!floor) throw new Error('the floor was not measured');

  // Fixed loads: the four servers and the floor side by side (each loaded alone), measured in turn
  // at every load, so that drift on this shared machine hits them alike instead of whichever ran last.
  const floorLoads: CheckResults['floorLoads'] = {};
  {
    const servers: Partial<Record<CheckServer, Server>> = {};
    let floorServer: Server | undefined;
    try {
      for (const name of names) {
        const server = await started(name, starters[name]);
        servers[name] = server;
        await warmUp(b, { method: CHECK, address: server.address, data: data('RS256', 'allow') });
      }
      floorServer = await startFloor(b.serverCpus, { shippedFlags: true });
      await warmUp(b, { method: CHECK, address: floorServer.address, data: data('RS256', 'allow') });
      for (const alg of ['RS256', 'ES256'] as const) {
        const peerMax = max[alg].allow.peer.throughput;
        for (const name of names) loads[alg][name] = [];
        const floorAt: LoadResult[] = (floorLoads[alg] = []);
        for (const fr of FRACTIONS) {
          // Below the max, twice as long: p99.9 is a target there, and wants calls enough to mean something.
          const seconds = fr < 1 ? b.seconds * 2 : b.seconds;
          const rps = Math.max(100, Math.round(peerMax * fr));
          for (const name of names) {
            const server = servers[name]!;
            loads[alg][name].push(await measure(b, `${name} ${alg} allow`, { method: CHECK, address: server.address, data: data(alg, 'allow'), rps, seconds }, cpuOf(name, server)));
          }
          floorAt.push(await measure(b, `floor (empty grpc-js Check) ${alg} allow`, { method: CHECK, address: floorServer.address, data: data(alg, 'allow'), rps, seconds }, { server: floorServer.pid }));
        }
      }
    } finally {
      for (const server of Object.values(servers)) await server.stop();
      await floorServer?.stop();
    }
  }

  // GC pauses in the steady state of a server that has run for a while: its own server, warmed up at the run's load.
  {
    const probe = gcProbe(b.workDir, 'gc-run');
    const server = await started('ours (GC run)', () => ours('check-gc', CACHE_ENTRIES, probe));
    try {
      gcRun = await runGc(b, 'ours RS256 allow', server, probe, data('RS256', 'allow'), max.RS256.allow.peer.throughput);
      // The allocation target's figure, at the load its baseline was measured at.
      const rps = ALLOCATION_BASELINE.rps;
      const seconds = b.quick ? 10 : 30;
      const result = await measure(b, `ours RS256 allow, allocation at ${rps}/s`, { method: CHECK, address: server.address, data: data('RS256', 'allow'), rps, seconds }, { server: server.pid });
      const gc = gcDistribution(await probe.take(server.pid), result.requests);
      b.log(`    allocation at ${rps}/s: ${gc.bytesPerCall} bytes/call`);
      allocationAtBaseline = { seconds, result, gc };
    } finally {
      await server.stop();
    }
  }
  // The same protocol on the floor: how long an empty gRPC handler's own pauses are at that load.
  {
    const probe = gcProbe(b.workDir, 'floor-gc-run');
    const server = await startFloor(b.serverCpus, { shippedFlags: true, nodeArgs: probe.nodeArgs, env: probe.env });
    try {
      floorGcRun = await runGc(b, 'floor (empty grpc-js Check)', server, probe, data('RS256', 'allow'), max.RS256.allow.peer.throughput);
    } finally {
      await server.stop();
    }
  }

  // The real plugin and its stand-in side by side, runs in turn: the ratio that translates the stand-in's figures.
  let standIn: StandInComparison | undefined;
  if (plugin) {
    const real = {} as Record<PeerServer, LoadResult>;
    const sMax = {} as Record<PeerServer, LoadResult>;
    for (const [name, cache] of [['peer', 0], ['peer_cache', CACHE_ENTRIES]] as const) {
      await pair(`${name} (opa-envoy-plugin)`, () => startPeer(cache), `${name} (stand-in)`, () => startOpaPeer(peerDir, b.serverCpus, cache), async (p, s) => {
        const load = (server: Server): MeasureOptions => ({ method: CHECK, address: server.address, data: data('RS256', 'allow') });
        await warmUp(b, load(p));
        await warmUp(b, load(s));
        [real[name], sMax[name]] = (await measureInTurn(b, [{ label: `${name} opa-envoy-plugin RS256 allow`, o: load(p), cpu: { server: p.pid } }, { label: `${name} stand-in RS256 allow`, o: load(s), cpu: { server: s.pid } }], 3)) as [LoadResult, LoadResult];
      });
    }
    standIn = {
      peer: standInPeer(),
      real,
      max: sMax,
      throughputRatio: { peer: ratio(real.peer.throughput, sMax.peer.throughput), peer_cache: ratio(real.peer_cache.throughput, sMax.peer_cache.throughput) },
      cpuRatio: { peer: ratio(real.peer.serverCpuUs ?? 0, sMax.peer.serverCpuUs ?? 0), peer_cache: ratio(real.peer_cache.serverCpuUs ?? 0, sMax.peer_cache.serverCpuUs ?? 0) },
    };
    b.log(`  real plugin / stand-in, RS256 allow max: ${JSON.stringify(standIn.throughputRatio)} (throughput), ${JSON.stringify(standIn.cpuRatio)} (CPU per call)`);
  }

  // What the GC probe costs: two servers of the shipped configuration, one with the probe and one
  // without, runs in turn (RS256 allow, max); the median run of each by CPU per call.
  let probeCost: CheckResults['probeCost'];
  {
    const probe = gcProbe(b.workDir, 'probe-cost');
    await pair('ours without GC probe', () => ours('check-noprobe', CACHE_ENTRIES), 'ours with GC probe', () => ours('check-probe', CACHE_ENTRIES, probe), async (without, withProbe) => {
      const load = (server: Server): MeasureOptions => ({ method: CHECK, address: server.address, data: data('RS256', 'allow') });
      await warmUp(b, load(without));
      await warmUp(b, load(withProbe));
      const [w, p] = (await measureInTurn(
        b,
        [{ label: 'ours RS256 allow, no GC probe', o: load(without), cpu: { server: without.pid } }, { label: 'ours RS256 allow, GC probe', o: load(withProbe), cpu: { server: withProbe.pid, gc: probe } }],
        b.quick ? 1 : 3,
        (r) => r.serverCpuUs ?? 0,
      )) as [LoadResult, LoadResult];
      probeCost = { without: w, with: p };
    });
  }

  // Where the bytes go: the sampling heap profiler slows allocation, so in a run of its own.
  let allocations: CheckResults['allocations'];
  {
    const probe = allocProbe(b.workDir);
    const server = await started('ours with allocation profiler', () => ours('check-alloc', CACHE_ENTRIES, probe));
    try {
      const load = { method: CHECK, address: server.address, data: data('RS256', 'allow') };
      await warmUp(b, load);
      await probe.take(server.pid);
      const result = await measure(b, 'ours RS256 allow, allocation profile', { ...load, rps: Math.max(100, Math.round(max.RS256.allow.peer.throughput * GC_FRACTION)), seconds: b.seconds * 2 }, { server: server.pid });
      allocations = { ...summarizeAllocations(await probe.take(server.pid), result.requests), result };
      b.log(`    allocations: ${allocations.bytesPerCall} bytes/call sampled; ${allocations.areas.slice(0, 6).map((a) => `${a.area} ${a.bytesPerCall}`).join(', ')}`);
    } finally {
      await server.stop();
    }
  }

  return { tokens, roles, peer, max, floor, floorInTurn: true, floorLoads, loads, fractions: FRACTIONS, ...(standIn ? { standIn } : {}), ...(gcRun ? { gcRun } : {}), ...(floorGcRun ? { floorGcRun } : {}), ...(allocationAtBaseline ? { allocationAtBaseline } : {}), ...(probeCost ? { probeCost } : {}), ...(allocations ? { allocations } : {}) };
}

/**
 * The GC run's warm-up, at the run's own load on a fresh server. A production server runs for days:
 * its verified-token cache is full and turning over (entries live at most 60 s, src/authn/jwt.ts),
 * and its heap has been through mark-compacts under load. A fresh heap is neither: for its first
 * ~35-70 s at 1,000-1,500 Checks/s (this VM) little is promoted and scavenges are short, while the
 * old generation fills with node:http2's external header strings until the first mark-compact
 * under load (87-308 ms measured, much of it finalizing those strings); after one, each scavenge
 * on those connections keeps 0.3-1 MB and promotes KBs per Check (bench/NOTES.md, "What grows the
 * old generation"). So the warm-up runs in chunks until it has lasted GC_WARMUP_MIN_S (one
 * token-cache turnover) and seen a mark-compact, or GC_WARMUP_MAX_S. The load generator opens new
 * connections for every run, the measured one too: node:http2's retained streams start on those at
 * the run's first mark-compact, as they do on a long-lived proxy connection after one.
 */
const GC_WARMUP_MIN_S = 75;
const GC_WARMUP_MAX_S = 180;
const GC_WARMUP_CHUNK_S = 15;

/** 60 s (10 s quick) at GC_FRACTION of the peer's max after the warm-up at the same load: every GC pause of the run. */
async function runGc(b: Bench, label: string, server: Server, probe: GcProbe, data: unknown[], peerMax: number): Promise<GcRun> {
  const seconds = b.quick ? 10 : 60;
  const [minWarm, maxWarm, chunk] = b.quick ? [10, 10, 10] : [GC_WARMUP_MIN_S, GC_WARMUP_MAX_S, GC_WARMUP_CHUNK_S];
  const rps = Math.max(100, Math.round(peerMax * GC_FRACTION));
  const load = { method: CHECK, address: server.address, data, rps };
  await probe.take(server.pid);
  const chunks: { result: LoadResult; gc: GcDistribution }[] = [];
  let warmed = 0;
  let markCompacts = 0;
  while (warmed < maxWarm && (warmed < minWarm || markCompacts === 0)) {
    const result = await measure(b, `${label}, GC run warm-up (${warmed}-${warmed + chunk} s)`, { ...load, seconds: chunk }, { server: server.pid });
    const gc = gcDistribution(await probe.take(server.pid), result.requests);
    chunks.push({ result, gc });
    warmed += chunk;
    markCompacts += gc.byKind['mark-compact']?.count ?? 0;
  }
  const longest = Math.max(0, ...chunks.map((c) => c.gc.maxPauseMs));
  b.log(`    warm-up ${warmed} s: ${markCompacts} mark-compacts, longest pause ${longest} ms; last chunk ${chunks.at(-1)?.gc.promotedBytesPerCall} B/call promoted, ${chunks.at(-1)?.gc.oldAllocatedBytesPerCall} B/call allocated in old space`);
  const result = await measure(b, `${label}, GC run (${seconds} s)`, { ...load, seconds }, { server: server.pid });
  const gc = gcDistribution(await probe.take(server.pid), result.requests);
  b.log(`    GC: ${JSON.stringify(gc)}`);
  return { fraction: GC_FRACTION, seconds, result, gc, warmup: { seconds: warmed, markCompacts, chunks } };
}
