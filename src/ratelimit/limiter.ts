// ratelimit/: rate-limit files (config, yaml-tree), matching, this limiter, stats, stores
// (memory, Redis, resilient) and headers; the gRPC adapter is server/rls-service.ts.
// ShouldRateLimit, pure of gRPC: match every descriptor, drop replaced limits, evaluate all the
// buckets in one store call, and build the statuses, headers and per-descriptor stats, with
// envoyproxy/ratelimit's request rules (service/ratelimit.go): an empty domain or descriptor
// list is an error; an unlimited descriptor answers OK with the largest remaining count;
// quota_mode descriptors refuse only when all of them are over; a descriptor's own `limit`
// (Envoy's override) replaces the configured one for a known domain.
import type { MetricsSink } from '../telemetry/metrics.js';
import type { DomainConfig } from './config.js';
import { rateLimitHeaders, type HeaderMode } from './headers.js';
import { UNIT_SECONDS, type Algorithm, type BucketRequest, type BucketState, type Limit, type RateLimitStore, type ReportedUnit } from './limits.js';
import { matchDescriptor, type Entry, type Match } from './matcher.js';
import { descriptorStats, nearLimitThreshold, StatKeys, type DescriptorStats } from './stats.js';
import { childSpan } from '../telemetry/tracing.js';

export interface DescriptorRequest {
  readonly entries: readonly Entry[];
  /** Envoy's per-descriptor limit override (RateLimitDescriptor.limit). */
  readonly override?: { readonly requestsPerUnit: number; readonly unit: string };
}

export interface DescriptorResult {
  readonly over: boolean;
  /** The limit reported for this descriptor (the most restrictive of its limits), if any. */
  readonly limit?: Limit;
  readonly state?: BucketState;
  /** A shadow-mode limit that would have limited. */
  readonly shadowOver: boolean;
  /** Matched an `unlimited` limit: OK, with the largest remaining count (as upstream). */
  readonly unlimited?: boolean;
  /** Past the near-limit threshold (ratelimit.near_limit_ratio of the limit) and within it. */
  readonly near?: boolean;
  /** The reported limit's metric label: its configured name, else its descriptor path in the file
   *  (e.g. `user`, `route_default`; `override` for Envoy's limit overrides) - never a request value. */
  readonly limitLabel?: string;
  /** upstream's stats for this descriptor, under its (bounded) stat key without the domain. */
  readonly stats?: { readonly key: string; readonly counts: DescriptorStats };
}

export interface RateLimitDecision {
  readonly over: boolean;
  readonly descriptors: readonly DescriptorResult[];
  readonly headers: readonly [string, string][];
}

export interface LimiterOptions {
  /** ratelimit.count_refused_requests: every bucket counts the request by itself, as upstream. */
  readonly countRefused?: boolean;
  /** ratelimit.near_limit_ratio (upstream NEAR_LIMIT_RATIO). */
  readonly nearLimitRatio?: number;
  /** Algorithm for Envoy's limit overrides (ratelimit.algorithm). */
  readonly algorithm?: Algorithm;
  /** Distinct stat keys with request values (ratelimit.stats_max_keys). */
  readonly statsMaxKeys?: number;
  /** Times the store call (stage `ratelimit.store`). */
  readonly metrics?: MetricsSink;
}

const restrictive = (a: { limit: Limit; state: BucketState }, b: { limit: Limit; state: BucketState }): boolean =>
  !a.state.allowed !== !b.state.allowed ? !a.state.allowed : a.state.remaining < b.state.remaining;

/** A request refused before anything is matched or spent: INVALID_ARGUMENT, or UNKNOWN where upstream answers a plain error. */
export class RateLimitRequestError extends Error {
  override readonly name = 'RateLimitRequestError';
  constructor(
    message: string,
    readonly code: 'INVALID_ARGUMENT' | 'UNKNOWN' = 'INVALID_ARGUMENT',
  ) {
    super(message);
  }
}

const esc = encodeURIComponent;

function overrideMatch(domain: string, d: DescriptorRequest, algorithm: Algorithm): Match | undefined {
  const o = d.override;
  if (!o) return undefined;
  const unit = o.unit.toLowerCase();
  const windowSeconds = UNIT_SECONDS[unit];
  if (windowSeconds === undefined || unit === 'week') return undefined;
  const limit: Limit = {
    requestsPerUnit: o.requestsPerUnit,
    windowSeconds,
    reportedUnit: unit.toUpperCase() as ReportedUnit,
    burst: Math.max(o.requestsPerUnit, 1),
    algorithm,
    shadow: false,
    unlimited: false,
    replaces: [],
    detailedMetric: false,
  };
  const key = `${domain}.${d.entries.map((e) => (e.value === '' ? e.key : `${e.key}_${e.value}`)).join('.')}`;
  return { limits: [limit], keyBase: `${esc(domain)}|override:${o.requestsPerUnit}:${unit}|${d.entries.map((e) => `${esc(e.key)}=${esc(e.value)}`).join('|')}`, statKey: key, configKey: `${domain}.override` };
}

