// Composition root: from a validated config to a listening service, and back down on shutdown.
import type { Redis } from 'ioredis';
import { buildAuthenticators } from '../authn/registry.js';
import { CheckPipeline } from '../check/pipeline.js';
import { RouteTable } from '../check/routes.js';
import type { LoadedConfig } from '../config/loader.js';
import type { PolicyConfig } from '../config/schema.js';
import { TokenMinter } from '../identity/minter.js';
import { MemoryDenyList, RedisDenyList, type DenyList } from '../identity/revocation.js';
import { SigningKeys } from '../identity/signing-keys.js';
import { PolicyAuthorizer } from '../policy/authorizer.js';
import { PolicyEngine } from '../policy/engine.js';
import { BundleSource, loadVerification } from '../policy/source.js';
import { ConfigError } from '../lib/errors.js';
import { connectRateLimitRedis, connectRedis } from '../lib/redis.js';
import { FailureGuard } from '../authn/brute-force.js';
import { resolveConfigPath } from '../config/loader.js';
import type { RateLimitStore } from '../ratelimit/limits.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import { MemoryStore } from '../ratelimit/memory-store.js';
import { RedisStore } from '../ratelimit/redis-store.js';
import { RateLimitConfigs } from '../ratelimit/reloader.js';
import { loadRateLimitFiles } from '../ratelimit/config.js';
import { parseBundle } from '../policy/bundle.js';
import { readReferencedFile } from '../config/files.js';
import { ResilientStore } from '../ratelimit/resilient-store.js';
import { rateLimitHandlers } from './rls-service.js';
import type { Logger } from '../telemetry/logger.js';
import { Metrics, useMetrics } from '../telemetry/metrics.js';
import { startAdmin, type Readiness } from './admin.js';
import { authorizationHandlers } from './authz-service.js';
import { serverCredentials, serverOptions } from './grpc.js';
import { GrpcServer } from './transport.js';
import { AUTHZ_SERVICE, Health, RLS_SERVICE } from './health.js';
import { InFlight } from './inflight.js';
import { envoyProtos } from './protos.js';

export interface RunningService {
  /** host:port actually bound (port 0 in config picks a free one). */
  readonly address: string;
  readonly port: number;
  readonly adminAddress: string;
  /** NOT_SERVING, drain, stop accepting, wait for in-flight calls (bounded), close. */
  shutdown(): Promise<void>;
}

/** After the last call ends, how long open connections get to flush and close before being cut. */
const FLUSH_MS = 500;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function withPort(address: string, port: number): string {
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}

/** The policy stage: engine, bundle source (loaded now) and authorizer, wired for cache invalidation. */
async function startPolicy(
  loaded: LoadedConfig,
  cfg: PolicyConfig,
  log: Logger,
  event: (name: string) => void,
): Promise<{ source: BundleSource; authorizer: PolicyAuthorizer }> {
  const engine = new PolicyEngine({ decisionPath: cfg.decision_path, initialPages: cfg.memory_initial_pages, maxPages: cfg.memory_max_pages });
  const authorizer = new PolicyAuthorizer(engine, cfg.decision_cache);
  const source = new BundleSource(loaded, cfg, engine, await loadVerification(loaded, cfg), log, event);
  // A new bundle or data revision invalidates every cached decision (V-274677).
  source.onActivate(() => authorizer.invalidate());
  await source.start();
  return { source, authorizer };
}

/** In-process buckets, or Redis behind the configured failure mode (in-process buckets as its `local`). */
function rateLimitStore(
  cfg: LoadedConfig['config'],
  log: Logger,
  metrics: Metrics,
  event: (name: string) => void,
): { store: RateLimitStore; resilient?: ResilientStore } {
  const rl = cfg.ratelimit;
  const local = new MemoryStore(rl.memory_max_keys);
  if (rl.store !== 'redis' || !cfg.redis) return { store: local };
  const resilient = new ResilientStore(new RedisStore(connectRateLimitRedis(cfg.redis, log)), rl.failure_mode, local, log, Date.now, event);
  metrics.observeStore(() => ({ store: resilient.kind, mode: rl.failure_mode, degraded: resilient.degraded }));
  return { store: resilient, resilient };
}

