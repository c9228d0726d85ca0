// Builds every configured authenticator once, and each route's ordered list from them.
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import type { Redis } from 'ioredis';
import { readReferencedFile } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import { ConfigError } from '../lib/errors.js';
import { ApiKeyAuthenticator } from './apikey.js';
import { parseApiKey } from './apikey-format.js';
import { FileApiKeyStore, RedisApiKeyStore, type ApiKeyStore } from './apikey-store.js';
import type { AuthMethod, Authenticator } from './authenticator.js';
import { BearerAuthenticator } from './bearer.js';
import { Introspector, introspectorOptions } from './introspection.js';
import { JwtVerifier, type SignatureThread } from './jwt.js';
import { MtlsAuthenticator, XFCC_HEADER } from './mtls.js';

/** What the registry needs of a route: its name and the methods it accepts (absent: the defaults). */
export interface RouteMethods {
  readonly name: string;
  readonly methods?: readonly AuthMethod[] | undefined;
}

export interface Authenticators {
  readonly forRoute: (route: RouteMethods) => readonly Authenticator[];
  /** Every header that can carry a caller credential (removed upstream unless forward_credential). */
  readonly credentialHeaders: readonly string[];
  /** Headers a client must not be able to set for the upstream: always removed. */
  readonly untrustedHeaders: readonly string[];
  /** Recognizes an API key by its value (shape and checksum), wherever it appears. */
  readonly isCredential?: (value: string) => boolean;
  readonly introspector?: Introspector;
  readonly jwtIssuers: number;
  /** Where JWT signatures are checked (logged at start). */
  readonly jwtSignatures: SignatureThread;
}

export async function buildAuthenticators(
  loaded: LoadedConfig,
  routes: readonly RouteMethods[],
  redis?: Redis,
  metrics: MetricsSink = NO_METRICS,
  signatures: SignatureThread = 'thread_pool',
): Promise<Authenticators> {
  const cfg = loaded.config;
  const a = cfg.authentication;
  const jwt = a.jwt.issuers.length > 0 ? await JwtVerifier.create(loaded, a.jwt.issuers, { cacheMaxEntries: a.jwt.cache_max_entries, metrics, signatures }) : undefined;
  const introspector = a.introspection ? new Introspector(await introspectorOptions(loaded, a.introspection), Date.now, metrics) : undefined;
  const bearerSource = { header: a.header.toLowerCase(), scheme: a.scheme, maxTokenBytes: a.max_token_bytes };

  let apiKeys: ApiKeyAuthenticator | undefined;
  if (a.api_keys) {
    const k = a.api_keys;
    const stores: ApiKeyStore[] = [];
    if (k.file !== undefined) stores.push(await FileApiKeyStore.load(loaded, k.file));
    if (k.redis) {
      if (!redis) throw new ConfigError(loaded.file, [{ keyPath: '/authentication/api_keys/redis', problem: 'needs the redis section' }]);
      stores.push(new RedisApiKeyStore(redis, `${cfg.redis!.key_prefix}apikeys`));
    }
    if (stores.length === 0) throw new ConfigError(loaded.file, [{ keyPath: '/authentication/api_keys', problem: 'set file and/or redis: true' }]);
    const hmacSecret =
      k.hmac_secret_file === undefined
        ? undefined
        : new Uint8Array(await readReferencedFile(loaded, '/authentication/api_keys/hmac_secret_file', k.hmac_secret_file, { secret: true, maxBytes: 4096 }));
    apiKeys = new ApiKeyAuthenticator({ header: k.header.toLowerCase(), prefix: k.prefix, ...(hmacSecret ? { hmacSecret } : {}) }, stores);
  }
  const mtls = a.mtls ? new MtlsAuthenticator(a.mtls) : undefined;

  const available: Record<AuthMethod, boolean> = { jwt: !!jwt, introspection: !!introspector, api_key: !!apiKeys, mtls: !!mtls };
  routes.forEach((r, i) => {
    for (const m of r.methods ?? []) {
      if (!available[m]) throw new ConfigError(loaded.file, [{ keyPath: `/routes/${i}/methods`, problem: `method ${m} is not configured under authentication` }]);
    }
  });

  const bearers = new Map<string, BearerAuthenticator>();
  const compile = (methods: readonly AuthMethod[]): Authenticator[] => {
    const out: Authenticator[] = [];
    const wanted = methods.filter((m) => available[m]);
    for (const m of wanted) {
      if (m === 'jwt' || m === 'introspection') {
        // JWT and introspection share the bearer header: one authenticator serves both.
        const withJwt = wanted.includes('jwt');
        const withIntro = wanted.includes('introspection');
        const key = `${withJwt}:${withIntro}`;
        let b = bearers.get(key);
        if (!b) {
          b = new BearerAuthenticator(bearerSource, withJwt ? jwt : undefined, withIntro ? introspector : undefined);
          bearers.set(key, b);
        }
        if (!out.includes(b)) out.push(b);
      } else if (m === 'api_key' && apiKeys) out.push(apiKeys);
      else if (m === 'mtls' && mtls) out.push(mtls);
    }
    return out;
  };
  const defaults = compile(a.methods);
  const perRoute = new Map(routes.filter((r) => r.methods).map((r) => [r.name, compile(r.methods!)]));

  const credentialHeaders = [bearerSource.header, ...(a.api_keys ? [a.api_keys.header.toLowerCase()] : [])];
  return {
    forRoute: (route) => perRoute.get(route.name) ?? defaults,
    credentialHeaders,
    // A client-sent x-forwarded-client-cert is ignored and stripped unless a trusted hop sets it.
    untrustedHeaders: a.mtls?.trust_xfcc ? [] : [XFCC_HEADER],
    ...(a.api_keys ? { isCredential: (v: string) => parseApiKey(v, a.api_keys!.prefix) !== undefined } : {}),
    ...(introspector ? { introspector } : {}),
    jwtIssuers: a.jwt.issuers.length,
    jwtSignatures: signatures,
  };
}
