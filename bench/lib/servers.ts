// The servers the bench compares, each started pinned to the server core: envoy-authz (the
// built dist/, with the node options it ships with on that core), the empty grpc-js floor, and
// the Go peers (the real opa-envoy-plugin when it could be built, else its stand-in).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort } from '../../test/helpers/ports.js';
import { startPinned, waitForPort, type Proc } from './procs.js';
import { cpuList } from './cpu-list.js';
import { ROOT, tool } from './tools.js';

export interface Server {
  proc: Proc;
  /** Process id, for CPU and memory accounting. */
  pid: number;
  port: number;
  address: string;
  stop(): Promise<void>;
}

export interface OursOptions {
  cpus: string;
  /** Write a V8 CPU profile here on exit (node --cpu-prof). */
  profileDir?: string;
  /** Extra environment (e.g. UV_THREADPOOL_SIZE). */
  env?: Record<string, string>;
  /** Extra node flags. */
  nodeArgs?: string[];
  /** Keep the server's stdout in proc.output() (for diagnostics such as --trace-gc). */
  captureStdout?: boolean;
}

/** The server once its port is open; a process that never opens it is stopped, not left running. */
async function serving(proc: Proc, port: number): Promise<Server> {
  try {
    await waitForPort(proc, port);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return { proc, pid: proc.child.pid!, port, address: `127.0.0.1:${port}`, stop: () => proc.stop() };
}

/**
 * The node options envoy-authz ships with on this CPU set, as deploy/entrypoint.sh chooses them:
 * dist/src/cli/node-flags.js run under the same pinning (one CPU: --single-threaded-gc
 * --heap-growing-percent=10).
 */
function shippedNodeFlags(cpus: string): string[] {
  const out = execFileSync('taskset', ['-c', cpus, process.execPath, join(ROOT, 'dist', 'src', 'cli', 'node-flags.js')], { encoding: 'utf8' });
  return out.split(/\s+/).filter(Boolean);
}

/** envoy-authz from dist/ with `config` (port and admin port filled in), written into `dir`. */
export async function startOurs(dir: string, name: string, config: Record<string, unknown>, o: OursOptions): Promise<Server> {
  const port = await freePort();
  const server = (config.server ?? {}) as Record<string, unknown>;
  const file = join(dir, `envoy-authz-${name}.yaml`);
  writeFileSync(file, stringify({ logging: { level: 'info' }, ...config, server: { ...server, address: `127.0.0.1:${port}` }, admin: { address: `127.0.0.1:${await freePort()}` } }));
  const nodeArgs = [...shippedNodeFlags(o.cpus), ...(o.nodeArgs ?? []), ...(o.profileDir ? (mkdirSync(o.profileDir, { recursive: true }), [`--cpu-prof`, `--cpu-prof-dir=${o.profileDir}`]) : [])];
  const proc = startPinned(`envoy-authz (${name})`, process.execPath, [...nodeArgs, join(ROOT, 'dist', 'src', 'main.js'), '--config', file], { cpus: o.cpus, ...(o.env ? { env: o.env } : {}), ...(o.captureStdout ? { captureStdout: true } : {}) });
  return serving(proc, port);
}

/**
 * The floor: a grpc-js server whose Check handler answers OK at once (the cost of gRPC alone).
 * `shippedFlags` gives it the node options envoy-authz ships with on this CPU set (the GC run's
 * floor: pauses compared under the same collector settings); `nodeArgs`/`env` load a probe.
 */
export async function startFloor(cpus: string, o: { shippedFlags?: boolean; nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<Server> {
  const port = await freePort();
  const nodeArgs = [...(o.shippedFlags ? shippedNodeFlags(cpus) : []), ...(o.nodeArgs ?? []), '--import', 'tsx'];
  const proc = startPinned('grpc-js empty Check', process.execPath, [...nodeArgs, join(ROOT, 'bench', 'floor', 'empty-check.ts'), String(port)], { cpus, cwd: ROOT, ...(o.env ? { env: o.env } : {}) });
  return serving(proc, port);
}

/** The Check peer's stand-in (bench/peers/opa-authz: OPA's Go SDK on opa-envoy-plugin's hot path). */
export async function startOpaPeer(policyDir: string, cpus: string, jwtCacheEntries = 0): Promise<Server> {
  const port = await freePort();
  const proc = startPinned('opa-authz (OPA Go)', tool('opa-authz'), ['-addr', `127.0.0.1:${port}`, '-policy', policyDir, '-jwt-cache', String(jwtCacheEntries)], { cpus, env: { GOMAXPROCS: String(cpuList(cpus).length) } });
  return serving(proc, port);
}

/** Which program answered as the Check peer, recorded with every result. */
export interface CheckPeer {
  name: 'opa-envoy-plugin' | 'opa-authz (stand-in)';
  version: string;
}

/** The real opa-envoy-plugin binary, when `make opa-envoy-plugin` could build or install it. */
export function pluginBinary(): string | undefined {
  try {
    return tool('opa-envoy-plugin');
  } catch {
    return undefined;
  }
}

export function pluginPeer(binary: string): CheckPeer {
  const out = execFileSync(binary, ['version'], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  return { name: 'opa-envoy-plugin', version: /^Version: (.+)$/m.exec(out)?.[1]?.trim() ?? 'unknown' };
}

/** The stand-in's OPA release is what its go.mod requires. */
export function standInPeer(): CheckPeer {
  const mod = readFileSync(join(ROOT, 'bench', 'peers', 'opa-authz', 'go.mod'), 'utf8');
  return { name: 'opa-authz (stand-in)', version: `OPA ${/github\.com\/open-policy-agent\/opa (v\S+)/.exec(mod)?.[1] ?? 'unknown'} Go SDK` };
}

/**
 * The real opa-envoy-plugin (`opa run --server` with the envoy_ext_authz_grpc plugin) on the
 * stand-in's policy directory, evaluating the rule the stand-in evaluates (data.envoy.authz.allow).
 * Decision logs off (no decision_logs section), OPA's HTTP API and the gRPC plugin on free loopback
 * ports, no version check; io_jwt's verified-token cache off (OPA's default) unless
 * `jwtCacheEntries` > 0, with the same OPA configuration key the stand-in parses.
 */
export async function startPluginPeer(binary: string, dir: string, policyDir: string, cpus: string, jwtCacheEntries = 0): Promise<Server> {
  const [port, http] = [await freePort(), await freePort()];
  const file = join(dir, `opa-envoy-plugin-${jwtCacheEntries}.yaml`);
  writeFileSync(
    file,
    stringify({
      plugins: { envoy_ext_authz_grpc: { addr: `127.0.0.1:${port}`, path: 'envoy/authz/allow' } },
      ...(jwtCacheEntries > 0 ? { caching: { inter_query_builtin_value_cache: { named: { io_jwt: { max_num_entries: jwtCacheEntries } } } } } : {}),
    }),
  );
  const args = ['run', '--server', '--addr', `127.0.0.1:${http}`, '--config-file', file, '--log-level', 'error', '--skip-version-check', policyDir];
  const proc = startPinned('opa-envoy-plugin', binary, args, { cpus, env: { GOMAXPROCS: String(cpuList(cpus).length) } });
  return serving(proc, port);
}

/** The file envoyproxy/ratelimit started in `dir` reads its rules from (it reloads them when the directory changes). */
export function ratelimitPeerConfigFile(dir: string): string {
  return join(dir, 'rl-runtime', 'ratelimit', 'config', 'bench.yaml');
}

/** envoyproxy/ratelimit on Redis, reading `configYaml` from its runtime directory. */
export async function startRatelimitPeer(dir: string, configYaml: string, redisPort: number, cpus: string, env: Record<string, string> = {}): Promise<Server> {
  const runtime = join(dir, 'rl-runtime');
  mkdirSync(join(runtime, 'ratelimit', 'config'), { recursive: true });
  writeFileSync(ratelimitPeerConfigFile(dir), configYaml);
  const [port, http, debug] = [await freePort(), await freePort(), await freePort()];
  const proc = startPinned('envoyproxy/ratelimit', tool('ratelimit'), [], {
    cpus,
    env: {
      GOMAXPROCS: String(cpuList(cpus).length),
      HOST: '127.0.0.1',
      PORT: String(http),
      GRPC_HOST: '127.0.0.1',
      GRPC_PORT: String(port),
      DEBUG_HOST: '127.0.0.1',
      DEBUG_PORT: String(debug),
      USE_STATSD: 'false',
      LOG_LEVEL: 'warn',
      RUNTIME_ROOT: runtime,
      RUNTIME_SUBDIRECTORY: 'ratelimit',
      RUNTIME_WATCH_ROOT: 'false',
      BACKEND_TYPE: 'redis',
      REDIS_SOCKET_TYPE: 'tcp',
      REDIS_URL: `127.0.0.1:${redisPort}`,
      ...env,
    },
  });
  return serving(proc, port);
}
