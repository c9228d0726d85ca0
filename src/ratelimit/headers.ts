// Rate-limit response headers for the most restrictive limit: the IETF draft form
// (RateLimit-Policy / RateLimit) and, by config, the older X-RateLimit-* form; Retry-After on 429.
import type { BucketState, Limit } from './limits.js';

export type HeaderMode = 'draft' | 'legacy' | 'both' | 'none';

/** A limit's quoted name and its RateLimit-Policy value: the same on every call, made once per limit (dropped with it). */
const policies = new WeakMap<Limit, readonly [name: string, policy: string]>();
function policyOf(limit: Limit): readonly [string, string] {
  let p = policies.get(limit);
  if (p === undefined) {
    const name = JSON.stringify(limit.name ?? 'default');
    p = [name, `${name};q=${limit.requestsPerUnit};w=${limit.windowSeconds}`];
    policies.set(limit, p);
  }
  return p;
}

export function rateLimitHeaders(mode: HeaderMode, limit: Limit, state: BucketState, overLimit: boolean): [string, string][] {
  const out: [string, string][] = [];
  const resetS = Math.max(0, Math.ceil(state.resetMs / 1000));
  if (mode === 'draft' || mode === 'both') {
    const [name, policy] = policyOf(limit);
    out.push(['ratelimit-policy', policy]);
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
