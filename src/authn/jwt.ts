// JWT bearer verification with jose. The token's `iss` (read unverified) only selects the issuer;
// the signature and every claim are then checked with that issuer's keys and options pinned (the
// signature on the event loop where the process has one CPU: jws-event-loop.ts).
// Verified tokens are cached by a hash of the token, never beyond exp (or the maximum token
// age), at most a minute, and only while their signing key is still published; revocation is
// checked by the pipeline on every request, cached or not.
import { LRUCache } from 'lru-cache';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTHeaderParameters,
  type JWTVerifyOptions,
  type JWTVerifyResult,
} from 'jose';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import { tokenHash } from '../lib/hash.js';
import { isPromise, rejected, type Maybe } from '../lib/maybe.js';
import type { LoadedConfig } from '../config/loader.js';
import type { IssuerConfig } from '../config/schema.js';
import { AuthnError, UnavailableError, type AuthnErrorCode, errorMessage } from '../lib/errors.js';
import { claimList, type SubjectCredential } from './authenticator.js';
import { keysAreStatic, loadIssuerKeys, type IssuerKeys } from './jwks.js';
import { COMPACT_JWS, verifyOnEventLoop } from './jws-event-loop.js';
import { childSpan } from '../telemetry/tracing.js';

interface TrustedIssuer {
  readonly algorithms: ReadonlySet<string>;
  readonly claims: IssuerConfig['claims'];
  readonly maxTokenAgeS?: number;
  /** jwtVerify with this issuer's keys and options bound; `header` is the token's, decoded. */
  readonly verify: (token: string, header: JWTHeaderParameters) => Promise<JWTVerifyResult>;
  /** Whether the key that verified a cached token is still published (synchronous where keys cannot change). */
  readonly keyPublished: (header: JWTHeaderParameters) => boolean | Promise<boolean>;
}

interface CachedToken {
  readonly cred: SubjectCredential;
  readonly header: JWTHeaderParameters;
  readonly issuer: TrustedIssuer;
}

const CACHE_MAX_TTL_MS = 60_000;

function keyCheck(keys: IssuerKeys): TrustedIssuer['keyPublished'] {
  // A secret or a local JWKS cannot drop a key while in use: no lookup (and no promises) per cache hit.
  if (keys instanceof Uint8Array || keysAreStatic(keys)) return () => true;
  return (header) =>
    Promise.resolve()
      .then(() => keys(header, { payload: '', signature: '' }))
      .then(
      () => true,
      (err: unknown) => {
        if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return false;
        throw translateJoseError(err);
      },
    );
}

function bindVerify(keys: IssuerKeys, options: JWTVerifyOptions, signatures: SignatureThread): TrustedIssuer['verify'] {
  // Separate branches because jwtVerify's overloads take either a key or a key resolver, not a union.
  if (keys instanceof Uint8Array) return (t) => jwtVerify(t, keys, options);
  return signatures === 'event_loop' ? (t, h) => verifyOnEventLoop(t, h, keys, options) : (t) => jwtVerify(t, keys, options);
}

// Header parameters that ask the verifier to fetch or trust a key chosen by the token itself.
const FORBIDDEN_HEADERS = ['jku', 'x5u', 'jwk'] as const;

/**
 * Where signatures are checked: jose's WebCrypto jobs on the libuv thread pool (beside the event
 * loop, on spare cores), or node:crypto on the event loop (less CPU per check where the process
 * has one core: jws-event-loop.ts).
 */
export type SignatureThread = 'thread_pool' | 'event_loop';

/** The cheaper place for signature checks, given the CPUs this process has to itself. */
export function signatureThread(cpusPerProcess: number): SignatureThread {
  return cpusPerProcess <= 1 ? 'event_loop' : 'thread_pool';
}

export interface JwtVerifierOptions {
  /** Bound of the verified-token cache; 0 turns it off. */
  readonly cacheMaxEntries?: number;
  /** Default thread_pool. */
  readonly signatures?: SignatureThread;
  readonly now?: () => number;
  readonly metrics?: MetricsSink;
}

export class JwtVerifier {
  private readonly cache: LRUCache<string, CachedToken> | undefined;
  private readonly now: () => number;
  private readonly metrics: MetricsSink;

