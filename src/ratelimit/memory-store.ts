// The embedded store: the same algorithms as the Redis script, in process, bounded by an LRU
// whose entries expire once they hold no information (bucket full / window over).
import { LRUCache } from 'lru-cache';
import { flat } from '../lib/flat-string.js';
import type { BucketRequest, BucketState, EvaluateMode, RateLimitStore, WindowCount } from './limits.js';

interface Step {
  readonly state: BucketState;
  /** New stored value and its time to live, applied when the request is admitted. */
  readonly write?: { value: number; ttlMs: number };
}

/**
 * One bucket at time `now` with stored value `stored` (token bucket: TAT in ms; fixed window:
 * count). `countRefused`: a refused fixed window still counts the hits (EvaluateMode `each`).
 */
export function step(b: BucketRequest, stored: number | undefined, now: number, countRefused = false): Step {
  const { limit, hits } = b;
  const windowMs = limit.windowSeconds * 1000;
  if (limit.requestsPerUnit === 0) {
    // Admits nothing, as in envoyproxy/ratelimit: over limit until the end of the current window
    // (a 0-hit check is within, with nothing left). Nothing is ever stored. A token bucket would
    // divide by zero here.
    const resetMs = Math.floor(now / windowMs) * windowMs + windowMs - now;
    return { state: { allowed: hits === 0, remaining: 0, resetMs, retryAfterMs: hits === 0 ? 0 : resetMs, used: 0 } };
  }
  if (limit.algorithm === 'token_bucket') {
    const interval = windowMs / limit.requestsPerUnit; // ms per token
    const tat = Math.max(stored ?? now, now);
    const used = limit.burst - Math.min(limit.burst, Math.max(0, Math.floor((now - tat) / interval + limit.burst)));
    const newTat = tat + hits * interval;
    const allowAt = newTat - limit.burst * interval;
    if (allowAt <= now) {
      return {
        state: { allowed: true, remaining: Math.floor((now - allowAt) / interval), resetMs: Math.ceil(newTat - now), retryAfterMs: 0, used },
        ...(hits > 0 ? { write: { value: newTat, ttlMs: Math.ceil(newTat - now) + 1000 } } : {}),
      };
    }
    const remaining = Math.max(0, Math.floor((now - (tat - limit.burst * interval)) / interval));
    return { state: { allowed: false, remaining, resetMs: Math.ceil(tat - now), retryAfterMs: Math.ceil(allowAt - now), used } };
  }
  const start = Math.floor(now / windowMs) * windowMs;
  const resetMs = start + windowMs - now;
  const count = stored ?? 0;
  const allowed = count + hits <= limit.requestsPerUnit;
  // countRefused: as envoyproxy/ratelimit, INCRBY whatever the answer (a refused request leaves nothing).
  const write = hits > 0 && (allowed || countRefused) ? { write: { value: count + hits, ttlMs: resetMs } } : {};
  const remaining = allowed ? limit.requestsPerUnit - count - hits : countRefused ? 0 : Math.max(0, limit.requestsPerUnit - count);
  return { state: { allowed, remaining, resetMs, retryAfterMs: allowed ? 0 : resetMs, used: count }, ...write };
}

interface FixedWindowCount {
  readonly v: number;
  readonly window: number;
}

/** A count() counter: hits so far and the end of its window (ms). */
interface WindowCounter {
  readonly n: number;
  readonly end: number;
}

export class MemoryStore implements RateLimitStore {
  readonly kind = 'memory';
  // A token bucket's value is its TAT, stored as a bare number: no wrapper object per key (the
  // table holds up to memory_max_keys of them; see the bytes-per-key figure in docs/performance.md).
  // A fixed window also needs the window it counts.
  private readonly values: LRUCache<string, number | FixedWindowCount>;
  /** count()'s counters (failed authentications): apart from the buckets, bounded the same way. */
  private readonly counters: LRUCache<string, WindowCounter>;

  constructor(
    maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {
    this.values = new LRUCache({ max: maxKeys, ttlAutopurge: false, perf: { now } });
    this.counters = new LRUCache({ max: maxKeys, ttlAutopurge: false, perf: { now } });
  }

  /** The stored value of a bucket at `now`. */
  private current(b: BucketRequest, now: number): number | undefined {
    const entry = this.values.get(b.key);
    // A fixed-window counter belongs to one window only.
    if (b.limit.algorithm === 'fixed_window') return typeof entry === 'object' && entry.window === Math.floor(now / (b.limit.windowSeconds * 1000)) ? entry.v : undefined;
    return typeof entry === 'number' ? entry : undefined;
  }

  evaluate(buckets: readonly BucketRequest[], mode: EvaluateMode = 'all'): Promise<BucketState[]> {
    const now = this.now();
    const each = mode === 'each';
    // A key named twice in one request (a descriptor sent twice) is spent twice, as by the Redis
    // script: each bucket sees what the ones before it would take.
    const pending = new Map<string, number>();
    const steps = buckets.map((b) => {
      const s = step(b, pending.has(b.key) ? pending.get(b.key) : this.current(b, now), now, each);
      if (s.write) pending.set(b.key, s.write.value);
      return s;
    });
    const admitted = each || steps.every((s, i) => s.state.allowed || buckets[i]!.limit.shadow);
    if (admitted) {
      steps.forEach((s, i) => {
        const b = buckets[i]!;
        if (s.write) {
          const value = b.limit.algorithm === 'fixed_window' ? { v: s.write.value, window: Math.floor(now / (b.limit.windowSeconds * 1000)) } : s.write.value;
          // The key stays in the table: in one piece (the limiter built it by concatenation).
          this.values.set(flat(b.key), value, { ttl: s.write.ttlMs });
        }
      });
    }
    return Promise.resolve(steps.map((s) => s.state));
  }

  count(key: string, windowS: number): Promise<WindowCount> {
    // The window starts with the first hit; the entry's time to live only bounds the table.
    const now = this.now();
    const prev = this.counters.get(key);
    const current = prev && prev.end > now ? prev : undefined;
    const next: WindowCounter = current ? { n: current.n + 1, end: current.end } : { n: 1, end: now + windowS * 1000 };
    this.counters.set(flat(key), next, { ttl: next.end - now });
    return Promise.resolve({ count: next.n, resetMs: next.end - now });
  }

  close(): Promise<void> {
    this.values.clear();
    this.counters.clear();
    return Promise.resolve();
  }
}
