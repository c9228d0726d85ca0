// ShouldRateLimit, pure of gRPC: match every descriptor, drop replaced limits, evaluate all the
// buckets in one store call, and build the statuses and headers.
import type { DomainConfig } from './config.js';
import { rateLimitHeaders, type HeaderMode } from './headers.js';
import type { BucketRequest, BucketState, Limit, RateLimitStore } from './limits.js';
import { matchDescriptor, type Entry } from './matcher.js';
import { childSpan } from '../telemetry/tracing.js';

export interface DescriptorResult {
  readonly over: boolean;
  /** The limit reported for this descriptor (the most restrictive of its limits), if any. */
  readonly limit?: Limit;
  readonly state?: BucketState;
  /** A shadow-mode limit that would have limited. */
  readonly shadowOver: boolean;
}

export interface RateLimitDecision {
  readonly over: boolean;
  readonly descriptors: readonly DescriptorResult[];
  readonly headers: readonly [string, string][];
}

const restrictive = (a: { limit: Limit; state: BucketState }, b: { limit: Limit; state: BucketState }): boolean =>
  !a.state.allowed !== !b.state.allowed ? !a.state.allowed : a.state.remaining < b.state.remaining;

/** A request refused before anything is matched or spent (answered INVALID_ARGUMENT). */
export class RateLimitRequestError extends Error {
  override readonly name = 'RateLimitRequestError';
}

export class RateLimiter {
  constructor(
    private readonly domains: () => ReadonlyMap<string, DomainConfig>,
    private readonly store: RateLimitStore,
    private readonly headerMode: HeaderMode,
    /** Descriptors one request may carry (ratelimit.max_descriptors). */
    private readonly maxDescriptors: number,
  ) {}

  /** Whether a domain is configured (bounds metric labels). */
  knows(domain: string): boolean {
    return this.domains().has(domain);
  }

  /**
   * Why a request with this many descriptors is refused, if it is. Checked before any bucket is
   * touched: a request too large to answer (the statuses exceed the send limit) must not spend
   * tokens first.
   */
  refusal(descriptorCount: number): string | undefined {
    return descriptorCount > this.maxDescriptors ? `too many descriptors: ${descriptorCount}, at most ${this.maxDescriptors} per request (ratelimit.max_descriptors)` : undefined;
  }

  async shouldRateLimit(domain: string, descriptors: readonly (readonly Entry[])[], hits: number): Promise<RateLimitDecision> {
    const refused = this.refusal(descriptors.length);
    if (refused !== undefined) throw new RateLimitRequestError(refused);
    const config = this.domains().get(domain);
    const matches = descriptors.map((d) => (config ? matchDescriptor(config, d) : undefined));
    const replaced = new Set(matches.flatMap((m) => m?.limits.flatMap((l) => l.replaces) ?? []));

    const buckets: BucketRequest[] = [];
    const owners: { descriptor: number; limit: Limit }[] = [];
    matches.forEach((m, i) => {
      m?.limits.forEach((limit, j) => {
        if (limit.unlimited || (limit.name !== undefined && replaced.has(limit.name))) return;
        buckets.push({ key: `rl:${m.keyBase}|${j}:${limit.algorithm}:${limit.windowSeconds}`, limit, hits });
        owners.push({ descriptor: i, limit });
      });
    });
    const states = await childSpan('ratelimit.store', { 'envoy_authz.store': this.store.kind, 'envoy_authz.buckets': buckets.length }, () => this.store.evaluate(buckets));

    const perDescriptor = descriptors.map((): { limit: Limit; state: BucketState }[] => []);
    states.forEach((state, k) => perDescriptor[owners[k]!.descriptor]!.push({ limit: owners[k]!.limit, state }));
    let worst: { limit: Limit; state: BucketState } | undefined;
    const results = perDescriptor.map((list): DescriptorResult => {
      const enforced = list.filter((x) => !x.limit.shadow);
      const shadowOver = list.some((x) => x.limit.shadow && !x.state.allowed);
      const pick = (enforced.length > 0 ? enforced : list).reduce<(typeof list)[number] | undefined>((best, x) => (!best || restrictive(x, best) ? x : best), undefined);
      if (!pick) return { over: false, shadowOver };
      const over = enforced.some((x) => !x.state.allowed);
      if (!pick.limit.shadow && (!worst || restrictive(pick, worst))) worst = pick;
      return { over, limit: pick.limit, state: pick.state, shadowOver };
    });
    const over = results.some((r) => r.over);
    return { over, descriptors: results, headers: worst ? rateLimitHeaders(this.headerMode, worst.limit, worst.state, over) : [] };
  }
}
