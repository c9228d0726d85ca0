// The token server's signing keys. Rotation with overlap: every configured key is published in
// the JWKS at once; a key signs only from its activate_at on, and the newest active key signs.
// An old key stays in the JWKS for as long as it stays in the config (keep it for at least one
// token lifetime after its successor activates - docs/operations.md has the procedure).
// Rotation is visible: the keys and their activation times are logged at load, a key taking over
// (activate_at passing, or a reload) is logged with the one it retires, and a reload names the
// keys it adds to and removes from the JWKS (keyChanges).
import { publicPart } from '../lib/jwk.js';
import { importJWK, type CryptoKey, type JWK } from 'jose';
import { readReferencedJson } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import type { TokenConfig } from '../config/schema.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';

/** setTimeout's longest delay (about 24.8 days): a later activation is waited for in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the log says about one key. */
export interface KeySummary {
  readonly kid: string;
  readonly alg: string;
  /** RFC 3339, or null: active from the start. */
  readonly activate_at: string | null;
  /** signing: signs now. published: in the JWKS, superseded by a newer key. pending: published, signs from activate_at. */
  readonly state: 'signing' | 'published' | 'pending';
}

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

  /** Each key, its activation time and whether it signs now, is superseded or pending. */
  summary(now: number): KeySummary[] {
    const signing = this.current(now).kid;
    return this.keys.map((k) => ({
      kid: k.kid,
      alg: k.alg,
      activate_at: k.activeFrom === 0 ? null : new Date(k.activeFrom).toISOString(),
      state: k.kid === signing ? 'signing' : k.activeFrom > now ? 'pending' : 'published',
    }));
  }

  /**
   * Logs each activation when its time comes: `signing_key_activated` (and `signing_key_retired`
   * for the key it supersedes, which stays published). Returns the function that stops the timer.
   */
  logActivations(log: Logger, now: () => number = Date.now): () => void {
    let timer: NodeJS.Timeout | undefined;
    let signing = this.current(now()).kid;
    const arm = (): void => {
      const t = now();
      const next = Math.min(...this.keys.map((k) => k.activeFrom).filter((a) => a > t));
      if (!Number.isFinite(next)) return;
      timer = setTimeout(() => {
        const kid = this.current(now()).kid;
        if (kid !== signing) {
          logTakeover(log, this.keys.find((k) => k.kid === kid)!, signing, 'activate_at');
          signing = kid;
        }
        arm();
      }, Math.min(MAX_TIMER_MS, next - t + 1));
      timer.unref();
    };
    arm();
    return () => clearTimeout(timer);
  }

  /** Every configured key's public half: published before it signs, kept while configured. */
  jwks(): { keys: JWK[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}

function logTakeover(log: Logger, key: SigningKey, previous: string | undefined, cause: 'activate_at' | 'reload'): void {
  log.info(
    { event: 'signing_key_activated', kid: key.kid, activate_at: key.activeFrom === 0 ? null : new Date(key.activeFrom).toISOString(), previous_kid: previous ?? null, cause },
    'token signing key activated',
  );
  if (previous !== undefined) log.info({ event: 'signing_key_retired', kid: previous, successor_kid: key.kid, cause }, 'token signing key retired from signing');
}

/**
 * Logs what a reload changed in the keys: `signing_key_added` (published now; with its activation
 * time), `signing_key_removed` (no longer published: tokens it signed stop verifying), and a
 * change of the signing key.
 */
export function logKeyChanges(log: Logger, prev: SigningKeys | undefined, next: SigningKeys | undefined, now: number): void {
  const before = new Map((prev?.summary(now) ?? []).map((k) => [k.kid, k]));
  const after = new Map((next?.summary(now) ?? []).map((k) => [k.kid, k]));
  for (const k of after.values()) {
    if (!before.has(k.kid)) log.info({ event: 'signing_key_added', kid: k.kid, alg: k.alg, activate_at: k.activate_at, state: k.state }, 'token signing key published');
  }
  for (const k of before.values()) {
    if (!after.has(k.kid)) log.warn({ event: 'signing_key_removed', kid: k.kid }, 'token signing key removed from the JWKS; tokens it signed no longer verify');
  }
  const was = prev?.current(now).kid;
  const is = next?.current(now);
  if (is && is.kid !== was) logTakeover(log, is, was, 'reload');
}
