// io.jwt.*: decode, decode_verify and the verify_<alg> family, as OPA's topdown/tokens.go does
// them. node:crypto, not jose: a host built-in is called synchronously from inside the wasm, and
// jose's verification is asynchronous (WebCrypto).
import { X509Certificate, constants, createHmac, createPublicKey, createSecretKey, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { base64UrlDecode, jsonObject } from './encoding.js';
import { BuiltinArgError, isObject, obj, str, type Json, type Value } from './values.js';

const ALGORITHMS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'HS256', 'HS384', 'HS512', 'EdDSA']);

interface Token {
  readonly header: string;
  readonly payload: string;
  readonly signature: string;
}

interface VerificationKey {
  readonly alg: string;
  readonly kid: string;
  readonly key: KeyObject;
}

interface Header {
  alg: string;
  kid: string;
  cty: string;
  crit: Set<string>;
  unknown: string[];
}

function splitToken(v: unknown): Token {
  const s = str(v, 1);
  if (!s.includes('.')) throw new BuiltinArgError('encoded JWT had no period separators');
  const parts = s.split('.');
  if (parts.length !== 3) throw new BuiltinArgError(`encoded JWT must have 3 sections, found ${parts.length}`);
  return { header: parts[0]!, payload: parts[1]!, signature: parts[2]! };
}

function decodeHeader(token: Token): { [key: string]: Json } {
  const header = jsonObject(base64UrlDecode(token.header).toString('utf8'));
  if ('enc' in header) throw new BuiltinArgError('JWT is a JWE object, which is not supported');
  return header;
}

function parseHeader(decoded: { [key: string]: Json }): Header {
  const h: Header = { alg: '', kid: '', cty: '', crit: new Set(), unknown: [] };
  for (const [k, v] of Object.entries(decoded)) {
    if (k === 'alg' || k === 'kid' || k === 'cty' || k === 'typ') {
      if (typeof v !== 'string') throw new BuiltinArgError(`${k}: must be a string`);
      if (k !== 'typ') h[k] = v;
    } else if (k === 'crit') {
      if (!Array.isArray(v)) throw new BuiltinArgError('crit: must be a list');
      for (const c of v) {
        if (typeof c !== 'string') break;
        h.crit.add(c);
      }
      if (h.crit.size === 0) throw new BuiltinArgError('crit: must be a nonempty list');
    } else {
      h.unknown.push(k);
    }
  }
  return h;
}

/** The first PEM block of `text` (Go's pem.Decode): one pass over the END markers, then each
 *  BEGIN looks its END up, so that a text full of markers costs linear time. */
function firstPem(text: string): { type: string; block: string; rest: string } | undefined {
  const ends = new Map<string, number[]>();
  for (let at = text.indexOf('-----END '); at >= 0; at = text.indexOf('-----END ', at + 9)) {
    const close = text.indexOf('-----', at + 9);
    if (close < 0) break;
    const type = text.slice(at + 9, close);
    if (type.includes('\n')) continue;
    const list = ends.get(type);
    if (list) list.push(at);
    else ends.set(type, [at]);
  }
  const cursors = new Map<string, number>();
  for (let begin = text.indexOf('-----BEGIN '); begin >= 0; begin = text.indexOf('-----BEGIN ', begin + 11)) {
    const typeEnd = text.indexOf('-----', begin + 11);
    if (typeEnd < 0) return undefined;
    const type = text.slice(begin + 11, typeEnd);
    if (type.includes('\n')) continue;
    // BEGINs come in order: each type's cursor only moves forward.
    const list = ends.get(type) ?? [];
    let i = cursors.get(type) ?? 0;
    while (i < list.length && list[i]! <= typeEnd) i++;
    cursors.set(type, i);
    const end = list[i];
    if (end === undefined) continue;
    const marker = `-----END ${type}-----`;
    return { type, block: text.slice(begin, end + marker.length), rest: text.slice(end + marker.length) };
  }
  return undefined;
}

