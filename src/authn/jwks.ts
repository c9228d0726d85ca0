// Where an issuer's verification keys come from: a remote JWKS, a local JWKS file, or an HMAC secret.
// Built once at startup; per request only the returned resolver runs.
import { createLocalJWKSet, createRemoteJWKSet, customFetch, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import { readReferencedFile, readReferencedJson } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { IssuerConfig } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import { privateMembers } from '../lib/jwk.js';

export type IssuerKeys = JWTVerifyGetKey | Uint8Array;

/** Key sets that never change while they are in use (a local JWKS file: a reload builds new ones). */
const staticSets = new WeakSet<JWTVerifyGetKey>();

/** Whether every key this set will ever have is the one it has now (a secret, or a local JWKS). */
export function keysAreStatic(keys: IssuerKeys): boolean {
  return keys instanceof Uint8Array || staticSets.has(keys);
}

// RFC 7518 3.2: the HMAC key must be at least as long as the hash output.
const HMAC_MIN_BYTES: Record<string, number> = { HS256: 32, HS384: 48, HS512: 64 };

export async function loadIssuerKeys(loaded: Pick<LoadedConfig, 'file' | 'dir'>, at: string, iss: IssuerConfig, metrics: MetricsSink = NO_METRICS): Promise<IssuerKeys> {
  if (iss.secret_file !== undefined) {
    const buf = await readReferencedFile(loaded, `${at}/secret_file`, iss.secret_file, { secret: true, maxBytes: 4096 });
    // A single trailing newline (from `echo` or an editor) is not part of the secret.
    const secret = buf.at(-1) === 0x0a ? buf.subarray(0, buf.length - 1) : buf;
    const need = Math.max(...iss.algorithms.map((a) => HMAC_MIN_BYTES[a] ?? 0));
    if (secret.length < need) {
      throw new ConfigError(loaded.file, [
        { keyPath: `${at}/secret_file`, problem: `secret is ${secret.length} bytes; ${iss.algorithms.join('/')} needs at least ${need}` },
      ]);
    }
    return new Uint8Array(secret);
  }
  const jwks = iss.jwks;
  if (jwks?.url !== undefined) {
    return createRemoteJWKSet(new URL(jwks.url), {
      timeoutDuration: jwks.timeout_ms,
      cooldownDuration: jwks.cooldown_ms,
      cacheMaxAge: jwks.cache_max_age_ms,
      // Counted, otherwise the plain fetch jose would use.
      [customFetch]: (url, options) =>
        fetch(url, options).then(
          (res) => {
            metrics.call('jwks', res.status === 200);
            return res;
          },
          (err: unknown) => {
            metrics.call('jwks', false);
            throw err;
          },
        ),
    });
  }
  if (jwks?.file !== undefined) {
    const keyPath = `${at}/jwks/file`;
    const set = checkPublicJwks(loaded.file, keyPath, await readReferencedJson(loaded, keyPath, jwks.file));
    const getKey = createLocalJWKSet(set);
    await importAll(getKey, set, iss.algorithms);
    staticSets.add(getKey);
    return getKey;
  }
  // The loader guarantees one of the three; reaching here is a programming error.
  throw new ConfigError(loaded.file, [{ keyPath: at, problem: 'no key source' }]);
}

/**
 * Imports every key of a local set now, for each algorithm it may verify: jose imports (and then
 * caches) a key on its first use, which made the first token of each key the slowest. A key that
 * does not import is left for the request that uses it (and fails it), as before.
 */
async function importAll(getKey: JWTVerifyGetKey, set: JSONWebKeySet, algorithms: readonly string[]): Promise<void> {
  const token = { payload: '', signature: '' };
  for (const k of set.keys) {
    for (const alg of algorithms) {
      if (k.alg !== undefined && k.alg !== alg) continue;
      try {
        await getKey({ alg, ...(k.kid !== undefined ? { kid: k.kid } : {}) }, token);
      } catch {
        // Not this key's algorithm, or several keys without a kid match: nothing to warm.
      }
    }
  }
}

function checkPublicJwks(file: string, keyPath: string, value: unknown): JSONWebKeySet {
  const fail = (problem: string): never => {
    throw new ConfigError(file, [{ keyPath, problem }]);
  };
  if (typeof value !== 'object' || value === null || !Array.isArray((value as { keys?: unknown }).keys)) {
    return fail('not a JWKS: expected {"keys": [...]}');
  }
  const keys = (value as { keys: unknown[] }).keys;
  if (keys.length === 0) fail('JWKS has no keys');
  keys.forEach((k, i) => {
    if (typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string') fail(`key ${i} has no kty`);
    const priv = privateMembers(k as object);
    if (priv.length > 0) fail(`key ${i} contains private or symmetric material (${priv.join(', ')}); publish public keys only`);
  });
  return value as JSONWebKeySet;
}
