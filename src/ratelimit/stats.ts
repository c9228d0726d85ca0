// envoyproxy/ratelimit's per-descriptor stats (limiter/base_limiter.go), counted in hits: every
// hit is total_hits; hits past the limit are over_limit (or shadow_mode, for a shadow-mode limit
// that would have limited); hits past the near-limit threshold (floor(limit x ratio), in
// float32 as there) and within the limit are near_limit; the others within_limit.

import type { DescriptorStats } from '../telemetry/metrics.js';

export type { DescriptorStats };

/** upstream: uint64(math.Floor(float64(float32(limit) * nearLimitRatio))) with a float32 ratio. */
export function nearLimitThreshold(limit: number, ratio: number): number {
  return Math.floor(Math.fround(Math.fround(limit) * Math.fround(ratio)));
}

/**
 * `before`: the count before this request, `hits`: its hits, `over`: whether the limit refused it
 * (before + hits > limit for a fixed window), `shadow`: a shadow-mode limit.
 */
export function descriptorStats(limit: number, before: number, hits: number, over: boolean, shadow: boolean, ratio: number): DescriptorStats {
  const after = before + hits;
  const near = nearLimitThreshold(limit, ratio);
  let overLimit = 0;
  let nearLimit = 0;
  let withinLimit = 0;
  let shadowMode = 0;
  if (over) {
    if (before >= limit) overLimit = hits;
    else {
      overLimit = Math.max(0, after - limit);
      nearLimit = Math.max(0, limit - Math.max(near, before));
    }
    if (shadow) shadowMode = before >= limit ? hits : Math.max(0, after - limit);
  } else {
    withinLimit = hits;
    if (after > near) nearLimit = before >= near ? hits : after - near;
  }
  return { totalHits: hits, overLimit, nearLimit, withinLimit, shadowMode };
}

/**
 * Bounds the stat keys that carry request values (detailed_metric, value_to_metric): the first
 * `max` distinct keys are kept, later ones are counted under the descriptor's key from the
 * configuration, which the files bound. Keys are cut to 256 characters.
 */
export class StatKeys {
  private readonly seen = new Set<string>();

  constructor(private readonly max: number) {}

  label(key: string, configKey: string): string {
    const k = key.length > 256 ? key.slice(0, 256) : key;
    if (k === configKey || this.seen.has(k)) return k;
    if (this.seen.size >= this.max) return configKey;
    this.seen.add(k);
    return k;
  }
}
