// Credential-stuffing protection (REC-API-11-1), the pipeline's first stage after the deny list.
// Failed authentications are counted per source address (an IPv6 one by its /64) and per (source
// address, claimed identity) - the unverified JWT `sub` or the API key id. Never per claimed
// identity alone: an attacker can only throttle the addresses they send from, never lock a victim
// out from elsewhere.
// Past a threshold the request is refused with 429 before any (expensive) verification.
//
// Only failures touch the store; a counter found at its threshold is remembered locally until its
// window ends, so successful traffic costs no store round trip. A store that fails is not a count:
// the guard then fails open for blocking (the credential is still verified as always), counts the
// error in a metric and logs once per outage.
import { errorMessage } from '../lib/errors.js';
import { isIPv6 } from 'node:net';
import { decodeJwt } from 'jose';
import { LRUCache } from 'lru-cache';
import { parseApiKey } from '../authn/apikey-format.js';
import type { Config } from '../config/schema.js';
import type { RequestView } from '../envoy/request.js';
import { tokenHash } from '../lib/hash.js';
import type { RateLimitStore } from '../ratelimit/limits.js';
import type { Logger } from '../telemetry/logger.js';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';

export interface FailureGuardOptions {
  /** Failures allowed per (source address, claimed identity) in a window. */
  readonly maxFailures: number;
  /** Failures allowed per source address in a window, whatever identities they claim. */
  readonly maxFailuresPerAddress: number;
  readonly windowSeconds: number;
  readonly bearerHeader: string;
  readonly apiKey?: { readonly header: string; readonly prefix: string };
}

/** The guard's options from the config; undefined when it is off (max_failures: 0). */
export function failureGuardOptions(a: Config['authentication']): FailureGuardOptions | undefined {
  const bf = a.brute_force;
  if (bf.max_failures === 0) return undefined;
  return {
    maxFailures: bf.max_failures,
    maxFailuresPerAddress: bf.max_failures_per_address,
    windowSeconds: bf.window_s,
    bearerHeader: a.header.toLowerCase(),
    ...(a.api_keys ? { apiKey: { header: a.api_keys.header.toLowerCase(), prefix: a.api_keys.prefix } } : {}),
  };
}

/** Claims are read only from tokens below this size (a JWT is far smaller; the verifier has its own cap). */
const MAX_CLAIMED_TOKEN = 16384;
/** Blocked counters remembered locally (each for the rest of its window). */
const MAX_BLOCKED = 100000;

/**
 * The unit failures are counted in: an IPv4 address, or the /64 of an IPv6 one - a single host
 * usually holds a whole /64 and could otherwise take a fresh address for every attempt.
 */
export function countedAddress(address: string): string {
  const ip = address.split('%')[0]!; // a zone id names an interface, not a host
  if (!isIPv6(ip)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const [head, tail] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  // An embedded IPv4 address at the end takes the place of two groups.
  const width = (groups: string[]): number => groups.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - width(left) - width(right)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

interface Counter {
  readonly key: string;
  readonly threshold: number;
}

export class FailureGuard {
  private readonly blockedKeys = new LRUCache<string, true>({ max: MAX_BLOCKED });
  private storeFailing = false;

  constructor(
    private readonly store: Pick<RateLimitStore, 'count'>,
    private readonly opts: FailureGuardOptions,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {}

  get retryAfterSeconds(): number {
    return this.opts.windowSeconds;
  }

  /** The identity the request claims, unverified: only ever paired with the source address. */
  private claimed(req: RequestView): string[] {
    const out: string[] = [];
    const bearer = req.headers.get(this.opts.bearerHeader);
    if (bearer !== undefined && bearer.length < MAX_CLAIMED_TOKEN) {
      try {
        const sub = decodeJwt(bearer.replace(/^\S+\s+/, '')).sub;
        // Hashed: keys stay short and hold nothing a client wrote.
        if (typeof sub === 'string') out.push(`s:${tokenHash(sub)}`);
      } catch {
        // not a JWT: the address still counts
      }
    }
    const k = this.opts.apiKey;
    const key = k ? req.headers.get(k.header) : undefined;
    const id = k && key !== undefined ? parseApiKey(key.trim(), k.prefix)?.id : undefined;
    if (id !== undefined) out.push(`k:${tokenHash(id)}`);
    return out;
  }

  private counters(req: RequestView): Counter[] {
    // Without a source address nothing is counted: a count per claimed identity alone would let
    // anyone lock its owner out.
    const address = req.source.address;
    if (!address) return [];
    const a = encodeURIComponent(countedAddress(address));
    return [
      { key: `bf:a:${a}`, threshold: this.opts.maxFailuresPerAddress },
      ...this.claimed(req).map((id) => ({ key: `bf:ai:${a}:${id}`, threshold: this.opts.maxFailures })),
    ];
  }

  /** True when a counter of this request has reached its threshold. */
  blocked(req: RequestView): boolean {
    // Nothing blocked (the normal state): no token decoding on the hot path.
    if (this.blockedKeys.size === 0) return false;
    return this.counters(req).some((c) => this.blockedKeys.has(c.key));
  }

  /** Counts one failure on every counter of this request; a counter at its threshold blocks its key. Never rejects. */
  async record(req: RequestView): Promise<void> {
    const counters = this.counters(req);
    if (counters.length === 0) return;
    // One call per counter: one already at its threshold must not stop the others from counting.
    const results = await Promise.allSettled(counters.map((c) => this.store.count(c.key, this.opts.windowSeconds)));
    let error: unknown;
    results.forEach((r, i) => {
      if (r.status === 'rejected') {
        error ??= r.reason;
        return;
      }
      // Blocks come only from real counts.
      if (r.value.count >= counters[i]!.threshold) this.blockedKeys.set(counters[i]!.key, true, { ttl: Math.max(1000, r.value.resetMs) });
    });
    if (error !== undefined) this.storeFailed(error);
    else this.storeAnswered();
  }

  private storeFailed(err: unknown): void {
    this.metrics.guardStoreError();
    if (this.storeFailing) return;
    this.storeFailing = true;
    this.log.warn(
      { event: 'failure_guard_store_failed', err: errorMessage(err) },
      'failed authentications cannot be counted: no address is blocked until the store answers',
    );
  }

  private storeAnswered(): void {
    if (!this.storeFailing) return;
    this.storeFailing = false;
    this.log.info({ event: 'failure_guard_store_recovered' }, 'failed authentications are counted again');
  }
}
