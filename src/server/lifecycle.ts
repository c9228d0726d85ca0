// What the service says about itself while it runs (readiness), and how it goes down: NOT_SERVING,
// drain, stop accepting, wait for in-flight calls (bounded), flush, force, close the components.
import type { ServerConfig } from '../config/schema.js';
import type { Logger } from '../telemetry/logger.js';
import type { Readiness } from './admin.js';
import type { Components } from './components.js';
import type { Generations } from './generation.js';
import type { Health } from './health.js';
import type { InFlight } from './inflight.js';
import { AUTHZ_SERVICE, RLS_SERVICE } from './health.js';
import type { ConfigStatus } from './reload.js';
import type { GrpcServer } from './transport.js';

/** After the last call ends, how long open connections get to flush and close before being cut. */
const FLUSH_MS = 500;
/** How often gRPC health follows readiness (Envoy health-checks every few seconds). */
const HEALTH_REFRESH_MS = 1000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Lifecycle {
  private serving = false;
  private stopping: Promise<void> | undefined;
  private readonly closers: (() => Promise<void>)[] = [];
  private refresher: NodeJS.Timeout | undefined;
  private lastHealth = '';

  constructor(
    private readonly gens: Generations,
    private readonly deps: {
      readonly server: GrpcServer;
      readonly health: Health;
      readonly inflight: InFlight;
      readonly cfg: ServerConfig;
      readonly log: Logger;
      /** The config generation and the last reload's outcome (shown in /readyz; a failed reload does not make the service unready). */
      readonly config?: () => ConfigStatus;
    },
  ) {}

  /** The current config generation's components (a reload replaces them). */
  private get c(): Components {
    return this.gens.current.c;
  }

  /** Listeners and other things started after the components: closed before the components, last first. */
  onClose(closer: () => Promise<void>): void {
    this.closers.push(closer);
  }

  markServing(): void {
    this.serving = true;
    this.refreshHealth();
    this.refresher = setInterval(() => this.refreshHealth(), HEALTH_REFRESH_MS);
    this.refresher.unref();
    // Registered once, for the service's lifetime: each reads the generation current at collection.
    const metrics = this.c.metrics;
    metrics.observeDependencies(() => this.dependencies());
    metrics.observePolicyRevision(() => this.c.policy?.source.status().revision);
    metrics.observeSigningKey(() => this.c.signingKeys?.current(Date.now()).kid);
    metrics.observeStore(() => {
      const c = this.c;
      return c.resilient ? { store: c.resilient.kind, mode: c.loaded.config.ratelimit.failure_mode, degraded: c.resilient.degraded } : undefined;
    });
  }

  /**
   * Whether each dependency works now. Which of them make the service unready (docs/operations.md,
   * "Health and readiness"): a policy with no active bundle (every Check would fail) and a deny
   * list never loaded. A Redis outage does not: decisions continue on the last loaded deny list
   * and on the rate-limit failure mode, and every instance shares that Redis - turning its outage
   * into every instance's unreadiness would turn it into a total outage.
   */
  private dependencies(): Record<string, boolean> {
    const c = this.c;
    const deps: Record<string, boolean> = { revocation: c.denyList.ready };
    if (c.limiter) deps.ratelimit_store = !c.resilient?.degraded;
    if (c.policy) deps.policy = c.policy.source.status().revision !== undefined;
    return deps;
  }

  /** /readyz, gRPC health and envoy_authz_dependency_up say the same. */
  readiness(): Readiness {
    const c = this.c;
    const components: Record<string, string> = {
      grpc: this.serving ? 'serving' : 'not_serving',
      revocation: c.denyList.ready ? 'ready' : c.denyList.loaded ? 'degraded (store unreachable; serving the last loaded list)' : 'not loaded',
    };
    if (c.limiter) {
      const mode = c.loaded.config.ratelimit.failure_mode;
      components.ratelimit_store = `${c.store.kind}${c.resilient?.degraded ? ` degraded (failure_mode ${mode})` : ''}`;
    }
    const st = c.policy?.source.status();
    if (st) components.policy = st.revision !== undefined ? `active ${st.revision}${st.lastError ? ' (last update rejected)' : ''}` : 'no bundle';
    const checkReady = this.serving && c.denyList.loaded && (st === undefined || st.revision !== undefined);
    const config = this.deps.config?.();
    return { ready: checkReady, components, ...(config ? { config } : {}) };
  }

  /** gRPC health follows readiness: Check needs the policy and the deny list; ShouldRateLimit only a listener. */
  private refreshHealth(): void {
    const ready = this.readiness().ready;
    const key = `${this.serving}:${ready}`;
    if (key === this.lastHealth) return;
    this.lastHealth = key;
    const { health } = this.deps;
    health.set('', ready ? 'SERVING' : 'NOT_SERVING');
    health.set(AUTHZ_SERVICE, ready ? 'SERVING' : 'NOT_SERVING');
    health.set(RLS_SERVICE, this.serving ? 'SERVING' : 'NOT_SERVING');
  }

  /** Idempotent: a second signal during the drain joins the first shutdown. */
  shutdown(): Promise<void> {
    this.stopping ??= this.run();
    return this.stopping;
  }

  /** A start that failed half way: close whatever was opened, with no drain and no grace. */
  async abort(): Promise<void> {
    clearInterval(this.refresher);
    this.deps.server.forceShutdown();
    for (const close of this.closers.splice(0).reverse()) await close().catch(() => undefined);
    await this.gens.close();
  }

  private async run(): Promise<void> {
    const { server, health, inflight, cfg, log } = this.deps;
    this.serving = false;
    clearInterval(this.refresher);
    health.setAll('NOT_SERVING');
    log.info({ event: 'stopping', drain_ms: cfg.shutdown_drain_ms, in_flight: inflight.size }, 'shutting down');
    // Envoy's health checks see NOT_SERVING and move traffic away before we stop accepting.
    if (cfg.shutdown_drain_ms > 0) await sleep(cfg.shutdown_drain_ms);
    // Stop accepting new calls; calls already running continue.
    const closed = new Promise<void>((r) => server.tryShutdown(() => r()));
    const finished = await inflight.idle(cfg.shutdown_grace_ms);
    if (!finished) log.warn({ event: 'shutdown_forced', in_flight: inflight.size }, 'grace period over; cancelling calls');
    // The last answers may still be on the wire: let the connections close by themselves, briefly.
    await Promise.race([closed, sleep(FLUSH_MS)]);
    // Cancels what is left, including idle health Watch streams that would otherwise hold the server open.
    server.forceShutdown();
    for (const close of this.closers.splice(0).reverse()) await close();
    await this.gens.close();
    log.info({ event: 'stopped' }, 'stopped');
  }
}
