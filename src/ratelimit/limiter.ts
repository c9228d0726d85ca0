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

/** Whether bucket state `a` restricts more than `b`: refused before admitted, then fewer remaining. */
const restrictive = (a: BucketState, b: BucketState): boolean => (!a.allowed !== !b.allowed ? !a.allowed : a.remaining < b.remaining);
const isUnlimited = (l: Limit): boolean => l.unlimited;
const isEntries = (d: DescriptorRequest | readonly Entry[]): d is readonly Entry[] => Array.isArray(d);

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
  async shouldRateLimit(domain: string, descriptors: readonly (DescriptorRequest | readonly Entry[])[], hits: number, signal?: Pick<AbortSignal, 'throwIfAborted'>): Promise<RateLimitDecision> {
    const refused = this.refusal(domain, descriptors.length);
    if (refused !== undefined) throw refused;
    // Index loops, no per-descriptor closures or intermediate lists: this runs on every call.
    const n = descriptors.length;
    const config = this.domains().get(domain);
    const algorithm = this.opts.algorithm ?? 'fixed_window';
    const matches = new Array<Match | undefined>(n);
    let replaced: Set<string> | undefined;
    for (let i = 0; i < n; i++) {
      const d = descriptors[i]!;
      let m: Match | undefined;
      if (config) m = isEntries(d) ? matchDescriptor(config, d) : (overrideMatch(domain, d, algorithm) ?? matchDescriptor(config, d.entries));
      matches[i] = m;
      if (m) for (const l of m.limits) for (const r of l.replaces) (replaced ??= new Set()).add(r);
    }

    const buckets: BucketRequest[] = [];
    const owners: number[] = []; // the descriptor of each bucket (ascending: a descriptor's buckets are contiguous)
    for (let i = 0; i < n; i++) {
      const m = matches[i];
      if (!m) continue;
      for (let j = 0; j < m.limits.length; j++) {
        const limit = m.limits[j]!;
        if (limit.unlimited || (limit.name !== undefined && replaced?.has(limit.name) === true)) continue;
        buckets.push({ key: `rl:${m.keyBase}|${j}:${limit.algorithm}:${limit.windowSeconds}`, limit, hits });
        owners.push(i);
      }
    }
    const mode = this.opts.countRefused ? 'each' : 'all';
    signal?.throwIfAborted();
    const states = await childSpan('ratelimit.store', { 'envoy_authz.store': this.store.kind, 'envoy_authz.buckets': buckets.length }, () => this.store.evaluate(buckets, mode), this.opts.metrics);

    let worstLimit: Limit | undefined;
    let worstState: BucketState | undefined;
    const results = new Array<DescriptorResult>(n);
    let end = 0;
    for (let i = 0; i < n; i++) {
      const m = matches[i];
      const start = end;
      while (end < owners.length && owners[end] === i) end++;
      if (m !== undefined && m.limits.length > 0 && m.limits.every(isUnlimited)) {
        results[i] = { over: false, shadowOver: false, unlimited: true };
        continue;
      }
      let enforced = false;
      let over = false;
      let shadowOver = false;
      for (let q = start; q < end; q++) {
        const allowed = states[q]!.allowed;
        if (!buckets[q]!.limit.shadow) {
          enforced = true;
          if (!allowed) over = true;
        } else if (!allowed) shadowOver = true;
      }
      // The most restrictive of the enforced limits (of the shadow ones when none is enforced).
      let pick = -1;
      for (let q = start; q < end; q++) {
        if (enforced && buckets[q]!.limit.shadow) continue;
        if (pick < 0 || restrictive(states[q]!, states[pick]!)) pick = q;
      }
      if (pick < 0 || !m) {
        results[i] = { over: false, shadowOver };
        continue;
      }
      const limit = buckets[pick]!.limit;
      const state = states[pick]!;
      if (!limit.shadow && (worstState === undefined || restrictive(state, worstState))) {
        worstLimit = limit;
        worstState = state;
      }
      const rpu = limit.requestsPerUnit;
      const counts = descriptorStats(rpu, state.used, hits, !state.allowed, limit.shadow, this.ratio);
      const near = state.allowed && state.used + hits > nearLimitThreshold(rpu, this.ratio);
      const key = this.statKeys.label(m.statKey, m.configKey).slice(domain.length + 1);
      const limitLabel = limit.name ?? m.configKey.slice(domain.length + 1);
      results[i] = { over, limit, state, shadowOver, near, limitLabel, stats: { key, counts } };
    }
    // Rate-limit descriptors refuse alone; quota_mode ones only all together (as upstream).
    let over = false;
    let quotas = 0;
    let quotasOver = 0;
    for (const r of results) {
      if (r.limit?.quotaMode === true) {
        quotas++;
        if (r.over) quotasOver++;
      } else if (r.over) over = true;
    }
    if (quotas > 0 && quotasOver === quotas) over = true;
    return { over, descriptors: results, headers: worstLimit && worstState ? rateLimitHeaders(this.headerMode, worstLimit, worstState, over) : [] };
  }
}