  private constructor(
    private readonly issuers: ReadonlyMap<string, TrustedIssuer>,
    opts: JwtVerifierOptions,
  ) {
    const max = opts.cacheMaxEntries ?? 10000;
    this.now = opts.now ?? Date.now;
    this.metrics = opts.metrics ?? NO_METRICS;
    this.cache = max > 0 ? new LRUCache({ max, perf: { now: this.now } }) : undefined;
  }

  static async create(loaded: Pick<LoadedConfig, 'file' | 'dir'>, issuers: readonly IssuerConfig[], opts: JwtVerifierOptions = {}): Promise<JwtVerifier> {
    const map = new Map<string, TrustedIssuer>();
    for (const [i, iss] of issuers.entries()) {
      const keys = await loadIssuerKeys(loaded, `/authentication/jwt/issuers/${i}`, iss, opts.metrics);
      map.set(iss.issuer, {
        algorithms: new Set(iss.algorithms),
        claims: iss.claims,
        ...(iss.max_token_age_s !== undefined ? { maxTokenAgeS: iss.max_token_age_s } : {}),
        keyPublished: keyCheck(keys),
        verify: bindVerify(
          keys,
          {
            issuer: iss.issuer,
            audience: [...iss.audiences],
            algorithms: [...iss.algorithms],
            clockTolerance: iss.clock_tolerance_s,
            requiredClaims: ['exp', 'sub'],
            ...(iss.max_token_age_s !== undefined ? { maxTokenAge: iss.max_token_age_s } : {}),
            ...(iss.required_typ !== undefined ? { typ: iss.required_typ } : {}),
          },
          opts.signatures ?? 'thread_pool',
        ),
      });
    }
    return new JwtVerifier(map, opts);
  }

  /**
   * A cached verification of exactly this token, if it is still good: at once where the issuer's
   * keys cannot change, else once the key is confirmed still published.
   */
  private cached(key: string): Maybe<SubjectCredential | undefined> {
    const hit = this.cache?.get(key);
    if (!hit) return undefined;
    const published = hit.issuer.keyPublished(hit.header);
    if (published === true) return hit.cred;
    if (published === false) return this.forget(key);
    return published.then((still) => (still ? hit.cred : this.forget(key)));
  }

  private forget(key: string): undefined {
    this.cache?.delete(key);
    return undefined;
  }

  private remember(key: string, cred: SubjectCredential, header: JWTHeaderParameters, issuer: TrustedIssuer): void {
    if (!this.cache) return;
    const now = this.now();
    const iat = typeof cred.claims.iat === 'number' ? cred.claims.iat : undefined;
    const ageLimit = issuer.maxTokenAgeS !== undefined && iat !== undefined ? (iat + issuer.maxTokenAgeS) * 1000 - now : Infinity;
    const ttl = Math.min(cred.expiresAt * 1000 - now, ageLimit, CACHE_MAX_TTL_MS);
    if (ttl > 0) this.cache.set(key, { cred, header, issuer }, { ttl });
  }

  get issuerCount(): number {
    return this.issuers.size;
  }

  /**
   * Verifies a compact JWS JWT; the caller has already capped its size. A cached verification
   * whose key cannot have changed comes back at once; a failure is always a rejection.
   */
  verify(token: string): Maybe<SubjectCredential> {
    if (!this.cache) return this.verifyToken(token, '');
    const cacheKey = tokenHash(token);
    let hit: Maybe<SubjectCredential | undefined>;
    try {
      hit = this.cached(cacheKey);
    } catch (err) {
      return rejected(err);
    }
    if (isPromise(hit)) return hit.then((cred) => this.counted(token, cacheKey, cred));
    return this.counted(token, cacheKey, hit);
  }

  private counted(token: string, cacheKey: string, hit: SubjectCredential | undefined): Maybe<SubjectCredential> {
    this.metrics.cacheLookup('verified_token', hit !== undefined);
    return hit ?? this.verifyToken(token, cacheKey);
  }

