// server/: this composition root, service.ts (start and --check-config), lifecycle (readiness,
// health, drain), the gRPC transport and connection limits, the service adapters, admin HTTP.
// The one composition root: from a validated config to the components that serve it, each with
// its closer. A real start (service.ts) and `--check-config` (a dry run) both come through here,
// so the two cannot disagree about what a config means: a dry run builds and loads everything a
// start would (keys, JWKS files, certificates, API key files, rate-limit files, a file bundle
// compiled to wasm) but opens no connection, binds no port and starts no timer.
import { errorMessage } from '../lib/errors.js';
import type { Redis } from 'ioredis';
import { buildAuthenticators, type Authenticators } from '../authn/registry.js';
import { FailureGuard, failureGuardOptions } from '../check/failure-guard.js';
import { CheckPipeline, pipelineOptions } from '../check/pipeline.js';
import { RouteTable } from '../check/routes.js';
import { buildOpenApi, type OpenApiStage } from '../openapi/stage.js';
import { resolveConfigPath, type LoadedConfig } from '../config/loader.js';
import type { AdminTokenConfig, Config, PolicyConfig } from '../config/schema.js';
import { TokenMinter, minterOptions } from '../identity/minter.js';
import type { DenyList } from '../identity/revocation/deny-list.js';
import { MemoryDenyList } from '../identity/revocation/memory.js';
import { RedisDenyList } from '../identity/revocation/redis.js';
import { SigningKeys } from '../identity/signing-keys.js';
import { connectRateLimitRedis, connectRedis, describeRedis } from '../lib/redis.js';
import { PolicyAuthorizer, authorizerOptions } from '../policy/authorizer.js';
import { PolicyEngine, engineOptions } from '../policy/engine.js';
import { BundleSource, loadVerification } from '../policy/source.js';
import type { RateLimitStore } from '../ratelimit/limits.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import { MemoryStore } from '../ratelimit/memory-store.js';
import { RedisStore } from '../ratelimit/redis-store.js';
import { RateLimitConfigs } from '../ratelimit/reloader.js';
import { ResilientStore } from '../ratelimit/resilient-store.js';
import type { Logger } from '../telemetry/logger.js';
import { Metrics } from '../telemetry/metrics.js';
import { adminTokens } from './admin-tokens.js';
import { serverCredentials } from './grpc.js';
import type { TlsMaterial } from './transport.js';

export interface BuildOptions {
  /** Build and load everything, connect to nothing, start no timer (`--check-config`). */
  readonly dryRun: boolean;
}

export interface PolicyStage {
  readonly source: BundleSource;
  readonly authorizer: PolicyAuthorizer;
}

export interface Components {
  readonly loaded: LoadedConfig;
  readonly metrics: Metrics;
  readonly denyList: DenyList;
  readonly auth: Authenticators;
  readonly signingKeys?: SigningKeys;
  readonly policy?: PolicyStage;
  /** OpenAPI validation and the endpoint inventory (every spec loaded and compiled). */
  readonly openapi?: OpenApiStage;
  /** Rate-limit buckets and the failed-authentication counters. */
  readonly store: RateLimitStore;
  /** Set when the store is Redis behind a failure mode (readiness shows its degraded state). */
  readonly resilient?: ResilientStore;
  readonly limiter?: RateLimiter;
  readonly pipeline: CheckPipeline;
  /** The gRPC listener's certificate and key (undefined: plaintext). */
  readonly tls?: TlsMaterial;
  /** admin.tokens and those of admin.tokens_file. */
  readonly adminTokens: readonly AdminTokenConfig[];
  /** Closes every component, last built first. Idempotent. */
  close(): Promise<void>;
}

/** A startup failure that is not a config error: one line for the operator, no stack trace. */
export class StartupError extends Error {
  override readonly name = 'StartupError';
}

/** The policy stage: engine, bundle source (loaded now) and authorizer, wired for cache invalidation. */
async function buildPolicy(loaded: LoadedConfig, cfg: PolicyConfig, log: Logger, metrics: Metrics, dryRun: boolean): Promise<PolicyStage> {
  const engine = new PolicyEngine(engineOptions(cfg));
  const authorizer = new PolicyAuthorizer(engine, authorizerOptions(cfg), metrics);
  const source = new BundleSource(loaded, cfg, engine, await loadVerification(loaded, cfg), log, metrics);
  // A new bundle or data revision invalidates every cached decision (V-274677).
  source.onActivate(() => authorizer.invalidate());
  // A dry run compiles a file bundle as a start would; a URL bundle is not fetched (no connection).
  if (!dryRun || cfg.bundle.file !== undefined) {
    await source.start();
    if (dryRun) source.stop();
  }
  return { source, authorizer };
}

/** In-process buckets, or Redis behind the configured failure mode (in-process buckets as its `local`). */
function buildStore(cfg: Config, log: Logger, metrics: Metrics, lazy: boolean): { store: RateLimitStore; resilient?: ResilientStore } {
  const rl = cfg.ratelimit;
  const local = new MemoryStore(rl.memory_max_keys);
  if (rl.store !== 'redis' || !cfg.redis) return { store: local };
  const resilient = new ResilientStore(new RedisStore(connectRateLimitRedis(cfg.redis, log, { lazy }), { keyPrefix: cfg.redis.key_prefix }), rl.failure_mode, local, log, Date.now, metrics);
  metrics.observeStore(() => ({ store: resilient.kind, mode: rl.failure_mode, degraded: resilient.degraded }));
  return { store: resilient, resilient };
}