export async function startService(loaded: LoadedConfig, log: Logger): Promise<RunningService> {
  const cfg = loaded.config;
  const needsRedis = cfg.revocation.store === 'redis' || cfg.authentication.api_keys?.redis === true;
  if (needsRedis && !cfg.redis) throw new ConfigError(loaded.file, [{ keyPath: '/redis', problem: 'required by revocation.store: redis or api_keys.redis' }]);
  const redis: Redis | undefined = needsRedis && cfg.redis ? connectRedis(cfg.redis, 'commands', log) : undefined;
  const closers: (() => Promise<void>)[] = [];
  const metrics = new Metrics();
  useMetrics(metrics);
  const event = (name: string): void => metrics.event(name);
  closers.push(() => metrics.shutdown());

  try {
    const denyList: DenyList =
      cfg.revocation.store === 'redis' && cfg.redis && redis
        ? new RedisDenyList(redis, connectRedis(cfg.redis, 'subscriber', log), cfg.redis.key_prefix)
        : new MemoryDenyList();
    closers.push(() => denyList.close());
    await denyList.start();

    const routes = new RouteTable(cfg.routes);
    const auth = await buildAuthenticators(loaded, routes, redis);
    const keys = cfg.token ? await SigningKeys.load(loaded, cfg.token.signing_keys) : undefined;
    const minter = cfg.token && keys ? new TokenMinter(cfg.token, keys) : undefined;
    if (keys) {
      // Key changes are audit events: which key signs, which are published.
      log.info({ event: 'signing_keys', signing_kid: keys.current(Date.now()).kid, published_kids: keys.jwks().keys.map((k) => k.kid) }, 'token signing keys loaded');
    }

    const policy = cfg.policy ? await startPolicy(loaded, cfg.policy, log, event) : undefined;
    if (policy) closers.push(() => Promise.resolve(policy.source.stop()));

    // Rate-limit buckets (and the failed-authentication counters) live in one store.
    const rl = cfg.ratelimit;
    const { store, resilient } = rateLimitStore(cfg, log, metrics, event);
    closers.push(() => store.close());
    let limiter: RateLimiter | undefined;
    if (rl.enabled) {
      const configs = new RateLimitConfigs(
        rl.files.map((f) => resolveConfigPath(loaded, f)),
        { algorithm: rl.algorithm, mergeDomains: rl.merge_domain_configs },
        log,
        event,
      );
      await configs.start(rl.reload_interval_ms);
      closers.push(() => Promise.resolve(configs.stop()));
      limiter = new RateLimiter(() => configs.domains, store, rl.headers, rl.max_descriptors, {
        countRefused: rl.count_refused_requests,
        nearLimitRatio: rl.near_limit_ratio,
        algorithm: rl.algorithm,
        statsMaxKeys: rl.stats_max_keys,
      });
    }
    const bf = cfg.authentication.brute_force;
    const failureGuard =
      bf.max_failures > 0
        ? new FailureGuard(store, {
            maxFailures: bf.max_failures,
            windowSeconds: bf.window_s,
            bearerHeader: cfg.authentication.header.toLowerCase(),
            ...(cfg.authentication.api_keys ? { apiKey: { header: cfg.authentication.api_keys.header.toLowerCase(), prefix: cfg.authentication.api_keys.prefix } } : {}),
          })
        : undefined;

    // A revocation must not be outlived by a cached result (V-274677).
    denyList.onChange((change) => {
      event('revocation_changed');
      auth.introspector?.clear();
      minter?.forget(change.op !== 'reset' && change.entry.kind === 'subject' ? change.entry.value : undefined);
    });

    const pipeline = new CheckPipeline({
      authentication: cfg.authentication,
      routes,
      authenticatorsFor: auth.forRoute,
      credentialHeaders: auth.credentialHeaders,
      untrustedHeaders: auth.untrustedHeaders,
      ...(auth.isCredential ? { isCredential: auth.isCredential } : {}),
      denyList,
      ...(failureGuard ? { failureGuard } : {}),
      ...(minter && cfg.token ? { token: { minter, header: cfg.token.header.toLowerCase(), scheme: cfg.token.scheme } } : {}),
      ...(policy && cfg.policy ? { policy: { authorizer: policy.authorizer, dryRun: cfg.policy.dry_run } } : {}),
    });

    const inflight = new InFlight();
    const server = new GrpcServer(serverOptions(cfg.server));
    const health = new Health([...(cfg.check.enabled ? [AUTHZ_SERVICE] : []), ...(limiter ? [RLS_SERVICE] : [])]);
    health.addTo(server);
    const protos = envoyProtos().envoy.service;
    if (cfg.check.enabled) server.addService(protos.auth.v3.Authorization.service, { ...authorizationHandlers({ pipeline, check: cfg.check, log, inflight, metrics }) });
    if (limiter) server.addService(protos.ratelimit.v3.RateLimitService.service, { ...rateLimitHandlers({ limiter, log, inflight, metrics }) });

    let serving = false;
    const readiness = (): Readiness => {
      const components: Record<string, string> = { grpc: serving ? 'serving' : 'not_serving', revocation: denyList.ready ? 'ready' : 'unavailable' };
      if (limiter) components.ratelimit_store = `${store.kind}${resilient?.degraded ? ` degraded (failure_mode ${rl.failure_mode})` : ''}`;
      const st = policy?.source.status();
      if (st) components.policy = st.revision !== undefined ? `active ${st.revision}${st.lastError ? ' (last update rejected)' : ''}` : 'no bundle';
      return { ready: serving && denyList.ready && (st === undefined || st.revision !== undefined), components };
    };
    const admin = await startAdmin({
      cfg: cfg.admin,
      log,
      denyList,
      ...(keys ? { jwks: () => keys.jwks() } : {}),
      ...(policy ? { reloadPolicy: () => policy.source.reload(true) } : {}),
      readiness,
      metrics: (req, res) => metrics.handle(req, res),
    });
    closers.push(() => admin.close());

    const port = await server.bind(cfg.server.address, await serverCredentials(loaded, cfg.server));
    serving = true;
    health.setAll('SERVING');
    const address = withPort(cfg.server.address, port);
    log.info(
      {
        event: 'started',
        address,
        admin: admin.address,
        tls: cfg.server.tls !== undefined,
        issuers: auth.jwtIssuers,
        routes: cfg.routes.length,
        token: cfg.token !== undefined,
        revocation: cfg.revocation.store,
        authorization: cfg.check.enabled,
        ratelimit: limiter ? store.kind : false,
      },
      'serving',
    );

    let stopping: Promise<void> | undefined;
    const shutdown = (): Promise<void> =>
      (stopping ??= (async () => {
        serving = false;
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
        for (const c of closers.reverse()) await c();
        redis?.disconnect();
        log.info({ event: 'stopped' }, 'stopped');
      })());

    return { address, port, adminAddress: admin.address, shutdown };
  } catch (err) {
    for (const c of closers.reverse()) await c().catch(() => undefined);
    redis?.disconnect();
    throw err;
  }
}

