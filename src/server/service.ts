// Composition root: from a validated config to a listening service, and back down on shutdown.
import { Server } from '@grpc/grpc-js';
import { JwtAuthenticator, JwtVerifier } from '../authn/jwt.js';
import { CheckPipeline } from '../check/pipeline.js';
import { RouteTable } from '../check/routes.js';
import type { LoadedConfig } from '../config/loader.js';
import type { Logger } from '../telemetry/logger.js';
import { authorizationHandlers } from './authz-service.js';
import { bind, serverCredentials, serverOptions } from './grpc.js';
import { AUTHZ_SERVICE, Health } from './health.js';
import { InFlight } from './inflight.js';
import { envoyProtos } from './protos.js';

export interface RunningService {
  /** host:port actually bound (port 0 in config picks a free one). */
  readonly address: string;
  readonly port: number;
  /** NOT_SERVING, drain, stop accepting, wait for in-flight calls (bounded), close. */
  shutdown(): Promise<void>;
}

/** After the last call ends, how long open connections get to flush and close before being cut. */
const FLUSH_MS = 500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function withPort(address: string, port: number): string {
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}

export async function startService(loaded: LoadedConfig, log: Logger): Promise<RunningService> {
  const cfg = loaded.config;
  const auth = cfg.authentication;
  const verifier = await JwtVerifier.create(loaded, auth.jwt.issuers);
  const authenticators = [
    new JwtAuthenticator({ header: auth.header.toLowerCase(), scheme: auth.scheme, maxTokenBytes: auth.max_token_bytes }, verifier),
  ];
  const pipeline = new CheckPipeline({ authentication: auth }, new RouteTable(cfg.routes), authenticators);

  const inflight = new InFlight();
  const server = new Server(serverOptions(cfg.server));
  const health = new Health([AUTHZ_SERVICE]);
  health.addTo(server);
  server.addService(envoyProtos().envoy.service.auth.v3.Authorization.service, authorizationHandlers({ pipeline, check: cfg.check, log, inflight }));

  const port = await bind(server, cfg.server.address, await serverCredentials(loaded, cfg.server));
  health.setAll('SERVING');
  const address = withPort(cfg.server.address, port);
  log.info({ event: 'started', address, tls: cfg.server.tls !== undefined, issuers: verifier.issuerCount, routes: cfg.routes.length }, 'serving');

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    (stopping ??= (async () => {
      health.setAll('NOT_SERVING');
      log.info({ event: 'stopping', drain_ms: cfg.server.shutdown_drain_ms, in_flight: inflight.size }, 'shutting down');
      if (cfg.server.shutdown_drain_ms > 0) await sleep(cfg.server.shutdown_drain_ms);
      // Stop accepting new calls; calls already running continue.
      const closed = new Promise<void>((r) => server.tryShutdown(() => r()));
      const finished = await inflight.idle(cfg.server.shutdown_grace_ms);
      if (!finished) log.warn({ event: 'shutdown_forced', in_flight: inflight.size }, 'grace period over; cancelling calls');
      // The last answers may still be on the wire: let the connections close by themselves, briefly.
      await Promise.race([closed, sleep(FLUSH_MS)]);
      // Cancels what is left, including idle health Watch streams that would otherwise hold the server open.
      server.forceShutdown();
      log.info({ event: 'stopped' }, 'stopped');
    })());

  return { address, port, shutdown };
}
