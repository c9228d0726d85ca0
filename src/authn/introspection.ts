// OAuth 2.0 Token Introspection (RFC 7662) for opaque bearer tokens. We authenticate to the
// endpoint (HTTP Basic), and check active/exp/iss/aud ourselves. Active results are cached by a
// hash of the token, never beyond its exp; endpoint errors and timeouts fail closed.
import { LRUCache } from 'lru-cache';
import { readReferencedFile } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { IntrospectionConfig } from '../config/schema.js';
import { AuthnError, UnavailableError } from '../lib/errors.js';
import { tokenHash } from '../lib/hash.js';
import { claimList, type SubjectCredential } from './authenticator.js';
import { childSpan } from '../telemetry/tracing.js';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';

const MAX_RESPONSE_BYTES = 64 * 1024;


interface IntrospectionResponse {
  active?: unknown;
  exp?: unknown;
  iss?: unknown;
  aud?: unknown;
  sub?: unknown;
  jti?: unknown;
  client_id?: unknown;
  [claim: string]: unknown;
}

export interface IntrospectorOptions {
  readonly url: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly timeoutMs: number;
  /** When set, the response's iss must equal it; it is also the identity's issuer. */
  readonly issuer?: string;
  /** When set, the response's aud must contain one. */
  readonly audiences?: readonly string[];
  /** 0: no cache. */
  readonly cacheTtlS: number;
  readonly cacheMaxEntries: number;
  /** Response members holding the scopes and the roles. */
  readonly claims: { readonly scopes: string; readonly roles: string };
}

/** The options from the config section, with the client secret read from its file. */
export async function introspectorOptions(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: IntrospectionConfig): Promise<IntrospectorOptions> {
  const secret = await readReferencedFile(loaded, '/authentication/introspection/client_secret_file', cfg.client_secret_file, {
    secret: true,
    maxBytes: 4096,
  });
  return {
    url: cfg.url,
    clientId: cfg.client_id,
    clientSecret: secret.toString('utf8').replace(/\r?\n$/, ''),
    timeoutMs: cfg.timeout_ms,
    ...(cfg.issuer !== undefined ? { issuer: cfg.issuer } : {}),
    ...(cfg.audiences !== undefined ? { audiences: cfg.audiences } : {}),
    cacheTtlS: cfg.cache_ttl_s,
    cacheMaxEntries: cfg.cache_max_entries,
    claims: { scopes: cfg.claims.scopes, roles: cfg.claims.roles },
  };
}

export class Introspector {
  private readonly cache: LRUCache<string, SubjectCredential> | undefined;
  private readonly authorization: string;
  private readonly audiences: ReadonlySet<string> | undefined;

  constructor(
    private readonly opts: IntrospectorOptions,
    private readonly now: () => number = Date.now,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    // RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding.
    const basic = `${encodeURIComponent(opts.clientId)}:${encodeURIComponent(opts.clientSecret)}`;
    this.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
    this.audiences = opts.audiences ? new Set(opts.audiences) : undefined;
    this.cache = opts.cacheTtlS > 0 ? new LRUCache({ max: opts.cacheMaxEntries, ttlAutopurge: false }) : undefined;
  }

  /** Drops every cached result (e.g. on revocation). */
  clear(): void {
    this.cache?.clear();
  }

  async verify(token: string): Promise<SubjectCredential> {
    const key = tokenHash(token);
    const cached = this.cache?.get(key);
    const hit = cached !== undefined && cached.expiresAt * 1000 > this.now();
    if (this.cache) this.metrics.cacheLookup('introspection', hit);
    if (hit) return cached;

    const body = await childSpan('introspection', {}, () => this.call(token), this.metrics).then(
      (b) => {
        this.metrics.call('introspection', true);
        return b;
      },
      (err: unknown) => {
        this.metrics.call('introspection', false);
        throw err;
      },
    );
    const cred = this.check(body);
    if (this.cache) {
      const ttlMs = Math.min(this.opts.cacheTtlS * 1000, cred.expiresAt * 1000 - this.now());
      if (ttlMs > 0) this.cache.set(key, cred, { ttl: ttlMs });
    }
    return cred;
  }

  private async call(token: string): Promise<IntrospectionResponse> {
    let res: Response;
    try {
      res = await fetch(this.opts.url, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw new UnavailableError('introspection_unavailable', `introspection call failed: ${err instanceof Error ? err.name : 'error'}`, { cause: err });
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new UnavailableError('introspection_unavailable', `introspection endpoint answered ${res.status}`);
    }
    const text = await res.text();
    if (text.length > MAX_RESPONSE_BYTES) throw new UnavailableError('introspection_unavailable', 'introspection response too large');
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      return parsed as IntrospectionResponse;
    } catch {
      throw new UnavailableError('introspection_unavailable', 'introspection response is not a JSON object');
    }
  }

  private check(r: IntrospectionResponse): SubjectCredential {
    if (r.active !== true) throw new AuthnError('token_inactive', 'introspection: active is not true');
    if (typeof r.exp !== 'number') throw new AuthnError('claim_invalid', 'introspection: exp missing');
    if (r.exp * 1000 <= this.now()) throw new AuthnError('token_expired', 'introspection: token expired');
    if (this.opts.issuer !== undefined && r.iss !== this.opts.issuer) throw new AuthnError('claim_invalid', 'introspection: iss mismatch');
    if (this.audiences) {
      const aud = claimList(r.aud);
      if (!aud.some((a) => this.audiences!.has(a))) throw new AuthnError('claim_invalid', 'introspection: aud mismatch');
    }
    const subject = typeof r.sub === 'string' && r.sub !== '' ? r.sub : typeof r.client_id === 'string' ? r.client_id : undefined;
    if (subject === undefined) throw new AuthnError('claim_invalid', 'introspection: neither sub nor client_id');
    const issuer = this.opts.issuer ?? (typeof r.iss === 'string' ? r.iss : this.opts.url);
    return {
      kind: 'subject',
      method: 'introspection',
      subject,
      issuer,
      expiresAt: r.exp,
      ...(typeof r.jti === 'string' ? { jti: r.jti } : {}),
      scopes: claimList(r[this.opts.claims.scopes]),
      roles: claimList(r[this.opts.claims.roles]),
      claims: r,
    };
  }
}