/** Loads everything a config refers to (keys, JWKS, certificates, key files) without listening or connecting. */
export async function checkConfig(loaded: LoadedConfig): Promise<void> {
  const cfg = loaded.config;
  const { Redis: LazyRedis } = await import('ioredis');
  const offline = cfg.redis ? new LazyRedis(cfg.redis.url, { lazyConnect: true }) : undefined;
  try {
    await buildAuthenticators(loaded, new RouteTable(cfg.routes), offline);
    if (cfg.token) await SigningKeys.load(loaded, cfg.token.signing_keys);
    if (cfg.policy) {
      const verification = await loadVerification(loaded, cfg.policy);
      if (cfg.policy.bundle.file !== undefined) {
        const keyPath = '/policy/bundle/file';
        const archive = await readReferencedFile(loaded, keyPath, cfg.policy.bundle.file, { maxBytes: 64 * 1024 * 1024 });
        await parseBundle(archive, verification).catch((err: unknown) => {
          throw new ConfigError(loaded.file, [{ keyPath, problem: err instanceof Error ? err.message : String(err) }]);
        });
      }
    }
    await loadRateLimitFiles(
      cfg.ratelimit.files.map((f) => resolveConfigPath(loaded, f)),
      { algorithm: cfg.ratelimit.algorithm, mergeDomains: cfg.ratelimit.merge_domain_configs },
    );
    await serverCredentials(loaded, cfg.server);
  } finally {
    offline?.disconnect();
  }
}
