// The token server's signing keys. Rotation with overlap: every configured key is published in
// the JWKS at once; a key signs only from its activate_at on, and the newest active key signs.
// An old key stays in the JWKS for as long as it stays in the config (keep it for at least one
// token lifetime after its successor activates - docs/operations.md has the procedure).
import { publicPart } from '../lib/jwk.js';
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { readReferencedJson } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { TokenConfig } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';

export interface SigningKey {
  readonly kid: string;
  readonly alg: 'ES256' | 'EdDSA';
  readonly key: CryptoKey;
  readonly publicJwk: JWK;
  /** Epoch ms from which this key signs. */
  readonly activeFrom: number;
}

function algOf(jwk: JWK): 'ES256' | 'EdDSA' | undefined {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256' && (jwk.alg === undefined || jwk.alg === 'ES256')) return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && (jwk.alg === undefined || jwk.alg === 'EdDSA' || jwk.alg === 'Ed25519')) return 'EdDSA';
  return undefined;
}

export class SigningKeys {
  private constructor(private readonly keys: readonly SigningKey[]) {}

  static async load(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: TokenConfig['signing_keys']): Promise<SigningKeys> {
    const keys: SigningKey[] = [];
    for (const [i, k] of cfg.entries()) {
      const at = `/token/signing_keys/${i}`;
      const fail = (keyPath: string, problem: string): never => {
        throw new ConfigError(loaded.file, [{ keyPath, problem }]);
      };
      const jwk = (await readReferencedJson(loaded, `${at}/file`, k.file, { secret: true, maxBytes: 16384 })) as JWK;
      const alg = typeof jwk === 'object' && jwk !== null ? algOf(jwk) : undefined;
      if (!alg) fail(`${at}/file`, 'must be an ES256 (EC P-256) or EdDSA (Ed25519) private JWK');
      if (typeof jwk.d !== 'string') fail(`${at}/file`, 'not a private key (no d)');
      if (typeof jwk.kid !== 'string' || jwk.kid === '') fail(`${at}/file`, 'the JWK needs a kid');
      if (keys.some((o) => o.kid === jwk.kid)) fail(`${at}/file`, `duplicate kid ${jwk.kid}`);
      const activeFrom = k.activate_at === undefined ? 0 : Date.parse(k.activate_at);
      if (Number.isNaN(activeFrom)) fail(`${at}/activate_at`, 'not an RFC 3339 time');
      let key: CryptoKey;
      try {
        key = (await importJWK({ ...jwk, alg: alg! }, alg)) as CryptoKey;
      } catch {
        return fail(`${at}/file`, 'the JWK cannot be imported');
      }
      const publicJwk: JWK = publicPart(jwk);
      keys.push({ kid: jwk.kid!, alg: alg!, key, publicJwk: { ...publicJwk, alg: alg!, use: 'sig' }, activeFrom });
    }
    if (!keys.some((k) => k.activeFrom <= Date.now())) {
      throw new ConfigError(loaded.file, [{ keyPath: '/token/signing_keys', problem: 'no key is active yet: one must have no activate_at or one in the past' }]);
    }
    return new SigningKeys(keys);
  }

  /** The key that signs at `now`: the active key with the latest activation. */
  current(now: number): SigningKey {
    let best: SigningKey | undefined;
    for (const k of this.keys) if (k.activeFrom <= now && (!best || k.activeFrom >= best.activeFrom)) best = k;
    // load() guarantees one key active at start, and activation times only pass.
    return best ?? this.keys[0]!;
  }

  /** Every configured key's public half: published before it signs, kept while configured. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}
