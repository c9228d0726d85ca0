import type { Limit } from '../../src/ratelimit/limits.js';

/** A limit for store tests: token bucket, 10 per window, burst 3, unless overridden. */
export function testLimit(over: Partial<Limit> = {}): Limit {
  return {
    requestsPerUnit: 10,
    windowSeconds: 10,
    reportedUnit: 'UNKNOWN',
    burst: 3,
    algorithm: 'token_bucket',
    shadow: false,
    unlimited: false,
    replaces: [],
    detailedMetric: false,
    ...over,
  };
}
