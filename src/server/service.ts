// The service's two entry points, both on the one composition root (components.ts): start
// (components + gRPC services + admin listener + lifecycle) and check (a dry run, then close).
import type { LoadedConfig } from '../config/loader.js';
import { withPort } from '../lib/host-port.js';
import type { Logger } from '../telemetry/logger.js';
import { startAdmin } from './admin.js';
import { authorizationHandlers } from './authz-service.js';
import { buildComponents } from './components.js';
import { serverOptions } from './grpc.js';
import { AUTHZ_SERVICE, Health, RLS_SERVICE } from './health.js';
import { InFlight } from './inflight.js';
import { Lifecycle } from './lifecycle.js';
import { envoyProtos } from '../envoy/protos.js';
import { rateLimitHandlers } from './rls-service.js';
import { GrpcServer } from './transport.js';

export interface RunningService {
  /** host:port actually bound (port 0 in config picks a free one). */
  readonly address: string;
  readonly port: number;
  readonly adminAddress: string;
  /** NOT_SERVING, drain, stop accepting, wait for in-flight calls (bounded), close. */
  shutdown(): Promise<void>;
}

export async function startService(loaded: LoadedConfig, log: Logger): Promise<RunningService> {
  const cfg = loaded.config;
  const c = await buildComponents(loaded, log, { dryRun: false });
  const inflight = new InFlight();
  const server = new GrpcServer(serverOptions(cfg.server));
  const health = new Health([...(cfg.check.enabled ? [AUTHZ_SERVICE] : []), ...(c.limiter ? [RLS_SERVICE] : [])]);
  const lifecycle = new Lifecycle(c, { server, health, inflight, cfg: cfg.server, log });
  try {
    health.addTo(server);
    const protos = envoyProtos().envoy.service;
    const { metrics, limiter } = c;
    if (cfg.check.enabled) server.addService(protos.auth.v3.Authorization.service, { ...authorizationHandlers({ pipeline: c.pipeline, check: cfg.check, log, inflight, metrics }) });
    if (limiter) server.addService(protos.ratelimit.v3.RateLimitService.service, { ...rateLimitHandlers({ limiter, log, inflight, metrics }) });

    const signingKeys = c.signingKeys;
    const reloadPolicy = c.policy ? () => c.policy!.source.reload(true) : undefined;
    const admin = await startAdmin({
      cfg: { ...cfg.admin, tokens: [...c.adminTokens] },
      log,
      denyList: c.denyList,
      ...(signingKeys ? { jwks: () => signingKeys.jwks() } : {}),
      ...(reloadPolicy ? { reloadPolicy } : {}),
      ...(c.openapi ? { openapiOperations: () => c.openapi!.operations() } : {}),
      readiness: () => lifecycle.readiness(),
      metrics: (req, res) => metrics.handle(req, res),
    });
    lifecycle.onClose(() => admin.close());

    const port = await server.bind(cfg.server.address, c.tls);
    lifecycle.markServing();
    const address = withPort(cfg.server.address, port);
    log.info(
      {
        event: 'started',
        address,
        admin: admin.address,
        tls: cfg.server.tls !== undefined,
        issuers: c.auth.jwtIssuers,
        routes: cfg.routes.length,
        token: cfg.token !== undefined,
        revocation: cfg.revocation.store === 'memory' && cfg.revocation.snapshot_file === undefined ? 'memory (lost on restart)' : cfg.revocation.store,
        authorization: cfg.check.enabled,
        ratelimit: limiter ? c.store.kind : false,
      },
      'serving',
    );
    return { address, port, adminAddress: admin.address, shutdown: () => lifecycle.shutdown() };
  } catch (err) {
    await lifecycle.abort();
    throw err;
  }
}

/** `--check-config`: everything a start would build and load, without listening or connecting. */
export async function checkConfig(loaded: LoadedConfig, log: Logger): Promise<void> {
  const c = await buildComponents(loaded, log, { dryRun: true });
  await c.close();
}
