// A shared store with a configured answer for its failures: `deny` (everything over limit),
// `allow` (nothing limited), or `local` (in-process buckets until the shared store answers
// again). Whether it is degraded is visible to readiness and the logs.
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import { UnavailableError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { BucketRequest, BucketState, EvaluateMode, RateLimitStore, WindowCount } from './limits.js';

export type FailureMode = 'deny' | 'allow' | 'local';

/** While the shared store is failing, it is tried again at most this often (others use the failure mode at once). */
const PROBE_INTERVAL_MS = 500;

export class ResilientStore implements RateLimitStore {
  readonly kind: string;
  private failing = false;
  private nextProbe = 0;

  constructor(
    private readonly primary: RateLimitStore,
    private readonly mode: FailureMode,
    private readonly local: RateLimitStore,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    this.kind = primary.kind;
  }

  get degraded(): boolean {
    return this.failing;
  }

  async evaluate(buckets: readonly BucketRequest[], mode: EvaluateMode = 'all'): Promise<BucketState[]> {
    // A dead store would cost every request its command timeout: answer by the failure mode,
    // and let one request at a time probe whether it is back.
    if (this.resting()) return this.fallback(buckets, mode);
    try {
      const r = await this.primary.evaluate(buckets, mode);
      this.answered();
      return r;
    } catch (err) {
      this.failed(err);
      return this.fallback(buckets, mode);
    }
  }

  /** The shared store's count, or a rejection: counters have no failure mode (their caller decides). */
  async count(key: string, windowS: number): Promise<WindowCount> {
    if (this.resting()) throw new UnavailableError('store_unavailable', `${this.kind} store is failing`);
    try {
      const r = await this.primary.count(key, windowS);
      this.answered();
      return r;
    } catch (err) {
      this.failed(err);
      throw err;
    }
  }

  /** While failing, true until the next probe is due; the caller that gets false is that probe. */
  private resting(): boolean {
    if (!this.failing) return false;
    if (this.now() < this.nextProbe) return true;
    this.nextProbe = this.now() + PROBE_INTERVAL_MS;
    return false;
  }

  private answered(): void {
    if (this.failing) {
      this.log.info({ event: 'ratelimit_store_recovered', store: this.kind }, 'rate-limit store answers again');
      this.metrics.event('ratelimit_store_recovered');
    }
    this.failing = false;
  }

  private failed(err: unknown): void {
    if (!this.failing) {
      this.log.warn({ event: 'ratelimit_store_failed', store: this.kind, mode: this.mode, err: errorMessage(err) }, 'rate-limit store failed');
      this.metrics.event('ratelimit_store_failed');
    }
    this.failing = true;
    this.nextProbe = this.now() + PROBE_INTERVAL_MS;
  }

  private fallback(buckets: readonly BucketRequest[], mode: EvaluateMode): Promise<BucketState[]> | BucketState[] {
    if (this.mode === 'local') return this.local.evaluate(buckets, mode);
    const allowed = this.mode === 'allow';
    return buckets.map((b) => ({
      allowed,
      remaining: allowed ? b.limit.requestsPerUnit : 0,
      resetMs: b.limit.windowSeconds * 1000,
      retryAfterMs: allowed ? 0 : 1000,
      used: 0,
    }));
  }

  async close(): Promise<void> {
    await this.primary.close();
    await this.local.close();
  }
}
