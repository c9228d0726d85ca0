// server/: this composition root, service.ts (start and --check-config), lifecycle (readiness,
// health, drain), the gRPC transport and connection limits, the service adapters, admin HTTP.
// The one composition root: from a validated config to the components that serve it, each with
// its closer. A real start (service.ts) and `--check-config` (a dry run) both come through here,
// so the two cannot disagree about what a config means: a dry run builds and loads everything a
// start would (keys, JWKS files, certificates, API key files, rate-limit files, a file bundle
// compiled to wasm) but opens no connection, binds no port and starts no timer.
import { stat } from 'node:fs/promises';
import { errorMessage } from '../lib/errors.js';
import type { Redis } from 'ioredis';
import type { Authenticator } from '../authn/authenticator.js';
import { buildAuthenticators, type Authenticators } from '../authn/registry.js';
import type { SignatureThread } from '../authn/jwt.js';
import { FailureGuard, failureGuardOptions } from '../check/failure-guard.js';
import { CheckPipeline, pipelineOptions } from '../check/pipeline.js';
import { RouteTable, type Route } from '../check/routes.js';
import { InventoryLedger } from '../openapi/inventory.js';
import { buildOpenApi, type OpenApiStage } from '../openapi/stage.js';
import { resolveConfigPath, type LoadedConfig } from '../config/loader.js';
import type { AdminTokenConfig, Config, PolicyConfig } from '../config/schema.js';
import { TokenMinter, minterOptions } from '../identity/minter.js';
import type { DenyList } from '../identity/revocation/deny-list.js';
import { MemoryDenyList } from '../identity/revocation/memory.js';
import { RedisDenyList } from '../identity/revocation/redis.js';
import { SigningKeys } from '../identity/signing-keys.js';
import { connectRateLimitRedis, connectRedis, describeRedis } from '../lib/redis.js';
import { GrpcBodies } from '../envoy/grpc-body.js';
import { PolicyAuthorizer, authorizerOptions } from '../policy/authorizer.js';
import { PolicyEngine, engineOptions } from '../policy/engine.js';
import { BundleSource, loadVerification } from '../policy/source.js';
import type { RateLimitStore } from '../ratelimit/limits.js';
import { RateLimiter } from '../ratelimit/limiter.js';
import { MemoryStore } from '../ratelimit/memory-store.js';
import { RedisStore } from '../ratelimit/redis-store.js';
import { RateLimitConfigs } from '../ratelimit/reloader.js';
import { ResilientStore } from '../ratelimit/resilient-store.js';
import { buildDecisionRecorder } from '../telemetry/decision-log/build.js';
import type { DecisionRecorder } from '../telemetry/decision-log/recorder.js';
import type { Logger } from '../telemetry/logger.js';
import { Metrics } from '../telemetry/metrics.js';
import { adminTokens } from './admin-tokens.js';
import { serverCredentials } from './grpc.js';
import { SharedResources, settingsKey, type Lease, type Opened } from './shared.js';
import type { TlsMaterial } from './transport.js';

export interface BuildOptions {
  /** Build and load everything, connect to nothing, start no timer (`--check-config`). */
  readonly dryRun: boolean;
  /** The service's metrics, which outlive every generation (absent: the build makes its own and closes it). */
  readonly metrics?: Metrics;
  /** Components kept from the previous generation when their settings are unchanged (absent: nothing shared). */
  readonly shared?: SharedResources;
  /** Read the gRPC listener's certificate and key (false on a reload: the listener keeps its own). */
  readonly listenerTls?: boolean;
  /** Stands in for the configured authenticators (the offline evaluator's explicit identity). */
  readonly authenticatorsFor?: (route: Route) => readonly Authenticator[];
  /** Where JWT signatures are checked (default thread_pool): the process's, fixed for its life. */
  readonly jwtSignatures?: SignatureThread;
}

export interface PolicyStage {
  readonly source: BundleSource;
  readonly authorizer: PolicyAuthorizer;
  readonly engine: PolicyEngine;
  readonly grpcBodies?: GrpcBodies;
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
  /** Audit records masked by the bundle's system.log.mask, and the decision-log sinks. */
  readonly recorder: DecisionRecorder;
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
  const grpcBodies = cfg.proto_descriptor !== undefined ? await GrpcBodies.load(loaded, cfg.proto_descriptor) : undefined;
  return { source, authorizer, engine, ...(grpcBodies ? { grpcBodies } : {}) };
}