export async function buildComponents(loaded: LoadedConfig, log: Logger, opts: BuildOptions): Promise<Components> {
  const cfg = loaded.config;
  const { dryRun } = opts;
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  const metrics = new Metrics();
  closers.push(() => metrics.shutdown());

  try {
    // One command connection for revocation and API keys (the loader has checked that `redis` is set).
    const needsRedis = cfg.revocation.store === 'redis' || cfg.authentication.api_keys?.redis === true;
    const redis: Redis | undefined = needsRedis && cfg.redis ? connectRedis(cfg.redis, 'commands', log, { lazy: dryRun }) : undefined;
    if (redis) closers.push(() => Promise.resolve(redis.disconnect()));

    // The deny list must be complete before the first Check: a start that cannot load it fails.
    let denyList: DenyList;
    if (cfg.revocation.store === 'redis' && cfg.redis && redis) {
      const shared = new RedisDenyList(redis, connectRedis(cfg.redis, 'subscriber', log, { lazy: dryRun }), cfg.redis.key_prefix);
      denyList = shared;
      closers.push(() => shared.close());
      if (!dryRun) {
        await shared.start().catch((err: unknown) => {
          throw new StartupError(`revocation.store is redis, and Redis at ${describeRedis(cfg.redis)} cannot be reached to load the deny list: ${errorMessage(err)}`);
        });
      }
    } else {
      const snapshot = cfg.revocation.snapshot_file;
      const local = new MemoryDenyList(Date.now, snapshot === undefined ? undefined : resolveConfigPath(loaded, snapshot));
      denyList = local;
      closers.push(() => local.close());
      // A dry run reads the snapshot too: a corrupt one stops a start.
      await local.start();
    }

    const routes = new RouteTable(cfg.routes);
    const auth = await buildAuthenticators(loaded, routes.routes, redis, metrics);
    const signingKeys = cfg.token ? await SigningKeys.load(loaded, cfg.token.signing_keys) : undefined;
    const minter = cfg.token && signingKeys ? new TokenMinter(minterOptions(cfg.token), signingKeys, Date.now, metrics) : undefined;
    if (signingKeys && !dryRun) {
      // Key changes are audit events: which key signs, which are published.
      log.info({ event: 'signing_keys', signing_kid: signingKeys.current(Date.now()).kid, published_kids: signingKeys.jwks().keys.map((k) => k.kid) }, 'token signing keys loaded');
    }

    const policy = cfg.policy ? await buildPolicy(loaded, cfg.policy, log, metrics, dryRun) : undefined;
    if (policy) closers.push(() => Promise.resolve(policy.source.stop()));

    // A spec that does not load stops a start (and --check-config), naming file, pointer and problem.
    const openapi = cfg.openapi ? await buildOpenApi(loaded, cfg.openapi, { log, metrics, dryRun }) : undefined;

    const rl = cfg.ratelimit;
    const { store, resilient } = buildStore(cfg, log, metrics, dryRun);
    closers.push(() => store.close());
    let limiter: RateLimiter | undefined;
    if (rl.enabled) {
      const configs = new RateLimitConfigs(rl.files.map((f) => resolveConfigPath(loaded, f)), { algorithm: rl.algorithm, mergeDomains: rl.merge_domain_configs }, log, metrics);
      await configs.start(rl.reload_interval_ms);
      closers.push(() => Promise.resolve(configs.stop()));
      if (dryRun) configs.stop();
      limiter = new RateLimiter(() => configs.domains, store, rl.headers, rl.max_descriptors, {
        countRefused: rl.count_refused_requests,
        nearLimitRatio: rl.near_limit_ratio,
        algorithm: rl.algorithm,
        statsMaxKeys: rl.stats_max_keys,
        metrics,
      });
    }
    const guardOptions = failureGuardOptions(cfg.authentication);
    const failureGuard = guardOptions ? new FailureGuard(store, guardOptions, log, metrics) : undefined;

    // A revocation must not be outlived by a cached result (V-274677).
    denyList.onChange((change) => {
      metrics.event('revocation_changed');
      auth.introspector?.clear();
      minter?.forget(change.op !== 'reset' && change.entry.kind === 'subject' ? change.entry.value : undefined);
    });

    const pipeline = new CheckPipeline({
      metrics,
      options: pipelineOptions(cfg.authentication),
      routes,
      authenticatorsFor: auth.forRoute,
      credentialHeaders: auth.credentialHeaders,
      untrustedHeaders: auth.untrustedHeaders,
      ...(auth.isCredential ? { isCredential: auth.isCredential } : {}),
      denyList,
      ...(failureGuard ? { failureGuard } : {}),
      ...(minter && cfg.token ? { token: { minter, header: cfg.token.header.toLowerCase(), scheme: cfg.token.scheme } } : {}),
      ...(policy && cfg.policy ? { policy: { authorizer: policy.authorizer, dryRun: cfg.policy.dry_run, skipBodyParse: cfg.policy.skip_request_body_parse } } : {}),
      ...(openapi ? { openapi } : {}),
    });

    const tls = await serverCredentials(loaded, cfg.server);
    const admin = await adminTokens(loaded);
    return {
      loaded,
      metrics,
      denyList,
      auth,
      ...(signingKeys ? { signingKeys } : {}),
      ...(policy ? { policy } : {}),
      ...(openapi ? { openapi } : {}),
      store,
      ...(resilient ? { resilient } : {}),
      ...(limiter ? { limiter } : {}),
      pipeline,
      ...(tls ? { tls } : {}),
      adminTokens: admin,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
