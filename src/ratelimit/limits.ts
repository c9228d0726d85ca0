// A limit as the limiter sees it, whatever file syntax it came from.

export type Algorithm = 'token_bucket' | 'fixed_window';
/** Units of envoyproxy/ratelimit; `UNKNOWN` reports custom windows (and weeks) in responses. */
export type ReportedUnit = 'SECOND' | 'MINUTE' | 'HOUR' | 'DAY' | 'MONTH' | 'YEAR' | 'UNKNOWN';

export const UNIT_SECONDS: Readonly<Record<string, number>> = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  week: 604800,
  month: 2592000, // 30 days, as envoyproxy/ratelimit
  year: 31536000,
};

export interface Limit {
  readonly name?: string;
  /** Requests admitted per window (token bucket: refill of this many per window). */
  readonly requestsPerUnit: number;
  readonly windowSeconds: number;
  readonly reportedUnit: ReportedUnit;
  /** Token bucket capacity (defaults to requestsPerUnit). */
  readonly burst: number;
  readonly algorithm: Algorithm;
  readonly shadow: boolean;
  readonly unlimited: boolean;
  readonly replaces: readonly string[];
  readonly detailedMetric: boolean;
  /** upstream quota_mode: over limit in its status, but the request is refused only when every quota descriptor is over. */
  readonly quotaMode?: boolean;
}

export interface BucketRequest {
  /** Store key, unique per descriptor, value path and limit. */
  readonly key: string;
  readonly limit: Limit;
  /** 0 checks without consuming. */
  readonly hits: number;
}

export interface BucketState {
  readonly allowed: boolean;
  readonly remaining: number;
  /** ms until the bucket is full again / the window ends. */
  readonly resetMs: number;
  /** ms until a request of this size would be admitted (0 when allowed). */
  readonly retryAfterMs: number;
  /** Hits already counted before this request (fixed window: the count; token bucket: burst minus tokens left); for stats. */
  readonly used: number;
}

/** A plain counter in a fixed window that starts with its first hit (the failure guard's counts). */
export interface WindowCount {
  /** Hits in the current window, this one included. */
  readonly count: number;
  /** ms until the window ends and the count starts again from zero. */
  readonly resetMs: number;
}

/**
 * `all`: consume from every bucket only if no non-shadow bucket is over (one refusal spends
 * nothing). `each`: every bucket counts the request by itself, as envoyproxy/ratelimit's fixed
 * window does: a fixed-window counter always grows by the hits, also when over; a token bucket is
 * spent when it has room.
 */
export type EvaluateMode = 'all' | 'each';

export interface RateLimitStore {
  readonly kind: string;
  /** Atomically: evaluates every bucket and consumes by `mode` (default `all`: from all of them only if no non-shadow bucket is over). */
  evaluate(buckets: readonly BucketRequest[], mode?: EvaluateMode): Promise<BucketState[]>;
  /**
   * Adds one hit to the counter `key` (window `windowS` from its first hit) and returns the count.
   * Rejects when the store fails: no failure mode is applied, so a caller can tell "store failed"
   * from "threshold reached".
   */
  count(key: string, windowS: number): Promise<WindowCount>;
  close(): Promise<void>;
}