  private async verifyToken(token: string, cacheKey: string): Promise<SubjectCredential> {
    const parts = dots(token) + 1;
    if (parts === 5) throw new AuthnError('token_not_jws', 'JWE tokens are not accepted');
    if (parts !== 3 || !COMPACT_JWS.test(token)) throw new AuthnError('credential_malformed', 'not a compact JWS');

    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverifiedIss: unknown;
    try {
      header = decodeProtectedHeader(token);
      unverifiedIss = decodeJwt(token).iss;
    } catch {
      throw new AuthnError('credential_malformed', 'token header or payload cannot be decoded');
    }
    if (typeof header.alg !== 'string' || header.alg.toLowerCase() === 'none') {
      throw new AuthnError('alg_forbidden', 'unsecured or missing alg');
    }
    for (const h of FORBIDDEN_HEADERS) {
      if (h in header) throw new AuthnError('header_forbidden', `token carries the ${h} header`);
    }
    const issuer = typeof unverifiedIss === 'string' ? this.issuers.get(unverifiedIss) : undefined;
    if (issuer === undefined) throw new AuthnError('issuer_unknown', 'iss is not a trusted issuer');
    if (!issuer.algorithms.has(header.alg)) throw new AuthnError('alg_forbidden', `alg ${header.alg} is not allowed for this issuer`);

    try {
      // The span covers a JWKS fetch when the key set has to be (re)loaded.
      const { payload } = await childSpan('jwt.verify', { 'envoy_authz.issuer': unverifiedIss as string }, () => issuer.verify(token, header as JWTHeaderParameters), this.metrics);
      const cred: SubjectCredential = {
        kind: 'subject',
        method: 'jwt',
        subject: payload.sub as string, // required by requiredClaims
        issuer: payload.iss as string, // pinned by options.issuer
        expiresAt: payload.exp as number, // required by requiredClaims
        ...(typeof payload.jti === 'string' ? { jti: payload.jti } : {}),
        scopes: claimList(payload[issuer.claims.scopes]),
        roles: claimList(payload[issuer.claims.roles]),
        claims: payload,
      };
      this.remember(cacheKey, cred, header as JWTHeaderParameters, issuer);
      return cred;
    } catch (err) {
      throw translateJoseError(err);
    }
  }
}

function claimCode(err: joseErrors.JWTClaimValidationFailed): AuthnErrorCode {
  if (err.claim === 'nbf') return 'token_not_yet_valid';
  return 'claim_invalid';
}

/** Maps jose's errors onto ours: credential problems -> AuthnError, key-fetch problems -> UnavailableError. */
export function translateJoseError(err: unknown): Error {
  if (err instanceof AuthnError || err instanceof UnavailableError) return err;
  // jose reports both a past exp and an iat older than maxTokenAge as JWTExpired.
  if (err instanceof joseErrors.JWTExpired) {
    return err.claim === 'iat' ? new AuthnError('token_too_old', 'token older than max_token_age_s') : new AuthnError('token_expired', 'token expired');
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new AuthnError(claimCode(err), `claim ${err.claim} ${err.reason}`);
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new AuthnError('alg_forbidden', 'alg not allowed');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new AuthnError('signature_invalid', 'signature invalid');
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) {
    return new AuthnError('key_not_found', 'no single issuer key matches the token header');
  }
  if (err instanceof joseErrors.JOSENotSupported) return new AuthnError('crit_unsupported', err.message);
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) {
    return new AuthnError('credential_malformed', err.message);
  }
  if (err instanceof joseErrors.JWKSTimeout) return new UnavailableError('jwks_unavailable', 'JWKS fetch timed out', { cause: err });
  // Anything else (network failure, non-200 JWKS response, invalid JWKS document) means the keys
  // are unknown right now: not the caller's fault, and not a reason to allow.
  return new UnavailableError('jwks_unavailable', `issuer keys unavailable: ${errorMessage(err)}`, {
    cause: err,
  });
}

/** The dots in a token, counted in place (split made a string per part, per Check). */
function dots(token: string): number {
  let n = 0;
  for (let i = token.indexOf('.'); i >= 0; i = token.indexOf('.', i + 1)) n++;
  return n;
}

/** Whether a bearer token is JWT-shaped (compact JWS or JWE: a base64url JSON header, then dots) rather than opaque. */
export function looksLikeJwt(token: string): boolean {
  if (!token.startsWith('eyJ')) return false;
  const n = dots(token);
  return n === 2 || n === 4;
}
