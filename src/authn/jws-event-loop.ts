// JWT verification with the signature checked on the event loop (node:crypto), for a process
// that has one CPU to itself. jose checks signatures through WebCrypto, where each one is a libuv
// thread-pool job: beside the event loop on a machine with spare cores, but on one core the same
// arithmetic plus the job's hand-offs. Measured on one core: 60 against 30 us of CPU per RS256
// signature and 152 against 122 us per ES256 one (bench/NOTES.md, item 19).
//
// Only the common shape is checked here: RS*, PS* or ES*, a header of alg, kid and typ, an
// asymmetric key from the issuer's resolver that passes jose's own key checks. Everything else
// (HMAC, EdDSA, crit, b64, a key of another kind or size) goes to jose's jwtVerify, which then
// decides and reports exactly as it always has. The claims are validated by jose in both cases
// (UnsecuredJWT.decode runs the same claim checks as jwtVerify, after the signature as there).
// test/unit/authn/jws-event-loop.test.ts runs both on valid, mutated and hostile tokens.
import { constants, KeyObject, verify as verifySignature, type webcrypto } from 'node:crypto';
import { types } from 'node:util';
import { errors as joseErrors, jwtVerify, UnsecuredJWT, type JWTHeaderParameters, type JWTVerifyGetKey, type JWTVerifyOptions, type JWTVerifyResult } from 'jose';

interface Scheme {
  /** WebCrypto's name of the key's algorithm, as jose imports a key for this alg. */
  readonly name: 'RSASSA-PKCS1-v1_5' | 'RSA-PSS' | 'ECDSA';
  /** The key's hash (RSA keys carry one) or curve (EC keys). */
  readonly hash?: string;
  readonly namedCurve?: string;
  /** node:crypto's digest and key options for the signature. */
  readonly digest: string;
  readonly options: { readonly padding?: number; readonly saltLength?: number; readonly dsaEncoding?: 'ieee-p1363' };
}

const rsa = (bits: number): Scheme => ({ name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}`, digest: `sha${bits}`, options: {} });
// RFC 7518 3.5: the salt is as long as the hash.
const pss = (bits: number): Scheme => ({
  name: 'RSA-PSS',
  hash: `SHA-${bits}`,
  digest: `sha${bits}`,
  options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 },
});
// RFC 7518 3.4: R || S, each the curve's size (what WebCrypto takes and node calls ieee-p1363).
const ecdsa = (curve: string, bits: number): Scheme => ({ name: 'ECDSA', namedCurve: curve, digest: `sha${bits}`, options: { dsaEncoding: 'ieee-p1363' } });

const SCHEMES: ReadonlyMap<string, Scheme> = new Map([
  ['RS256', rsa(256)],
  ['RS384', rsa(384)],
  ['RS512', rsa(512)],
  ['PS256', pss(256)],
  ['PS384', pss(384)],
  ['PS512', pss(512)],
  ['ES256', ecdsa('P-256', 256)],
  ['ES384', ecdsa('P-384', 384)],
  ['ES512', ecdsa('P-521', 512)],
]);

const PLAIN_HEADER = new Set(['alg', 'kid', 'typ']);
/**
 * Compact JWS: three base64url parts, non-empty signature (an empty one is an unsecured JWT).
 * jwt.ts refuses anything else up front; checked here again because node's base64url decoder
 * skips characters outside the alphabet where jose's refuses them.
 */
export const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$/;
// jose's minimum for RS* and PS* keys.
const MIN_RSA_BITS = 2048;
// base64url of {"alg":"none"}: the header of the unsecured JWT whose claims jose validates.
const NONE_HEADER = 'eyJhbGciOiJub25lIn0';

type CryptoKey = webcrypto.CryptoKey;
/** The node:crypto key of each CryptoKey the resolvers hand out (they keep their keys; a refreshed set makes new ones). */
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

function keyObject(key: CryptoKey): KeyObject {
  let k = keyObjects.get(key);
  if (k === undefined) keyObjects.set(key, (k = KeyObject.from(key)));
  return k;
}

/** jose's checks of a resolved key for this scheme (type, algorithm, hash or curve, usage, RSA size): whether all pass. */
function keyFits(key: unknown, s: Scheme): key is CryptoKey {
  if (!types.isCryptoKey(key) || key.type !== 'public' || !key.usages.includes('verify')) return false;
  const a = key.algorithm as webcrypto.KeyAlgorithm & { hash?: { name?: string }; namedCurve?: string; modulusLength?: number };
  if (a.name !== s.name) return false;
  if (s.hash !== undefined && (a.hash?.name !== s.hash || typeof a.modulusLength !== 'number' || a.modulusLength < MIN_RSA_BITS)) return false;
  return s.namedCurve === undefined || a.namedCurve === s.namedCurve;
}

/**
 * The unsecured JWT whose claims UnsecuredJWT.decode validates as jwtVerify would: the same
 * payload, and the token's typ where the options require one (the only header member the claim
 * checks read).
 */
function unsecured(header: JWTHeaderParameters, payload: string, options: JWTVerifyOptions): string {
  // A typ that is not a string fails a required typ with or without it: left out, never
  // re-encoded (a deeply nested one would overflow JSON.stringify's stack, where JSON.parse did not).
  const typ: unknown = header.typ;
  const h = options.typ === undefined || typeof typ !== 'string' ? NONE_HEADER : Buffer.from(JSON.stringify({ alg: 'none', typ })).toString('base64url');
  return `${h}.${payload}.`;
}

/**
 * jwtVerify(token, keys, options), the signature checked on the event loop where the token and
 * the key have the common shape. `header` must be the token's own protected header, decoded
 * (jwt.ts decodes it once, for the issuer's checks too).
 */
export async function verifyOnEventLoop(token: string, header: JWTHeaderParameters, keys: JWTVerifyGetKey, options: JWTVerifyOptions): Promise<JWTVerifyResult> {
  const scheme = SCHEMES.get(header.alg ?? '');
  const first = token.indexOf('.');
  const last = token.lastIndexOf('.');
  const signature = token.slice(last + 1);
  if (
    scheme === undefined ||
    !COMPACT_JWS.test(token) ||
    !Object.keys(header).every((k) => PLAIN_HEADER.has(k)) ||
    // 4n+1 characters are not base64url either (node would drop one).
    signature.length % 4 === 1 ||
    options.algorithms?.includes(header.alg) !== true
  ) {
    return jwtVerify(token, keys, options);
  }
  const key = await keys(header, { payload: token.slice(first + 1, last), protected: token.slice(0, first), signature });
  // Not a key jose would take as it is: jose decides, with the key already resolved.
  if (!keyFits(key, scheme)) return jwtVerify(token, () => key, options);

  let valid: boolean;
  try {
    valid = verifySignature(scheme.digest, Buffer.from(token.slice(0, last), 'latin1'), { key: keyObject(key), ...scheme.options }, Buffer.from(signature, 'base64url'));
  } catch (cause) {
    throw new joseErrors.JWSSignatureVerificationFailed(undefined, { cause });
  }
  if (!valid) throw new joseErrors.JWSSignatureVerificationFailed();
  const { payload } = UnsecuredJWT.decode(unsecured(header, token.slice(first + 1, last), options), options);
  return { payload, protectedHeader: header };
}
