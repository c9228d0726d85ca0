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

export class RateLimiter {
  constructor(
    private readonly domains: () => ReadonlyMap<string, DomainConfig>,
    private readonly store: RateLimitStore,
    private readonly headerMode: HeaderMode,
  ) {}

  /** Whether a domain is configured (bounds metric labels). */
  knows(domain: string): boolean {
    return this.domains().has(domain);
  }

  /** `signal` aborted (the call was reset or ran out of time) before the store call: rejects with its reason, no tokens spent. */
  async shouldRateLimit(domain: string, descriptors: readonly (readonly Entry[])[], hits: number, signal?: AbortSignal): Promise<RateLimitDecision> {
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
    signal?.throwIfAborted();
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
