// OPA bundle signatures, verified as OPA verifies them (v1/bundle/verify.go, bundle.go Read,
// hash.go), with one configured key the way `opa build|run --verification-key` uses it (the
// token's kid is not consulted):
// - exactly one file named .signatures.json (in any directory), holding {"signatures": [one
//   compact JWS], "plugin": "" | "_default"}; its payload lists {name, hash, algorithm} per file;
// - the JWS is checked with the configured key and algorithm (the header's alg is not trusted),
//   then the payload's scope must equal the configured one ("" when none);
// - every other file of the archive, by its name without one leading "/", must be listed; data.json
//   and .manifest files are hashed from their parsed form (go-json.ts), all others as raw bytes;
//   any listed file the archive lacks is an error too.
import { constants, createHash, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { posix } from 'node:path';
import { foldKey, GoJsonError, GoNumber, hashGoJsonAsync, parseGoJsonAsync, type GoValue } from './go-json.js';
import type { TarFile } from './tar.js';

export class BundleSignatureError extends Error {
  override readonly name = 'BundleSignatureError';
}

export interface SignatureKey {
  /** A public key, or the HMAC secret for HS*. */
  readonly key: KeyObject | Uint8Array;
  readonly algorithm: string;
  /** The scope the token must name ("" or absent: none). */
  readonly scope?: string;
}

const SIGNATURES_FILE = '.signatures.json';

/** OPA's hash algorithm names (hash.go) and Node's for them. */
const HASHES: Record<string, string> = {
  MD5: 'md5',
  'SHA-1': 'sha1',
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
  'SHA-512-224': 'sha512-224',
  'SHA-512-256': 'sha512-256',
};

/** IsStructuredDoc: hashed from the parsed document, not the bytes. */
function structured(path: string): boolean {
  const base = posix.basename(path);
  return base === 'data.json' || base === '.manifest' || base === 'data.yaml' || base === 'data.yml';
}

// ---- Go's encoding/json into OPA's structs: fields match case-insensitively, null leaves the zero value, a wrong type is an error.

function struct(v: GoValue, fields: readonly string[], what: string): Map<string, GoValue> {
  const out = new Map<string, GoValue>();
  if (v === null) return out;
  if (!(v instanceof Map)) throw new BundleSignatureError(`${what} is not an object`);
  for (const [k, val] of v) {
    const f = fields.find((name) => name.toUpperCase() === foldKey(k));
    if (f !== undefined) out.set(f, val);
  }
  return out;
}

function str(v: GoValue | undefined, what: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw new BundleSignatureError(`${what} is not a string`);
  return v;
}

function int64(v: GoValue | undefined, what: string): void {
  if (v === undefined || v === null) return;
  if (!(v instanceof GoNumber) || !/^-?[0-9]+$/.test(v.literal)) throw new BundleSignatureError(`${what} is not an integer`);
  const n = BigInt(v.literal);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw new BundleSignatureError(`${what} is out of range`);
}

/** Parsed stepwise: a large file (or a hostile .signatures.json) does not hold up the event loop. */
async function parse(bytes: Buffer, what: string, trailing: 'refuse' | 'ignore'): Promise<GoValue> {
  try {
    return await parseGoJsonAsync(bytes, { trailing });
  } catch (err) {
    throw new BundleSignatureError(`${what} is not JSON${err instanceof GoJsonError ? ` (${err.message})` : ''}`);
  }
}

interface SignedFile {
  readonly hash: string;
  readonly algorithm: string;
}

/** The payload (DecodedSignature): files by name (the last of a repeated name wins), and the scope. */
function decodePayload(v: GoValue): { files: Map<string, SignedFile>; scope: string } {
  const p = struct(v, ['files', 'keyid', 'scope', 'iat', 'iss'], 'the signature payload');
  str(p.get('keyid'), 'keyid');
  str(p.get('iss'), 'iss');
  int64(p.get('iat'), 'iat');
  const files = new Map<string, SignedFile>();
  const list = p.get('files') ?? null;
  if (list !== null && !Array.isArray(list)) throw new BundleSignatureError('the signature payload files is not a list');
  for (const item of list ?? []) {
    const f = struct(item, ['name', 'hash', 'algorithm'], 'a signed file');
    files.set(str(f.get('name'), 'a signed file name'), { hash: str(f.get('hash'), 'a signed file hash'), algorithm: str(f.get('algorithm'), 'a signed file algorithm') });
  }
  return { files, scope: str(p.get('scope'), 'scope') };
}

/** Go's base64.RawURLEncoding.Decode into a buffer of DecodedLen (it skips CR/LF; the buffer keeps its length). */
function base64url(s: string): Buffer | undefined {
  const stripped = s.replace(/[\r\n]/g, '');
  if (!/^[A-Za-z0-9_-]*$/.test(stripped) || stripped.length % 4 === 1) return undefined;
  const out = Buffer.from(stripped, 'base64url');
  const len = Math.floor((s.length * 6) / 8);
  return out.length === len ? out : Buffer.concat([out, Buffer.alloc(len - out.length)]);
}

const CURVE_BYTES: Record<string, number> = { 'prime256v1': 32, 'secp384r1': 48, 'secp521r1': 66, 'secp256k1': 32 };

/** The JWS signature over `input` with the configured key and algorithm, whatever the token's header says. */
function signatureValid(k: SignatureKey, input: Buffer, sig: Buffer): boolean {
  const alg = k.algorithm;
  const sha = `sha${alg.slice(2)}`;
  try {
    if (alg.startsWith('HS')) {
      const mac = createHmac(sha, k.key).update(input).digest();
      return mac.length === sig.length && timingSafeEqual(mac, sig);
    }
    const key = k.key as KeyObject;
    if (alg.startsWith('RS')) return verify(sha, input, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
    if (alg.startsWith('PS')) return verify(sha, input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }, sig);
    if (alg.startsWith('ES')) {
      const size = CURVE_BYTES[key.asymmetricKeyDetails?.namedCurve ?? ''];
      return size !== undefined && sig.length === 2 * size && verify(sha, input, { key, dsaEncoding: 'ieee-p1363' }, sig);
    }
    if (alg === 'EdDSA' || alg === 'Ed25519') return verify(null, input, key, sig);
  } catch {
    return false;
  }
  return false;
}

/** The token of .signatures.json, verified: its payload's files. */
async function verifiedFiles(files: readonly TarFile[], key: SignatureKey): Promise<Map<string, SignedFile>> {
  const sigFiles = files.filter((f) => posix.basename(f.path) === SIGNATURES_FILE);
  if (sigFiles.length > 1) throw new BundleSignatureError(`bundle contains multiple signatures files: ${sigFiles.map((f) => JSON.stringify(f.path)).join(' and ')}`);
  if (sigFiles.length === 0) throw new BundleSignatureError('bundle is not signed (.signatures.json missing)');
  // Decoded like json.Decoder.Decode: the first value counts, what follows it is never read.
  const sc = struct(await parse(sigFiles[0]!.content, SIGNATURES_FILE, 'ignore'), ['signatures', 'plugin'], SIGNATURES_FILE);
  const rawList = sc.get('signatures') ?? null;
  if (rawList !== null && !Array.isArray(rawList)) throw new BundleSignatureError(`${SIGNATURES_FILE} signatures is not a list`);
  const tokens = rawList?.map((t) => str(t, `${SIGNATURES_FILE} signature`));
  const plugin = str(sc.get('plugin'), `${SIGNATURES_FILE} plugin`);
  if (tokens === undefined && plugin === '') throw new BundleSignatureError('bundle is not signed (.signatures.json is empty)');
  if (plugin !== '' && plugin !== '_default') throw new BundleSignatureError(`unsupported signature plugin ${JSON.stringify(plugin.slice(0, 100))}`);
  if (!tokens || tokens.length !== 1) throw new BundleSignatureError(`${SIGNATURES_FILE} must hold exactly one signature (it has ${tokens?.length ?? 0})`);

  const parts = tokens[0]!.split('.');
  if (parts.length !== 3) throw new BundleSignatureError('the signature is not a compact JWS');
  const [header, payloadPart, sigPart] = parts as [string, string, string];
  const payloadBytes = base64url(payloadPart);
  if (!payloadBytes) throw new BundleSignatureError('the signature payload is not base64url');
  const payload = decodePayload(await parse(payloadBytes, 'the signature payload', 'refuse'));
  const sig = base64url(sigPart);
  if (!sig) throw new BundleSignatureError('the signature is not base64url');
  if (!signatureValid(key, Buffer.from(`${header}.${payloadPart}`, 'utf8'), sig)) throw new BundleSignatureError('bundle signature does not verify');
  if (payload.scope !== (key.scope ?? '')) throw new BundleSignatureError('bundle signature scope mismatch');
  return payload.files;
}

/** The digest OPA computes for a bundle file (VerifyBundleFile, opa sign). */
export async function fileDigest(path: string, content: Buffer, algorithm: string): Promise<Buffer> {
  const name = HASHES[algorithm];
  if (name === undefined) throw new BundleSignatureError(`unsupported hash algorithm ${JSON.stringify(algorithm.slice(0, 40))} for ${path}`);
  const h = createHash(name);
  if (!structured(path)) return h.update(content).digest();
  // util.Unmarshal: a UTF-8 BOM is dropped, then the whole file must be one JSON value.
  const bom = content.length > 2 && content[0] === 0xef && content[1] === 0xbb && content[2] === 0xbf;
  await hashGoJsonAsync(await parse(bom ? content.subarray(3) : content, path, 'refuse'), h);
  return h.digest();
}

/** Throws BundleSignatureError unless the archive is signed by `key` and every file matches its signed hash. */
export async function verifyBundleSignature(files: readonly TarFile[], key: SignatureKey): Promise<void> {
  const signed = await verifiedFiles(files, key);
  for (const f of files) {
    if (posix.basename(f.path) === SIGNATURES_FILE) continue;
    const path = f.path.startsWith('/') ? f.path.slice(1) : f.path;
    const entry = signed.get(path);
    if (!entry) throw new BundleSignatureError(`file ${path} is not covered by the signature`);
    if (entry.algorithm === '') throw new BundleSignatureError(`no hash algorithm for file ${path}`);
    const want = /^(?:[0-9a-fA-F]{2})*$/.test(entry.hash) ? Buffer.from(entry.hash, 'hex') : undefined;
    const got = await fileDigest(path, f.content, entry.algorithm);
    if (!want) throw new BundleSignatureError(`the signed hash of file ${path} is not hex`);
    if (!got.equals(want)) throw new BundleSignatureError(`file ${path} does not match its signed hash`);
    signed.delete(path);
  }
  if (signed.size > 0) throw new BundleSignatureError(`signed files missing from the bundle: ${[...signed.keys()].slice(0, 10).join(', ')}`);
}
