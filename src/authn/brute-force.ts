// Credential-stuffing protection (REC-API-11-1): failed authentications are counted per source
// address and per claimed identity (the unverified JWT `sub` or the API key id) in the
// rate-limit store; past the threshold the request is refused with 429 before any (expensive)
// verification. Only failures touch the store: a key found over the threshold is remembered
// locally until its window ends, so successful traffic costs no store round trip.
import { decodeJwt } from 'jose';
import { LRUCache } from 'lru-cache';
import type { RequestView } from '../envoy/request.js';
import type { Limit, RateLimitStore } from '../ratelimit/limits.js';
import { parseApiKey } from './apikey-format.js';

export interface FailureGuardOptions {
  readonly maxFailures: number;
  readonly windowSeconds: number;
  readonly bearerHeader: string;
  readonly apiKey?: { readonly header: string; readonly prefix: string };
}

export class FailureGuard {
  private readonly limit: Limit;
  private readonly blockedKeys = new LRUCache<string, true>({ max: 100000 });

  constructor(
    private readonly store: RateLimitStore,
    private readonly opts: FailureGuardOptions,
  ) {
    this.limit = {
      name: 'auth_failures',
      requestsPerUnit: opts.maxFailures,
      windowSeconds: opts.windowSeconds,
      reportedUnit: 'UNKNOWN',
      burst: opts.maxFailures,
      algorithm: 'fixed_window',
      shadow: false,
      unlimited: false,
      replaces: [],
      detailedMetric: false,
    };
  }

  get retryAfterSeconds(): number {
    return this.opts.windowSeconds;
  }

  private keys(req: RequestView): string[] {
    const keys: string[] = [];
    if (req.source.address) keys.push(`bf:ip:${encodeURIComponent(req.source.address)}`);
    const bearer = req.headers.get(this.opts.bearerHeader);
    if (bearer !== undefined && bearer.length < 16384) {
      try {
        const sub = decodeJwt(bearer.replace(/^\S+\s+/, '')).sub;
        if (typeof sub === 'string') keys.push(`bf:sub:${encodeURIComponent(sub)}`);
      } catch {
        // not a JWT: the address still counts
      }
    }
    const k = this.opts.apiKey;
    const key = k ? req.headers.get(k.header) : undefined;
    const id = k && key !== undefined ? parseApiKey(key.trim(), k.prefix)?.id : undefined;
    if (id !== undefined) keys.push(`bf:key:${id}`);
    return keys;
  }

  /** True when any counter of this request has reached the threshold. */
  blocked(req: RequestView): boolean {
    // Nothing blocked (the normal state): no token decoding on the hot path.
    if (this.blockedKeys.size === 0) return false;
    return this.keys(req).some((k) => this.blockedKeys.has(k));
  }

  /** Counts one failure on every counter of this request; a counter at the threshold blocks its key. */
  async record(req: RequestView): Promise<void> {
    // One call per key: a counter already at its limit must not stop the others from counting.
    await Promise.all(
      this.keys(req).map(async (key) => {
        const [state] = await this.store.evaluate([{ key, limit: this.limit, hits: 1 }]);
        if (state && (!state.allowed || state.remaining <= 0)) this.blockedKeys.set(key, true, { ttl: Math.max(1000, state.resetMs) });
      }),
    );
  }
}