export class RateLimiter {
  private readonly ratio: number;
  private readonly statKeys: StatKeys;

  constructor(
    private readonly domains: () => ReadonlyMap<string, DomainConfig>,
    private readonly store: RateLimitStore,
    private readonly headerMode: HeaderMode,
    /** Descriptors one request may carry (ratelimit.max_descriptors). */
    private readonly maxDescriptors: number,
    private readonly opts: LimiterOptions = {},
  ) {
    this.ratio = opts.nearLimitRatio ?? 0.8;
    this.statKeys = new StatKeys(opts.statsMaxKeys ?? 1000);
  }

  /** Whether a domain is configured (bounds metric labels). */
  knows(domain: string): boolean {
    return this.domains().has(domain);
  }

  /**
   * Why a request is refused, if it is. Checked before any bucket is touched: a request too large
   * to answer (the statuses exceed the send limit) must not spend tokens first.
   */
  refusal(domain: string, descriptorCount: number): RateLimitRequestError | undefined {
    // upstream's order and words; a plain Go error reaches the client as UNKNOWN.
    if (domain === '') return new RateLimitRequestError('rate limit domain must not be empty', 'UNKNOWN');
    if (descriptorCount === 0) return new RateLimitRequestError('rate limit descriptor list must not be empty', 'UNKNOWN');
    if (descriptorCount > this.maxDescriptors) return new RateLimitRequestError(`too many descriptors: ${descriptorCount}, at most ${this.maxDescriptors} per request (ratelimit.max_descriptors)`);
    return undefined;
  }

  /** `signal` aborted (the call was reset or ran out of time) before the store call: rejects with its reason, no tokens spent. */
  async shouldRateLimit(domain: string, descriptors: readonly (DescriptorRequest | readonly Entry[])[], hits: number, signal?: AbortSignal): Promise<RateLimitDecision> {
    const refused = this.refusal(domain, descriptors.length);
    if (refused !== undefined) throw refused;
    const reqs: DescriptorRequest[] = descriptors.map((d) => (Array.isArray(d) ? { entries: d as readonly Entry[] } : (d as DescriptorRequest)));
    const config = this.domains().get(domain);
    const matches = reqs.map((d) => (config ? (overrideMatch(domain, d, this.opts.algorithm ?? 'fixed_window') ?? matchDescriptor(config, d.entries)) : undefined));
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
    const mode = this.opts.countRefused ? 'each' : 'all';
    signal?.throwIfAborted();
    const states = await childSpan('ratelimit.store', { 'envoy_authz.store': this.store.kind, 'envoy_authz.buckets': buckets.length }, () => this.store.evaluate(buckets, mode), this.opts.metrics);

    const perDescriptor = reqs.map((): { limit: Limit; state: BucketState }[] => []);
    states.forEach((state, k) => perDescriptor[owners[k]!.descriptor]!.push({ limit: owners[k]!.limit, state }));
    let worst: { limit: Limit; state: BucketState } | undefined;
    const results = perDescriptor.map((list, i): DescriptorResult => {
      const m = matches[i];
      const unlimited = m !== undefined && m.limits.length > 0 && m.limits.every((l) => l.unlimited);
      if (unlimited) return { over: false, shadowOver: false, unlimited: true };
      const enforced = list.filter((x) => !x.limit.shadow);
      const shadowOver = list.some((x) => x.limit.shadow && !x.state.allowed);
      const pick = (enforced.length > 0 ? enforced : list).reduce<(typeof list)[number] | undefined>((best, x) => (!best || restrictive(x, best) ? x : best), undefined);
      if (!pick || !m) return { over: false, shadowOver };
      const over = enforced.some((x) => !x.state.allowed);
      if (!pick.limit.shadow && (!worst || restrictive(pick, worst))) worst = pick;
      const rpu = pick.limit.requestsPerUnit;
      const counts = descriptorStats(rpu, pick.state.used, hits, !pick.state.allowed, pick.limit.shadow, this.ratio);
      const near = pick.state.allowed && pick.state.used + hits > nearLimitThreshold(rpu, this.ratio);
      const key = this.statKeys.label(m.statKey, m.configKey).slice(domain.length + 1);
      const limitLabel = pick.limit.name ?? m.configKey.slice(domain.length + 1);
      return { over, limit: pick.limit, state: pick.state, shadowOver, near, limitLabel, stats: { key, counts } };
    });
    // Rate-limit descriptors refuse alone; quota_mode ones only all together (as upstream).
    const quota = results.filter((r) => r.limit?.quotaMode === true);
    const over = results.some((r) => r.over && r.limit?.quotaMode !== true) || (quota.length > 0 && quota.every((r) => r.over));
    return { over, descriptors: results, headers: worst ? rateLimitHeaders(this.headerMode, worst.limit, worst.state, over) : [] };
  }
}
