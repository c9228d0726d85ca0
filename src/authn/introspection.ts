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
import { recordCacheLookup, recordCall } from '../telemetry/metrics.js';

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

export class Introspector {
  private readonly cache: LRUCache<string, SubjectCredential> | undefined;
  private readonly authorization: string;
  private readonly audiences: ReadonlySet<string> | undefined;

  private constructor(
    private readonly cfg: IntrospectionConfig,
    clientSecret: string,
    private readonly now: () => number,
  ) {
    // RFC 6749 2.3.1: client id and secret are form-urlencoded before Basic encoding.
    const basic = `${encodeURIComponent(cfg.client_id)}:${encodeURIComponent(clientSecret)}`;
    this.authorization = `Basic ${Buffer.from(basic).toString('base64')}`;
    this.audiences = cfg.audiences ? new Set(cfg.audiences) : undefined;
    this.cache = cfg.cache_ttl_s > 0 ? new LRUCache({ max: cfg.cache_max_entries, ttlAutopurge: false }) : undefined;
  }

  static async create(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: IntrospectionConfig, now = (): number => Date.now()): Promise<Introspector> {
    const secret = await readReferencedFile(loaded, '/authentication/introspection/client_secret_file', cfg.client_secret_file, {
      secret: true,
      maxBytes: 4096,
    });
    return new Introspector(cfg, secret.toString('utf8').replace(/\r?\n$/, ''), now);
  }

  /** Drops every cached result (e.g. on revocation). */
  clear(): void {
    this.cache?.clear();
  }

  async verify(token: string): Promise<SubjectCredential> {
    const key = tokenHash(token);
    const cached = this.cache?.get(key);
    const hit = cached !== undefined && cached.expiresAt * 1000 > this.now();
    if (this.cache) recordCacheLookup('introspection', hit);
    if (hit) return cached;

    const body = await childSpan('introspection', {}, () => this.call(token)).then(
      (b) => {
        recordCall('introspection', true);
        return b;
      },
      (err: unknown) => {
        recordCall('introspection', false);
        throw err;
      },
    );
    const cred = this.check(body);
    if (this.cache) {
      const ttlMs = Math.min(this.cfg.cache_ttl_s * 1000, cred.expiresAt * 1000 - this.now());
      if (ttlMs > 0) this.cache.set(key, cred, { ttl: ttlMs });
    }
    return cred;
  }

  private async call(token: string): Promise<IntrospectionResponse> {
    let res: Response;
    try {
      res = await fetch(this.cfg.url, {
        method: 'POST',
        headers: {
          authorization: this.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.cfg.timeout_ms),
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
    if (this.cfg.issuer !== undefined && r.iss !== this.cfg.issuer) throw new AuthnError('claim_invalid', 'introspection: iss mismatch');
    if (this.audiences) {
      const aud = claimList(r.aud);
      if (!aud.some((a) => this.audiences!.has(a))) throw new AuthnError('claim_invalid', 'introspection: aud mismatch');
    }
    const subject = typeof r.sub === 'string' && r.sub !== '' ? r.sub : typeof r.client_id === 'string' ? r.client_id : undefined;
    if (subject === undefined) throw new AuthnError('claim_invalid', 'introspection: neither sub nor client_id');
    const issuer = this.cfg.issuer ?? (typeof r.iss === 'string' ? r.iss : this.cfg.url);
    return {
      kind: 'subject',
      method: 'introspection',
      subject,
      issuer,
      expiresAt: r.exp,
      ...(typeof r.jti === 'string' ? { jti: r.jti } : {}),
      scopes: claimList(r[this.cfg.claims.scopes]),
      roles: claimList(r[this.cfg.claims.roles]),
      claims: r,
    };
  }
}
