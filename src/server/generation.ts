// A config generation: the components built from one config, the gRPC handlers over them, and the
// calls in progress on them. The gRPC services and the admin API read the current generation
// through one reference (Generations.current); a call keeps the generation it started on until it
// ends, and a replaced generation is closed once its calls have ended (bounded).
import type { AuthorizationHandlers } from '../gen/envoy/service/auth/v3/Authorization.js';
import type { RateLimitServiceHandlers } from '../gen/envoy/service/ratelimit/v3/RateLimitService.js';
import type { Logger } from '../telemetry/logger.js';
import { authorizationHandlers } from './authz-service.js';
import type { Components } from './components.js';
import { InFlight } from './inflight.js';
import { rateLimitHandlers } from './rls-service.js';

/** The longest a replaced generation waits for its calls before it is closed anyway (each call has a deadline far below). */
export const RETIRE_MAX_MS = 30_000;

export class Generation {
  /** Calls in progress on this generation (counted by the service's InFlight too). */
  readonly inflight: InFlight;
  readonly authz: AuthorizationHandlers | undefined;
  readonly rls: RateLimitServiceHandlers | undefined;

  constructor(
    readonly id: number,
    readonly c: Components,
    deps: { readonly log: Logger; readonly inflight: InFlight },
  ) {
    this.inflight = new InFlight(deps.inflight);
    const { log } = deps;
    const { metrics, limiter, pipeline } = c;
    const cfg = c.loaded.config;
    this.authz = cfg.check.enabled ? authorizationHandlers({ pipeline, check: cfg.check, log, inflight: this.inflight, metrics, recorder: c.recorder }) : undefined;
    this.rls = limiter ? rateLimitHandlers({ limiter, log, inflight: this.inflight, metrics }) : undefined;
  }
}

export class Generations {
  private gen: Generation;
  private readonly retiring = new Set<Promise<void>>();
  private closed = false;

  constructor(
    first: Generation,
    private readonly log: Logger,
    private readonly retireMaxMs = RETIRE_MAX_MS,
  ) {
    this.gen = first;
  }

  get current(): Generation {
    return this.gen;
  }

  /** Generations replaced but not yet closed (calls still running on them). */
  get retiringCount(): number {
    return this.retiring.size;
  }

  /** Makes `next` current at once; the previous one is closed when its calls have ended. */
  swap(next: Generation): void {
    if (this.closed) throw new Error('generations closed');
    const old = this.gen;
    this.gen = next;
    const done: Promise<void> = this.retire(old).finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  private async retire(old: Generation): Promise<void> {
    const finished = await old.inflight.idle(this.retireMaxMs);
    if (!finished) this.log.warn({ event: 'generation_forced', generation: old.id, in_flight: old.inflight.size }, 'replaced config generation still busy; closing it');
    await old.c.close();
  }

  /** Closes the current generation after the replaced ones. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.retiring]);
    await this.gen.c.close();
  }
}
