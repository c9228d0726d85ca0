// Keeps the policy engine fed: loads the bundle from a file (re-read when it changes) or an
// HTTP(S) URL (polled with If-None-Match). A bad bundle is logged and counted and the last good
// one keeps serving; readiness reports whether any bundle is active.
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readReferencedFile } from '../config/files.js';
import { resolveConfigPath, type LoadedConfig } from '../config/loader.js';
import type { PolicyConfig } from '../config/schema.js';
import { ConfigError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import { BUNDLE_LIMITS, parseBundle, type BundleVerification, type PolicyBundle } from './bundle.js';
import type { TarLimits } from './tar.js';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';
import type { PolicyEngine } from './engine.js';

export interface BundleStatus {
  readonly revision?: string;
  readonly activations: number;
  readonly failures: number;
  readonly lastError?: string;
}

export type ReloadResult = { ok: true; revision: string; changed: boolean } | { ok: false; error: string };

/** The key types each JWS algorithm family verifies with. */
const KEY_TYPES: Record<string, readonly string[]> = { RS: ['rsa'], PS: ['rsa', 'rsa-pss'], ES: ['ec'], Ed: ['ed25519'] };

export async function loadVerification(loaded: Pick<LoadedConfig, 'file' | 'dir'>, cfg: PolicyConfig): Promise<BundleVerification | undefined> {
  const v = cfg.verification;
  if (!v) return undefined;
  const keyPath = '/policy/verification/key_file';
  const scope = v.scope ?? '';
  const raw = await readReferencedFile(loaded, keyPath, v.key_file, { secret: v.algorithm.startsWith('HS'), maxBytes: 65536 });
  if (v.algorithm.startsWith('HS')) return { key: new Uint8Array(raw), algorithm: v.algorithm, scope };
  // What OPA reads there: a PEM public key (SPKI or PKCS#1) or a certificate. Not a private key
  // (OPA would take one): it has no business in this file.
  let key: KeyObject | undefined;
  try {
    key = /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(raw.toString('latin1')) ? undefined : createPublicKey(raw);
  } catch {
    key = undefined;
  }
  const family = v.algorithm === 'EdDSA' || v.algorithm === 'Ed25519' ? 'Ed' : v.algorithm.slice(0, 2);
  if (!key || !KEY_TYPES[family]?.includes(key.asymmetricKeyType ?? '')) {
    throw new ConfigError(loaded.file, [{ keyPath, problem: `not a PEM public key usable with ${v.algorithm}` }]);
  }
  return { key, algorithm: v.algorithm, scope };
}

export class BundleSource {
  private timer: NodeJS.Timeout | undefined;
  private lastDigest = '';
  /** The last archive refused: offered again unchanged, it is not inflated and parsed again. */
  private rejectedDigest = '';
  private etag = '';
  private fileStamp = '';
  private activations = 0;
  private failures = 0;
  private lastError: string | undefined;
  private running: Promise<ReloadResult> | undefined;
  private readonly listeners: ((revision: string) => void)[] = [];
  private readonly limits: TarLimits;

  constructor(
    private readonly loaded: Pick<LoadedConfig, 'file' | 'dir'>,
    private readonly cfg: PolicyConfig,
    private readonly engine: PolicyEngine,
    private readonly verification: BundleVerification | undefined,
    private readonly log: Logger,
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    this.limits = { ...BUNDLE_LIMITS, maxCompressedBytes: cfg.bundle.max_bytes, maxUncompressedBytes: cfg.bundle.max_uncompressed_bytes };
  }

  onActivate(l: (revision: string) => void): void {
    this.listeners.push(l);
  }

  status(): BundleStatus {
    return {
      ...(this.engine.revision !== undefined ? { revision: this.engine.revision } : {}),
      activations: this.activations,
      failures: this.failures,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** First load (a file bundle must load; a URL may come later), then watch/poll. */
  async start(): Promise<void> {
    const first = await this.reload(true);
    if (!first.ok && this.cfg.bundle.file !== undefined) {
      throw new ConfigError(this.loaded.file, [{ keyPath: '/policy/bundle/file', problem: first.error }]);
    }
    this.timer = setInterval(() => void this.reload(false), this.cfg.bundle.poll_interval_ms);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Fetches and, when it changed (or `force`), activates the bundle. Concurrent calls share one run. */
  reload(force = false): Promise<ReloadResult> {
    this.running ??= this.doReload(force).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async doReload(force: boolean): Promise<ReloadResult> {
    try {
      const archive = await this.fetch(force);
      if (!archive) return { ok: true, revision: this.engine.revision ?? '', changed: false };
      const digest = createHash('sha256').update(archive).digest('hex');
      if (!force && digest === this.lastDigest) {
        // The active bundle is back (a rejected one was replaced by it): nothing is wrong any more.
        this.lastError = undefined;
        this.rejectedDigest = '';
        return { ok: true, revision: this.engine.revision ?? '', changed: false };
      }
      if (!force && digest === this.rejectedDigest) return { ok: false, error: this.lastError ?? 'bundle rejected' };
      let bundle: PolicyBundle;
      try {
        bundle = await parseBundle(archive, this.verification, this.limits);
        await this.engine.activate(bundle);
      } catch (err) {
        this.rejectedDigest = digest;
        throw err;
      }
      this.rejectedDigest = '';
      this.lastDigest = digest;
      this.activations += 1;
      this.lastError = undefined;
      this.log.info({ event: 'bundle_activated', revision: bundle.revision }, 'policy bundle activated');
      this.metrics.event('bundle_activated');
      for (const l of this.listeners) l(bundle.revision);
      return { ok: true, revision: bundle.revision, changed: true };
    } catch (err) {
      const error = errorMessage(err);
      this.failures += 1;
      this.lastError = error;
      this.metrics.event('bundle_rejected');
      const active = this.engine.revision;
      this.log.warn(
        { event: 'bundle_rejected', err: error, active_revision: active ?? null },
        active !== undefined ? `policy bundle rejected; keeping the last good one (${active})` : 'policy bundle rejected; there is no good one to keep: no bundle is active',
      );
      return { ok: false, error };
    }
  }

  private async fetch(force: boolean): Promise<Buffer | undefined> {
    const b = this.cfg.bundle;
    if (b.file !== undefined) {
      const path = resolveConfigPath(this.loaded, b.file);
      const info = await stat(path);
      const stamp = `${info.mtimeMs}:${info.size}`;
      if (!force && stamp === this.fileStamp) return undefined;
      if (info.size > b.max_bytes) throw new Error(`bundle larger than ${b.max_bytes} bytes`);
      const buf = await readFile(path);
      this.fileStamp = stamp;
      return buf;
    }
    const res = await fetch(b.url!, {
      headers: force || this.etag === '' ? {} : { 'if-none-match': this.etag },
      signal: AbortSignal.timeout(b.timeout_ms),
      redirect: 'error',
    });
    this.metrics.call('bundle', res.status === 200 || res.status === 304);
    if (res.status === 304) return undefined;
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`bundle download answered ${res.status}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > b.max_bytes) {
      await res.body?.cancel();
      throw new Error(`bundle larger than ${b.max_bytes} bytes`);
    }
    const buf = await readCapped(res, b.max_bytes);
    this.etag = res.headers.get('etag') ?? '';
    return buf;
  }
}

/** The body, refused as soon as more than `max` bytes arrived (a missing or lying content-length bounds nothing). */
async function readCapped(res: Response, max: number): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body?.getReader();
  for (;;) {
    const next = await reader?.read();
    if (!next || next.done) break;
    const chunk = next.value as Uint8Array;
    total += chunk.length;
    if (total > max) {
      await reader!.cancel().catch(() => undefined);
      throw new Error(`bundle larger than ${max} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
