// Rate-limit response headers for the most restrictive limit: the IETF draft form
// (RateLimit-Policy / RateLimit) and, by config, the older X-RateLimit-* form; Retry-After on 429.
import type { BucketState, Limit } from './limits.js';

export type HeaderMode = 'draft' | 'legacy' | 'both' | 'none';

export function rateLimitHeaders(mode: HeaderMode, limit: Limit, state: BucketState, overLimit: boolean): [string, string][] {
  const out: [string, string][] = [];
  const name = JSON.stringify(limit.name ?? 'default');
  const resetS = Math.max(0, Math.ceil(state.resetMs / 1000));
  if (mode === 'draft' || mode === 'both') {
    out.push(['ratelimit-policy', `${name};q=${limit.requestsPerUnit};w=${limit.windowSeconds}`]);
    out.push(['ratelimit', `${name};r=${state.remaining};t=${resetS}`]);
  }
  if (mode === 'legacy' || mode === 'both') {
    out.push(['x-ratelimit-limit', `${limit.requestsPerUnit}, ${limit.requestsPerUnit};w=${limit.windowSeconds}`]);
    out.push(['x-ratelimit-remaining', String(state.remaining)]);
    out.push(['x-ratelimit-reset', String(resetS)]);
  }
  if (overLimit) out.push(['retry-after', String(Math.max(1, Math.ceil(state.retryAfterMs / 1000)))]);
  return out;
}