/** In-process buckets, or Redis behind the configured failure mode (in-process buckets as its `local`). */
function buildStore(cfg: Config, log: Logger, metrics: Metrics, lazy: boolean): { store: RateLimitStore; resilient?: ResilientStore } {
  const rl = cfg.ratelimit;
  const local = new MemoryStore(rl.memory_max_keys);
  if (rl.store !== 'redis' || !cfg.redis) return { store: local };
  const resilient = new ResilientStore(new RedisStore(connectRateLimitRedis(cfg.redis, log, { lazy }), { keyPrefix: cfg.redis.key_prefix }), rl.failure_mode, local, log, Date.now, metrics);
  return { store: resilient, resilient };
}

/** mtime, size and inode of a file: a changed key file makes a new key for the component built from it. */
async function fileStamp(path: string | undefined): Promise<string> {
  if (path === undefined) return '';
  return stat(path).then(
    (s) => `${s.mtimeMs}:${s.size}:${s.ino}`,
    () => 'missing',
  );
}

export async function buildComponents(loaded: LoadedConfig, log: Logger, opts: BuildOptions): Promise<Components> {
  const cfg = loaded.config;
  const { dryRun } = opts;
  const closers: (() => Promise<void>)[] = [];
  const close = async (): Promise<void> => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  };
  const metrics = opts.metrics ?? new Metrics();
  if (!opts.metrics) closers.push(() => metrics.shutdown());
  const shared = opts.shared ?? new SharedResources();
  /** A shared component, given back when this generation closes. */
  const use = async <T>(key: string, open: () => Promise<Opened<T>>): Promise<T> => {
    const lease = await shared.lease(key, open);
    closers.push(() => lease.release());
    return lease.value;
  };

  try {
    // One command connection for revocation and API keys (the loader has checked that `redis` is set).
    const needsRedis = cfg.revocation.store === 'redis' || cfg.authentication.api_keys?.redis === true;
    const redisCfg = cfg.redis;
    const commands = (): Promise<Lease<Redis>> =>
      shared.lease(settingsKey('redis-commands', redisCfg, dryRun), () => {
        const r = connectRedis(redisCfg!, 'commands', log, { lazy: dryRun });
        return Promise.resolve({ value: r, close: () => Promise.resolve(r.disconnect()) });
      });
    let redis: Redis | undefined;
    if (needsRedis && redisCfg) {
      const lease = await commands();
      closers.push(() => lease.release());
      redis = lease.value;
    }

    // The deny list must be complete before the first Check: a start that cannot load it fails.
    // It is kept across reloads while `revocation` and `redis` stay the same (a memory list holds the revocations).
    const snapshot = cfg.revocation.snapshot_file === undefined ? undefined : resolveConfigPath(loaded, cfg.revocation.snapshot_file);
    const denyList = await use<DenyList>(settingsKey('deny-list', cfg.revocation, snapshot, cfg.revocation.store === 'redis' ? redisCfg : undefined, dryRun), async () => {
      if (cfg.revocation.store === 'redis' && redisCfg) {
        const lease = await commands();
        const list = new RedisDenyList(lease.value, connectRedis(redisCfg, 'subscriber', log, { lazy: dryRun }), redisCfg.key_prefix);
        const closeList = async (): Promise<void> => {
          await list.close().catch(() => undefined);
          await lease.release();
        };
        if (!dryRun) {
          await list.start().catch(async (err: unknown) => {
            await closeList();
            throw new StartupError(`revocation.store is redis, and Redis at ${describeRedis(redisCfg)} cannot be reached to load the deny list: ${errorMessage(err)}`);
          });
        }
        return { value: list, close: closeList };
      }
      const local = new MemoryDenyList(Date.now, snapshot);
      // A dry run reads the snapshot too: a corrupt one stops a start.
      await local.start().catch(async (err: unknown) => {
        await local.close().catch(() => undefined);
        throw err;
      });
      return { value: local, close: () => local.close() };
    });

    const routes = new RouteTable(cfg.routes);
    const auth = await buildAuthenticators(loaded, routes.routes, redis, metrics, opts.jwtSignatures);
    const signingKeys = cfg.token ? await SigningKeys.load(loaded, cfg.token.signing_keys) : undefined;
    const minter = cfg.token && signingKeys ? new TokenMinter(minterOptions(cfg.token), signingKeys, Date.now, metrics) : undefined;
    if (signingKeys && !dryRun) {
      // Key changes are audit events: which key signs, which are published, which activate when.
      const now = Date.now();
      log.info(
        { event: 'signing_keys', signing_kid: signingKeys.current(now).kid, published_kids: signingKeys.jwks().keys.map((k) => k.kid), keys: signingKeys.summary(now) },
        'token signing keys loaded',
      );
      const stopLogging = signingKeys.logActivations(log);
      closers.push(() => Promise.resolve(stopLogging()));
    }

    // Kept across reloads while `policy` (and its verification key and descriptor files) stay the
    // same: the bundle source watches its bundle itself (the decision cache is emptied at each swap).
    const policyCfg = cfg.policy;
    const verificationKey = policyCfg?.verification ? resolveConfigPath(loaded, policyCfg.verification.key_file) : undefined;
    const descriptors = policyCfg?.proto_descriptor !== undefined ? resolveConfigPath(loaded, policyCfg.proto_descriptor) : undefined;
    const policy = policyCfg
      ? await use(settingsKey('policy', policyCfg, loaded.dir, await fileStamp(verificationKey), await fileStamp(descriptors), dryRun), async () => {
          const stage = await buildPolicy(loaded, policyCfg, log, metrics, dryRun);
          return { value: stage, close: () => Promise.resolve(stage.source.stop()) };
        })
      : undefined;

    // A spec that does not load stops a start (and --check-config), naming file, pointer and problem.
    // The inventory's counts are "since start": one ledger for the process, kept across reloads.
    const ledger = cfg.openapi ? await use(settingsKey('openapi-inventory'), () => Promise.resolve({ value: new InventoryLedger(), close: () => Promise.resolve() })) : undefined;
    const openapi = cfg.openapi ? await buildOpenApi(loaded, cfg.openapi, { log, metrics, dryRun, ...(ledger ? { ledger } : {}) }) : undefined;

    const rl = cfg.ratelimit;
    // Buckets are kept across reloads while the store's settings stay the same.
    const storeRedis = rl.store === 'redis' ? redisCfg : undefined;
    const { store, resilient } = await use(settingsKey('ratelimit-store', rl.store, rl.memory_max_keys, rl.failure_mode, storeRedis, dryRun), () => {
      const built = buildStore(cfg, log, metrics, dryRun);
      return Promise.resolve({ value: built, close: () => built.store.close() });
    });
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

    // A revocation must not be outlived by a cached result (V-274677). The deny list may outlive
    // this generation: its listener goes with it.
    const unsubscribe = denyList.onChange((change) => {
      metrics.event('revocation_changed');
      auth.introspector?.clear();
      minter?.forget(change.op !== 'reset' && change.entry.kind === 'subject' ? change.entry.value : undefined);
    });
    closers.push(() => Promise.resolve(unsubscribe()));

    const pipeline = new CheckPipeline({
      metrics,
      options: pipelineOptions(cfg.authentication),
      routes,
      authenticatorsFor: opts.authenticatorsFor ?? auth.forRoute,
      credentialHeaders: auth.credentialHeaders,
      untrustedHeaders: auth.untrustedHeaders,
      ...(auth.isCredential ? { isCredential: auth.isCredential } : {}),
      denyList,
      ...(failureGuard ? { failureGuard } : {}),
      ...(minter && cfg.token ? { token: { minter, header: cfg.token.header.toLowerCase(), scheme: cfg.token.scheme } } : {}),
      ...(policy && cfg.policy
        ? {
            policy: {
              authorizer: policy.authorizer,
              dryRun: cfg.policy.dry_run,
              skipBodyParse: cfg.policy.skip_request_body_parse,
              stripCredentialHeaders: cfg.policy.input.strip_credential_headers,
              ...(policy.grpcBodies ? { grpcBodies: policy.grpcBodies } : {}),
            },
          }
        : {}),
      ...(openapi ? { openapi } : {}),
    });
    const recorder = await buildDecisionRecorder(loaded, { engine: policy?.engine, credentialHeaders: auth.credentialHeaders, log, metrics, dryRun });
    closers.push(() => recorder.close());

    const tls = opts.listenerTls === false ? undefined : await serverCredentials(loaded, cfg.server);
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
      recorder,
      ...(tls ? { tls } : {}),
      adminTokens: admin,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
