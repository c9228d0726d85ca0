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

/**
 * Waits, when the current fixed window (aligned on the Unix epoch, as the stores align them)
 * ends within `marginMs`, until the next one has begun: calls made right after share a window.
 */
export async function clearOfWindowEnd(windowSeconds: number, marginMs = 3000): Promise<void> {
  const windowMs = windowSeconds * 1000;
  const msLeft = windowMs - (Date.now() % windowMs);
  if (msLeft < marginMs) await new Promise((r) => setTimeout(r, msLeft + 50));
}