/** Parsed keys by their text, as OPA's io_jwt_keys cache (100 entries): policies verify many
 *  tokens against the same few keys. Texts above 64 KiB are parsed every time. */
const keyCache = new LRUCache<string, VerificationKey[]>({ max: 100 });
const MAX_CACHED_KEY_TEXT = 64 * 1024;

function parseKeys(text: string): VerificationKey[] {
  const cached = keyCache.get(text);
  if (cached) return cached;
  const keys = parseKeysUncached(text);
  if (text.length <= MAX_CACHED_KEY_TEXT) keyCache.set(text, keys);
  return keys;
}

/** A PEM certificate or public key, or a JWK / JWK Set (OPA's parseKeysFromCertOrJWK). */
function parseKeysUncached(text: string): VerificationKey[] {
  const pem = firstPem(text);
  if (pem) {
    const newline = pem.rest.indexOf('\n');
    if (newline >= 0 && pem.rest.length > newline + 1) throw new BuiltinArgError('extra data after a PEM certificate block');
    if (pem.type === 'CERTIFICATE') return [{ alg: '', kid: '', key: new X509Certificate(pem.block).publicKey }];
    if (pem.type === 'PUBLIC KEY') return [{ alg: '', kid: '', key: createPublicKey(pem.block) }];
    throw new BuiltinArgError('failed to extract a Key from the PEM certificate');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BuiltinArgError('failed to parse a JWK key (set)');
  }
  if (!isObject(parsed)) throw new BuiltinArgError('failed to parse a JWK key (set)');
  const jwks = Array.isArray(parsed.keys) ? parsed.keys : [parsed];
  const keys: VerificationKey[] = [];
  for (const jwk of jwks) {
    if (!isObject(jwk)) throw new BuiltinArgError('failed to parse a JWK key (set)');
    const alg = typeof jwk.alg === 'string' ? jwk.alg : '';
    if (alg !== '' && !ALGORITHMS.has(alg)) continue;
    const key = jwk.kty === 'oct' && typeof jwk.k === 'string' ? createSecretKey(base64UrlDecode(jwk.k)) : createPublicKey({ key: jwk, format: 'jwk' });
    keys.push({ alg, kid: typeof jwk.kid === 'string' ? jwk.kid : '', key });
  }
  return keys;
}

type Verifier = (key: KeyObject, data: Buffer, signature: Buffer) => boolean;

function safely(v: Verifier): Verifier {
  return (key, data, signature) => {
    try {
      return v(key, data, signature);
    } catch {
      return false;
    }
  };
}

const rsa = (hash: string): Verifier =>
  safely((key, data, sig) => key.asymmetricKeyType === 'rsa' && verify(hash, data, { key, padding: constants.RSA_PKCS1_PADDING }, sig));

/** verify_ps*: any salt length (Go's rsa.VerifyPSS with nil options); decode_verify (jwx) wants
 *  the salt as long as the hash. */
const pss = (hash: string, saltLength: number = constants.RSA_PSS_SALTLEN_AUTO): Verifier =>
  safely((key, data, sig) => key.asymmetricKeyType === 'rsa' && verify(hash, data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength }, sig));

/** A DER INTEGER of big-endian unsigned bytes. */
function derInteger(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let v = bytes.subarray(i);
  if (v.length === 0) v = Buffer.from([0]);
  if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return Buffer.concat([Buffer.from([0x02]), derLength(v.length), v]);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x % 256);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** r||s split in two halves whatever the curve, as OPA's verifyES does. */
