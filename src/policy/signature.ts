// OPA bundle signatures: .signatures.json holds one JWT whose payload lists every file of the
// bundle with its SHA-256; JSON files are hashed in OPA's canonical form (sorted keys, no
// whitespace), other files as raw bytes. The JWT is verified with jose, algorithm pinned.
import { createHash } from 'node:crypto';
import { compactVerify, type CryptoKey, type KeyObject } from 'jose';

export class BundleSignatureError extends Error {
  override readonly name = 'BundleSignatureError';
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

export function fileHash(name: string, content: Buffer): string {
  const h = createHash('sha256');
  if (name.endsWith('.json') || name === '.manifest' || name.endsWith('/.manifest')) {
    h.update(canonicalJson(JSON.parse(content.toString('utf8')) as unknown));
  } else h.update(content);
  return h.digest('hex');
}

interface SignedFile {
  name: string;
  hash: string;
  algorithm: string;
}

export async function verifyBundleSignature(
  files: ReadonlyMap<string, Buffer>,
  key: CryptoKey | KeyObject | Uint8Array,
  algorithm: string,
): Promise<void> {
  const sigFile = files.get('.signatures.json');
  if (!sigFile) throw new BundleSignatureError('bundle is not signed (.signatures.json missing)');
  let jwt: unknown;
  try {
    jwt = (JSON.parse(sigFile.toString('utf8')) as { signatures?: unknown[] }).signatures?.[0];
  } catch {
    throw new BundleSignatureError('.signatures.json is not JSON');
  }
  if (typeof jwt !== 'string') throw new BundleSignatureError('.signatures.json has no signature');
  let payload: { files?: SignedFile[] };
  try {
    const verified = await compactVerify(jwt, key, { algorithms: [algorithm] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as { files?: SignedFile[] };
  } catch {
    throw new BundleSignatureError('bundle signature does not verify');
  }
  const signed = new Map((payload.files ?? []).map((f) => [f.name.replace(/^\/+/, ''), f]));
  for (const [name, content] of files) {
    if (name === '.signatures.json') continue;
    const entry = signed.get(name);
    if (!entry) throw new BundleSignatureError(`file ${name} is not covered by the signature`);
    if (entry.algorithm !== 'SHA-256') throw new BundleSignatureError(`unsupported hash algorithm ${entry.algorithm}`);
    let actual: string;
    try {
      actual = fileHash(name, content);
    } catch {
      throw new BundleSignatureError(`file ${name} cannot be hashed`);
    }
    if (actual !== entry.hash) throw new BundleSignatureError(`file ${name} does not match its signed hash`);
    signed.delete(name);
  }
  if (signed.size > 0) throw new BundleSignatureError(`signed files missing from the bundle: ${[...signed.keys()].join(', ')}`);
}
