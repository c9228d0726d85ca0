// The token server: one short-lived internal JWT per identity and audience, cached and refreshed
// before expiry. It goes to the upstream only, never back to the client (V-274679).
import { createHash, randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { TokenConfig } from '../config/schema.js';
import type { Identity } from './identity.js';
import type { SigningKeys } from './signing-keys.js';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import type { Maybe } from '../lib/maybe.js';

interface Minted {
  readonly token: string;
  /** Epoch seconds. */
  readonly exp: number;
  readonly subject: string;
}

function cacheKey(id: Identity, audience: string): string {
  const parts = JSON.stringify([id.subject, id.issuer, id.kind, id.method, id.workload?.id ?? '', audience, id.scopes.join(' '), id.roles.join(' ')]);
  // A short key is its own cache key (no hash object per Check); a long one is hashed, so an
  // entry's size stays bounded whatever the identity carries.
  return parts.length <= 256 ? parts : createHash('sha256').update(parts).digest('base64url');
}

export interface MinterOptions {
  /** `iss` of every minted token. */
  readonly issuer: string;
  readonly lifetimeS: number;
  /** A cached token closer than this to its exp is minted anew. */
  readonly refreshBeforeS: number;
  readonly defaultAudience: string;
  /** The context_extensions key (set on Envoy's route) that names the audience. */
  readonly audienceContextKey: string;
  readonly cacheMaxEntries: number;
}

export function minterOptions(cfg: TokenConfig): MinterOptions {
  return {
    issuer: cfg.issuer,
    lifetimeS: cfg.lifetime_s,
    refreshBeforeS: cfg.refresh_before_s,
    defaultAudience: cfg.default_audience,
    audienceContextKey: cfg.audience_context_key,
    cacheMaxEntries: cfg.cache_max_entries,
  };
}

export class TokenMinter {
  private readonly cache: LRUCache<string, Minted>;

  constructor(
    private readonly opts: MinterOptions,
    private readonly keys: SigningKeys,
    private readonly now: () => number = Date.now,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    this.cache = new LRUCache({ max: opts.cacheMaxEntries });
  }

  /** The audience for a request: Envoy's context_extensions, then the route, then the default. */
  audienceFor(contextExtensions: Readonly<Record<string, string>>, routeAudience: string | undefined): string {
    return contextExtensions[this.opts.audienceContextKey] || routeAudience || this.opts.defaultAudience;
  }

  /** A cached token still fresh past the refresh margin comes back at once; a new one is signed (later). */
  tokenFor(id: Identity, audience: string): Maybe<string> {
    const nowS = Math.floor(this.now() / 1000);
    const key = cacheKey(id, audience);
    const hit = this.cache.get(key);
    const fresh = hit !== undefined && hit.exp - nowS > this.opts.refreshBeforeS;
    this.metrics.cacheLookup('minted_token', fresh);
    if (fresh) return hit.token;
    return this.mint(id, audience, key, nowS);
  }

  private async mint(id: Identity, audience: string, key: string, nowS: number): Promise<string> {
    // Never outlive the credential the identity came from.
    const exp = Math.min(nowS + this.opts.lifetimeS, id.expiresAt ?? Number.MAX_SAFE_INTEGER);
    const signer = this.keys.current(this.now());
    const claims: Record<string, unknown> = {
      sub_type: id.kind,
      auth_method: id.method,
      idp: id.issuer,
      ...(id.scopes.length > 0 ? { scope: id.scopes.join(' ') } : {}),
      ...(id.roles.length > 0 ? { roles: [...id.roles] } : {}),
      // RFC 8693 actor: the workload calling on the subject's behalf.
      ...(id.workload ? { act: { sub: id.workload.id } } : {}),
    };
    const token = await new SignJWT(claims)
      .setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setSubject(id.subject)
      .setAudience(audience)
      .setIssuedAt(nowS)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(signer.key);
    // Only cache what stays useful past the refresh margin.
    if (exp - nowS > this.opts.refreshBeforeS) this.cache.set(key, { token, exp, subject: id.subject });
    return token;
  }

  /** Drops cached tokens (all, or one subject's) after a revocation. */
  forget(subject?: string): void {
    if (subject === undefined) {
      this.cache.clear();
      return;
    }
    for (const [k, v] of this.cache.entries()) if (v.subject === subject) this.cache.delete(k);
  }
}
