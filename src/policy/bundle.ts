// An OPA bundle (bundle.tar.gz built by `opa build -t wasm`): .manifest, policy.wasm, data.json
// files, and optionally .signatures.json. Parsed and checked completely before it can be
// activated, so a bad bundle never replaces a good one.
import { errorMessage } from '../lib/errors.js';
import { setOwn } from '../lib/records.js';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { readTarGz, type TarFile, type TarLimits } from './tar.js';
import { verifyBundleSignature, type SignatureKey } from './signature.js';
import { foldKey, parseGoJsonAsync } from './go-json.js';

export interface PolicyBundle {
  readonly revision: string;
  readonly wasm: Buffer;
  readonly data: Record<string, unknown>;
  readonly entrypoints: readonly string[];
}

export type BundleVerification = SignatureKey;

export class BundleError extends Error {
  override readonly name = 'BundleError';
}

/** Defaults of policy.bundle.max_bytes / max_uncompressed_bytes. */
export const BUNDLE_LIMITS: TarLimits = { maxCompressedBytes: 64 * 1024 * 1024, maxUncompressedBytes: 256 * 1024 * 1024, maxFiles: 10000 };

const SYSTEM_LOG = /^package\s+system\.log\s*$/m;

interface Manifest {
  revision?: unknown;
  wasm?: { entrypoint?: unknown; module?: unknown }[];
}

function setAt(root: Record<string, unknown>, path: string[], value: unknown): void {
  let node = root;
  for (const seg of path) {
    const next = Object.hasOwn(node, seg) ? node[seg] : undefined;
    if (next === null || typeof next !== 'object' || Array.isArray(next)) setOwn(node, seg, {});
    node = node[seg] as Record<string, unknown>;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new BundleError(`data file at /${path.join('/')} is not an object`);
  for (const [k, v] of Object.entries(value)) setOwn(node, k, v);
}

/** OPA's test for a delta bundle: a patch.json whose "data" lists operations (one that does not decode fails OPA's load too). */
async function isDelta(entries: readonly TarFile[]): Promise<boolean> {
  for (const f of entries) {
    if (posix.basename(f.path) !== 'patch.json') continue;
    const patch = await parseGoJsonAsync(f.content, { trailing: 'ignore' }).catch(() => undefined);
    if (patch === null) continue;
    if (!(patch instanceof Map)) return true;
    const ops = [...patch].filter(([k]) => foldKey(k) === 'DATA').pop()?.[1];
    if (ops !== undefined && ops !== null && !(Array.isArray(ops) && ops.length === 0)) return true;
  }
  return false;
}

export async function parseBundle(archive: Buffer, verification?: BundleVerification, limits: TarLimits = BUNDLE_LIMITS): Promise<PolicyBundle> {
  let entries: TarFile[];
  try {
    entries = await readTarGz(archive, limits);
  } catch (err) {
    throw new BundleError(`not a readable bundle: ${errorMessage(err)}`);
  }
  // OPA loads data.yaml/data.yml as data (and hashes them as YAML): refused rather than half-read.
  const yaml = entries.find((f) => /^data\.ya?ml$/.test(posix.basename(f.path)));
  if (yaml) throw new BundleError(`YAML data files are not supported (${yaml.path.slice(0, 100)}): use data.json`);
  if (await isDelta(entries)) throw new BundleError('delta bundles (patch.json) are not supported: build a snapshot bundle');
  if (verification) await verifyBundleSignature(entries, verification);
  // Loaded by normalized name: "/x" and "./x" are "x".
  const files = new Map(entries.map((f) => [f.path.replace(/^(\.\/|\/)+/, ''), f.content]));

  let manifest: Manifest = {};
  const rawManifest = files.get('.manifest');
  if (rawManifest) {
    try {
      manifest = JSON.parse(rawManifest.toString('utf8')) as Manifest;
    } catch {
      throw new BundleError('.manifest is not JSON');
    }
  }
  const modules = manifest.wasm ?? [];
  const modulePath = typeof modules[0]?.module === 'string' ? modules[0].module.replace(/^\/+/, '') : 'policy.wasm';
  const wasm = files.get(modulePath);
  if (!wasm) throw new BundleError(`bundle has no ${modulePath}: build it with opa build -t wasm`);

  const data: Record<string, unknown> = {};
  for (const [name, content] of [...files].sort(([a], [b]) => a.split('/').length - b.split('/').length)) {
    if (name !== 'data.json' && !name.endsWith('/data.json')) continue;
    let value: unknown;
    try {
      value = JSON.parse(content.toString('utf8'));
    } catch {
      throw new BundleError(`${name} is not JSON`);
    }
    setAt(data, name.split('/').slice(0, -1), value);
  }
  const revision =
    typeof manifest.revision === 'string' && manifest.revision !== ''
      ? manifest.revision
      : `sha256:${createHash('sha256').update(archive).digest('hex').slice(0, 16)}`;
  const entrypoints = modules.map((m) => m.entrypoint).filter((e): e is string => typeof e === 'string');
  // A decision-log mask left out of the wasm would be silently ignored: personal data logged.
  if (!entrypoints.includes('system/log/mask') && [...files].some(([name, text]) => name.endsWith('.rego') && SYSTEM_LOG.test(text.toString('utf8')))) {
    throw new BundleError('bundle declares package system.log but its wasm has no system/log/mask entrypoint: build with -e system/log/mask (make policies does)');
  }
  return { revision, wasm, data, entrypoints };
}
