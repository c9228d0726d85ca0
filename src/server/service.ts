// The service's two entry points, both on the one composition root (components.ts): start
// (components + gRPC services + admin listener + lifecycle + config reloads) and check (a dry run,
// then close). The gRPC services and the admin API serve the current config generation
// (generation.ts); a reload (reload.ts) builds the next one and swaps it in.
import { loadConfigFile, type LoadedConfig } from '../config/loader.js';
import { logKeyChanges } from '../identity/signing-keys.js';
import { withPort } from '../lib/host-port.js';
import type { Logger } from '../telemetry/logger.js';
import { Metrics } from '../telemetry/metrics.js';
import { startAdmin } from './admin.js';
import { buildComponents, type Components } from './components.js';
import { Generation, Generations } from './generation.js';
import { serverOptions } from './grpc.js';
import { AUTHZ_SERVICE, Health, RLS_SERVICE } from './health.js';
import { InFlight } from './inflight.js';
import { Lifecycle } from './lifecycle.js';
import { envoyProtos } from '../envoy/protos.js';
import { checkMethod, shouldRateLimitMethod } from './codecs.js';
import { warmUpCheck } from './warm-up.js';
import type { AuthorizationHandlers } from '../gen/envoy/service/auth/v3/Authorization.js';
import type { RateLimitServiceHandlers } from '../gen/envoy/service/ratelimit/v3/RateLimitService.js';
import { ConfigReloader, type ConfigStatus, type ReloadResult } from './reload.js';
import { SharedResources } from './shared.js';
import { GrpcServer } from './transport.js';
import { gcMode, heapGrowing } from './gc-threads.js';
import { signatureThread } from '../authn/jwt.js';
import { cpusPerWorker } from '../lib/cpu-budget.js';

export interface RunningService {
  /** host:port actually bound (port 0 in config picks a free one). */
  readonly address: string;
  readonly port: number;
  readonly adminAddress: string;
  /** Loads the config file again and applies it (SIGHUP); the last good config stays on any error. */
  reload(): Promise<ReloadResult>;
  readonly config: () => ConfigStatus;
  /** NOT_SERVING, drain, stop accepting, wait for in-flight calls (bounded), close. */
  shutdown(): Promise<void>;
}

export interface StartOptions {
  /** How a reload reads the config (default: the file `loaded` came from). Undefined file: embedded defaults, nothing to watch. */
  readonly reload?: { readonly file: string | undefined; readonly load: () => Promise<LoadedConfig> };
}

export async function startService(loaded: LoadedConfig, log: Logger, opts: StartOptions = {}): Promise<RunningService> {
  const cfg = loaded.config;
  // Metrics and the shared components outlive each config generation.
  const metrics = new Metrics();
  const shared = new SharedResources();
  // Once per process: server.workers takes a restart, and the CPU budget is read at start.
  const jwtSignatures = signatureThread(cpusPerWorker(cfg.server.workers));
  const build = (l: LoadedConfig, listenerTls: boolean): Promise<Components> => buildComponents(l, log, { dryRun: false, metrics, shared, listenerTls, jwtSignatures });
  let first: Components;
  try {
    first = await build(loaded, true);
  } catch (err) {
    await metrics.shutdown();
    throw err;
  }
  const inflight = new InFlight();
  const generation = (id: number, c: Components): Generation => new Generation(id, c, { log, inflight });
  const gens = new Generations(generation(1, first), log);
  const server = new GrpcServer(serverOptions(cfg.server));
  const health = new Health([...(cfg.check.enabled ? [AUTHZ_SERVICE] : []), ...(first.limiter ? [RLS_SERVICE] : [])]);
  const source = opts.reload ?? { file: loaded.file, load: () => loadConfigFile(loaded.file) };
  const reloader = new ConfigReloader({
    file: source.file,
    load: source.load,
    build: (l) => build(l, false),
    generation,
    gens,
    log,
    metrics,
    onSwap: (prev, next) => {
      logKeyChanges(log, prev.signingKeys, next.signingKeys, Date.now());
      // A kept policy stage keeps its decision cache: a reload may change identities (API key
      // roles, issuers, routes) that cached decisions were made for.
      next.policy?.authorizer.invalidate();
    },
  });
  const lifecycle = new Lifecycle(gens, { server, health, inflight, cfg: cfg.server, log, config: () => reloader.status() });
  lifecycle.onClose(() => metrics.shutdown());
  try {
    health.addTo(server);
    const protos = envoyProtos().envoy.service;
    // Each call runs on the generation current when it arrives (the services are fixed at start:
    // check.enabled and ratelimit.enabled are restart-only).
    const authz: AuthorizationHandlers = { Check: (call, callback) => gens.current.authz!.Check(call, callback) };
    const rls: RateLimitServiceHandlers = { ShouldRateLimit: (call, callback) => gens.current.rls!.ShouldRateLimit(call, callback) };
    if (cfg.check.enabled) {
      const check = checkMethod();
      server.addService({ ...protos.auth.v3.Authorization.service, Check: check }, { ...authz });
      warmUpCheck(check, first.pipeline);
    }
    if (first.limiter) {
      server.addService({ ...protos.ratelimit.v3.RateLimitService.service, ShouldRateLimit: shouldRateLimitMethod() }, { ...rls });
    }

    const admin = await startAdmin({
      address: cfg.admin.address,
      log,
      view: () => {
        const c = gens.current.c;
        const { signingKeys, policy } = c;
        return {
          tokens: c.adminTokens,
          denyList: c.denyList,
          ...(signingKeys ? { jwks: () => signingKeys.jwks() } : {}),
          ...(policy ? { reloadPolicy: () => policy.source.reload(true) } : {}),
          ...(c.openapi ? { openapiOperations: () => c.openapi!.operations() } : {}),
        };
      },
      readiness: () => lifecycle.readiness(),
      metrics: (req, res) => metrics.handle(req, res),
    });
    lifecycle.onClose(() => admin.close());

    const port = await server.bind(cfg.server.address, first.tls);
    lifecycle.markServing();
    await reloader.start();
    lifecycle.onClose(() => reloader.stop());
    const address = withPort(cfg.server.address, port);
    log.info(
      {
        event: 'started',
        address,
        admin: admin.address,
        tls: cfg.server.tls !== undefined,
        issuers: first.auth.jwtIssuers,
        jwt_signatures: first.auth.jwtSignatures,
        routes: cfg.routes.length,
        token: cfg.token !== undefined,
        revocation: cfg.revocation.store === 'memory' && cfg.revocation.snapshot_file === undefined ? 'memory (lost on restart)' : cfg.revocation.store,
        authorization: cfg.check.enabled,
        ratelimit: first.limiter ? first.store.kind : false,
        gc: gcMode(process.execArgv),
        heap_growing: heapGrowing(process.execArgv),
      },
      'serving',
    );
    return {
      address,
      port,
      adminAddress: admin.address,
      reload: () => reloader.reload('signal'),
      config: () => reloader.status(),
      shutdown: () => lifecycle.shutdown(),
    };
  } catch (err) {
    await reloader.stop();
    await lifecycle.abort();
    throw err;
  }
}

/** `--check-config`: everything a start would build and load, without listening or connecting. */
export async function checkConfig(loaded: LoadedConfig, log: Logger): Promise<void> {
  const c = await buildComponents(loaded, log, { dryRun: true });
  await c.close();
}
