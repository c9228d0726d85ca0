// The end-to-end stack of a test file: envoy-authz as a process (with the given config, ports
// filled in), the demo upstream recording what reached it, and Envoy running envoy/envoy.yaml.
import type { IncomingHttpHeaders, Server } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { devCerts, type DevCerts } from './certs.js';
import { send } from './client.js';
import { envoyPorts, renderEnvoyConfig, startEnvoy, type EnvoyPorts, type RenderOptions, type RunningEnvoy } from './envoy.js';
import { freePort } from './ports.js';
import { configYaml, spawnService, type ServiceProcess } from './service.js';
import type { tempDir } from './tmp.js';

export interface Stack {
  readonly ports: EnvoyPorts;
  readonly adminPort: number;
  readonly authz: ServiceProcess;
  readonly envoy: RunningEnvoy;
  readonly upstream: Server;
  readonly certs: DevCerts;
  /** Request headers the upstream received, in order; `clear()` empties it. */
  readonly seen: IncomingHttpHeaders[];
  clear(): void;
  /** http://127.0.0.1:<envoy http port> */
  readonly http: string;
  stop(): Promise<void>;
}

/** `config` is envoy-authz's config without server/admin addresses; files it names live in `tmp`. */
export interface StackOptions extends RenderOptions {
  /** Environment for the envoy-authz process (e.g. OTEL_*). */
  readonly env?: Record<string, string>;
}

export async function startStack(tmp: ReturnType<typeof tempDir>, config: Record<string, unknown>, opts: StackOptions = {}): Promise<Stack> {
  const certs = devCerts(join(tmp.dir, 'certs'));
  const authzPort = await freePort();
  const adminPort = await freePort();
  const authz = await spawnService([
    '--config',
    tmp.write('authz.yaml', configYaml({ ...config, server: { address: `127.0.0.1:${authzPort}` }, admin: { address: `127.0.0.1:${adminPort}` } })),
  ], opts.env);
  const seen: IncomingHttpHeaders[] = [];
  const echo = await startEchoUpstream('127.0.0.1', 0, (h) => seen.push(h));
  let ports: EnvoyPorts;
  let envoy: RunningEnvoy;
  try {
    ({ ports, envoy } = await startEnvoyOnFreePorts(authzPort, echo.port, (p) => renderEnvoyConfig(p, certs.dir, join(tmp.dir, 'envoy.yaml'), opts)));
  } catch (err) {
    // Nothing of a stack that did not start outlives it.
    await authz.stop();
    echo.server.close();
    throw err;
  }
  return {
    ports,
    adminPort,
    authz,
    envoy,
    upstream: echo.server,
    certs,
    seen,
    clear: () => void seen.splice(0),
    http: `http://127.0.0.1:${ports.http}`,
    stop: async () => {
      await envoy.stop();
      await authz.stop();
      echo.server.close();
    },
  };
}

/**
 * Sends `path` with `headers` until Envoy's filters answer in time (no 5xx), then forgets what the
 * upstream saw. A fresh process's first Check and ShouldRateLimit (JIT, first connection, the
 * policy's first evaluation) can outlast Envoy's 200 ms filter timeouts on a busy two-core
 * machine, and Envoy then fails closed (503 from ext_authz's status_on_error, 500 from the
 * ratelimit filter's failure_mode_deny): the first request of a test must not be it.
 */
export async function warmUp(stack: Stack, headers: Record<string, string>, path = '/orders'): Promise<void> {
  for (let i = 0; i < 20 && (await send(`${stack.http}${path}`, { headers })).status >= 500; i++) await sleep(200);
  stack.clear();
}

/**
 * Envoy on ports picked free a moment before (ports.ts): a process outside the test run can still
 * take one in between (Envoy then exits with "Address already in use"), so that is retried on fresh ports, twice.
 */
async function startEnvoyOnFreePorts(authzPort: number, upstreamPort: number, render: (p: EnvoyPorts) => string): Promise<{ ports: EnvoyPorts; envoy: RunningEnvoy }> {
  for (let attempt = 1; ; attempt++) {
    const ports = await envoyPorts(authzPort, upstreamPort);
    try {
      return { ports, envoy: await startEnvoy(render(ports), ports.admin) };
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.includes('Address already in use')) throw err;
    }
  }
}