function ecdsaDer(sig: Buffer): Buffer {
  const n = Math.floor(sig.length / 2);
  const body = Buffer.concat([derInteger(sig.subarray(0, n)), derInteger(sig.subarray(n))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

const es = (hash: string): Verifier =>
  safely((key, data, sig) => key.asymmetricKeyType === 'ec' && verify(hash, data, { key, dsaEncoding: 'der' }, ecdsaDer(sig)));

const eddsa: Verifier = safely((key, data, sig) => key.asymmetricKeyType === 'ed25519' && verify(null, data, key, sig));

/** Bytes of r (and of s) per curve, by OpenSSL's curve name. */
const CURVE_BYTES: Record<string, number> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

function hmacEqual(hash: string, secret: Buffer, data: Buffer, sig: Buffer): boolean {
  const mac = createHmac(hash, secret).update(data).digest();
  return mac.length === sig.length && timingSafeEqual(mac, sig);
}

/** jwsbb.Verify: the header's algorithm with the given key (ES signatures must be exactly r||s of the curve). */
function verifyWithAlg(alg: string, key: KeyObject, data: Buffer, sig: Buffer): boolean {
  const hash = HASH[alg.slice(2)];
  if (!ALGORITHMS.has(alg)) return false;
  if (alg === 'EdDSA') return eddsa(key, data, sig);
  if (hash === undefined) return false;
  switch (alg.slice(0, 2)) {
    case 'HS':
      return key.type === 'secret' && hmacEqual(hash, key.export(), data, sig);
    case 'RS':
      return rsa(hash)(key, data, sig);
    case 'PS':
      return pss(hash, constants.RSA_PSS_SALTLEN_DIGEST)(key, data, sig);
    default: {
      const size = CURVE_BYTES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return size !== undefined && sig.length === 2 * size && es(hash)(key, data, sig);
    }
  }
}

function verifyBuiltin(verifier: Verifier): (jwt: Json, keyText: Json) => Value {
  return (jwt, keyText) => {
    const token = splitToken(jwt);
    const keys = parseKeys(str(keyText, 2));
    const sig = base64UrlDecode(token.signature);
    const header = parseHeader(decodeHeader(token));
    const data = Buffer.from(`${token.header}.${token.payload}`);
    if (header.kid !== '') {
      const byKid = keys.find((k) => k.kid === header.kid);
      if (byKid) return verifier(byKid.key, data, sig);
    }
    return keys.some((k) => (k.alg === '' || k.alg === header.alg) && verifier(k.key, data, sig));
  };
}

function verifyHmac(hash: string): (jwt: Json, secret: Json) => Value {
  return (jwt, secretText) => {
    const token = splitToken(jwt);
    const secret = str(secretText, 2);
    const sig = base64UrlDecode(token.signature);
    return hmacEqual(hash, Buffer.from(secret, 'utf8'), Buffer.from(`${token.header}.${token.payload}`), sig);
  };
}

/** strings.Trim(s, `"'`). */
function trimQuotes(s: string): string {
  const quote = (c: string | undefined): boolean => c === '"' || c === "'";
  let start = 0;
  let end = s.length;
  while (start < end && quote(s[start])) start++;
  while (end > start && quote(s[end - 1])) end--;
  return s.slice(start, end);
}

function decode(jwt: Json): Value {
  const token = splitToken(jwt);
  const header = decodeHeader(token);
  const payload = base64UrlDecode(token.payload).toString('utf8');
  if (header.cty === 'JWT') return decode(trimQuotes(payload));
  const claims = jsonObject(payload);
  return [header, claims, base64UrlDecode(token.signature).toString('hex')];
}

interface Constraints {
  keys?: VerificationKey[];
  secret: string;
  alg: string;
  iss: string;
  aud: string;
  time: number;
}

function constraintsOf(o: { [key: string]: Json }, nowNs: () => bigint): Constraints {
  const c: Constraints = { secret: '', alg: '', iss: '', aud: '', time: -1 };
  for (const [name, v] of Object.entries(o)) {
    switch (name) {
      case 'cert':
        if (typeof v !== 'string') throw new BuiltinArgError('cert constraint: must be a string');
        c.keys = parseKeys(v);
        break;
      case 'secret':
      case 'alg':
      case 'iss':
      case 'aud':
        if (typeof v !== 'string') throw new BuiltinArgError(`${name} constraint: must be a string`);
        c[name] = v;
        break;
      case 'time':
        if (typeof v !== 'number') throw new BuiltinArgError('token time constraint: must be a number');
        if (v < 0) throw new BuiltinArgError('token time constraint: must not be negative');
        c.time = v;
        break;
      default:
        throw new BuiltinArgError(`unknown token validation constraint: ${name}`);
    }
  }
  if (c.time === -1) c.time = Number(nowNs());
  const keyConstraints = (c.keys !== undefined ? 1 : 0) + (c.secret !== '' ? 1 : 0);
  if (keyConstraints > 1) throw new BuiltinArgError('duplicate key constraints');
  if (keyConstraints < 1) throw new BuiltinArgError('no key constraint');
  return c;
}

function constraintsVerify(c: Constraints, header: Header, data: Buffer, sig: Buffer): boolean {
  if (c.keys !== undefined) {
    if (header.kid !== '') {
      const byKid = c.keys.find((k) => k.kid === header.kid);
      if (byKid) return verifyWithAlg(header.alg, byKid.key, data, sig);
    }
    return c.keys.some((k) => (k.alg === '' || k.alg === header.alg) && verifyWithAlg(header.alg, k.key, data, sig));
  }
  return verifyWithAlg(header.alg, createSecretKey(Buffer.from(c.secret, 'utf8')), data, sig);
}

function validAudience(c: Constraints, aud: Json): boolean {
  if (typeof aud === 'string') return aud === c.aud;
  return Array.isArray(aud) && aud.some((a) => typeof a === 'string' && a === c.aud);
}

function decodeVerify(nowNs: () => bigint): (jwt: Json, constraints: Json) => Value {
  return (jwt, constraintsArg) => {
    const c = constraintsOf(obj(constraintsArg, 2), nowNs);
    const unverified: Value = [false, {}, {}];
    let text: Json = jwt;
    let decodedHeader: { [key: string]: Json };
    let payloadText: string;
    for (;;) {
      const token = splitToken(text);
      decodedHeader = decodeHeader(token);
      const header = parseHeader(decodedHeader);
      if (header.alg === '' || header.unknown.some((u) => header.crit.has(u))) return unverified;
      if (c.alg !== '' && c.alg !== header.alg) return unverified;
      const sig = base64UrlDecode(token.signature);
      if (!constraintsVerify(c, header, Buffer.from(`${token.header}.${token.payload}`), sig)) return unverified;
      payloadText = base64UrlDecode(token.payload).toString('utf8');
      if (header.cty.toLowerCase() !== 'jwt') break;
      text = payloadText;
    }
    const payload = jsonObject(payloadText);
    if (c.iss !== '' && payload.iss !== c.iss) return unverified;
    if ('aud' in payload ? !validAudience(c, payload.aud) : c.aud !== '') return unverified;
    const seconds = c.time / 1e9;
    if ('exp' in payload) {
      if (typeof payload.exp !== 'number') throw new BuiltinArgError('exp value must be a number');
      if (seconds >= payload.exp) return unverified;
    }
    if ('nbf' in payload) {
      if (typeof payload.nbf !== 'number') throw new BuiltinArgError('nbf value must be a number');
      if (seconds < payload.nbf) return unverified;
    }
    return [true, decodedHeader, payload];
  };
}

export function jwtBuiltins(nowNs: () => bigint): Record<string, (...args: Json[]) => Value> {
  const family: Record<string, (...args: Json[]) => Value> = {
    'io.jwt.decode': decode,
    'io.jwt.decode_verify': decodeVerify(nowNs),
    'io.jwt.verify_eddsa': verifyBuiltin(eddsa),
  };
  for (const bits of ['256', '384', '512']) {
    const hash = HASH[bits]!;
    family[`io.jwt.verify_rs${bits}`] = verifyBuiltin(rsa(hash));
    family[`io.jwt.verify_ps${bits}`] = verifyBuiltin(pss(hash));
    family[`io.jwt.verify_es${bits}`] = verifyBuiltin(es(hash));
    family[`io.jwt.verify_hs${bits}`] = verifyHmac(hash);
  }
  return family;
}
