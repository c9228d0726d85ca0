// Where API key digest entries live: a key file (loaded at start) and/or Redis (looked up per
// request, compiled entries cached briefly). Entries are compiled once: restrictions become sets
// and a BlockList, nothing is parsed per request.
import type { BlockList } from 'node:net';
import { blockListOf, parseCidr, type Cidr } from '../lib/cidr.js';
import { Ajv } from 'ajv';
import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { parse as parseYaml } from 'yaml';
import { stat } from 'node:fs/promises';
import { readReferencedFile, resolveConfigPath } from '../config/files.js';
import type { LoadedConfig } from '../config/loader.js';
import { ApiKeyEntry, ApiKeyFile, type ApiKeyEntryConfig } from '../config/schema.js';
import { ConfigError, UnavailableError } from '../lib/errors.js';
import { IN_THREAD_MAX_BYTES, loadInParts, siblingModule } from '../lib/module-worker.js';
import type { Maybe } from '../lib/maybe.js';

export interface ApiKeyRecord {
  readonly id: string;
  readonly digest: string;
  readonly owner: string;
  /** Epoch seconds. */
  readonly expiresAt: number;
  readonly scopes: readonly string[];
  readonly disabled: boolean;
  readonly hosts?: ReadonlySet<string>;
  readonly paths?: readonly string[];
  readonly methods?: ReadonlySet<string>;
  readonly sources?: BlockList;
}

/** What the key-file worker (apikey-file-worker.ts) is given. */
export interface KeyFileJob {
  readonly file: string;
  readonly dir: string;
  readonly path: string;
}

export interface ApiKeyStore {
  /** The entry at once when it is in memory, else later; a failure is a rejection (lib/maybe.ts). */
  get(id: string): Maybe<ApiKeyRecord | undefined>;
}

const ajv = new Ajv({ allErrors: false, strict: true });
const validateFile = ajv.compile<{ keys: ApiKeyEntryConfig[] }>(ApiKeyFile);
const validateEntry = ajv.compile<ApiKeyEntryConfig>(ApiKeyEntry);

function compileCidrs(cidrs: readonly string[]): BlockList | string {
  const rules: Cidr[] = [];
  for (const c of cidrs) {
    const rule = parseCidr(c);
    if (typeof rule === 'string') return `invalid CIDR ${c}`;
    rules.push(rule);
  }
  return blockListOf(rules);
}

/** Compiles one entry; returns a problem string instead when the entry is unusable. */
export function compileEntry(e: ApiKeyEntryConfig): ApiKeyRecord | string {
  const expires = Date.parse(e.expires_at);
  if (Number.isNaN(expires)) return `expires_at is not an RFC 3339 time`;
  const r = e.restrictions;
  const sources = r?.source_cidrs ? compileCidrs(r.source_cidrs) : undefined;
  if (typeof sources === 'string') return sources;
  return Object.freeze({
    id: e.id,
    digest: e.digest,
    owner: e.owner,
    expiresAt: Math.floor(expires / 1000),
    scopes: e.scopes ?? [],
    disabled: e.disabled ?? false,
    ...(r?.hosts ? { hosts: new Set(r.hosts.map((h) => h.toLowerCase())) } : {}),
    ...(r?.paths ? { paths: r.paths.map((p) => p.replace(/\/+$/, '')) } : {}),
    ...(r?.methods ? { methods: new Set(r.methods) } : {}),
    ...(sources ? { sources } : {}),
  });
}

/** The document when `text` is a JSON object, else undefined (then it is read as YAML). */
function parseJsonObject(text: string): unknown {
  if (!text.trimStart().startsWith('{')) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined; // a YAML flow mapping, e.g. {keys: []}
  }
}

const KEY_FILE_PATH = '/authentication/api_keys/file';
const KEY_FILE_MAX_BYTES = 16 * 1024 * 1024;
/** The key-file worker's heap cap: 100,000 keys in JSON (15 MB) fit; YAML takes several KB per entry. The shipped pod (512 Mi) has room for it beside the service. */
export const KEY_FILE_HEAP_MB = 256;

/** The key file's records by id: read, parsed (JSON natively, else YAML), validated and compiled. Runs in the key-file worker. */
export async function readApiKeyFile(loaded: Pick<LoadedConfig, 'file' | 'dir'>, path: string): Promise<Map<string, ApiKeyRecord>> {
  const text = (await readReferencedFile(loaded, KEY_FILE_PATH, path, { maxBytes: KEY_FILE_MAX_BYTES })).toString('utf8');
  const fail = (problem: string): never => {
    throw new ConfigError(loaded.file, [{ keyPath: KEY_FILE_PATH, problem: `${path}: ${problem}` }]);
  };
  let data: unknown;
  try {
    // JSON (what large key sets are generated as) is parsed natively: the YAML parser builds a
    // document tree first, several KB per entry, which at 50,000 keys held hundreds of MB.
    data = parseJsonObject(text) ?? parseYaml(text);
  } catch {
    fail('not valid YAML/JSON');
  }
  if (!validateFile(data)) {
    const e = validateFile.errors?.[0];
    return fail(`${e?.instancePath || '/'} ${e?.message ?? 'invalid'}`);
  }
  const byId = new Map<string, ApiKeyRecord>();
  data.keys.forEach((entry, i) => {
    const rec = compileEntry(entry);
    if (typeof rec === 'string') fail(`/keys/${i}: ${rec}`);
    else if (byId.has(rec.id)) fail(`/keys/${i}/id: duplicate id ${rec.id}`);
    else byId.set(rec.id, rec);
  });
  return byId;
}

export class FileApiKeyStore implements ApiKeyStore {
  private constructor(private readonly byId: ReadonlyMap<string, ApiKeyRecord>) {}

  /**
   * Reads a large key file in a worker thread (lib/module-worker.ts): with 50,000 keys in the
   * file a SIGHUP reload held the event loop 240-360 ms; here it takes their records 1,000 at a
   * time, one batch per turn of the event loop. A small file is read in-thread.
   */
  static async load(loaded: Pick<LoadedConfig, 'file' | 'dir'>, path: string, heapMb = KEY_FILE_HEAP_MB): Promise<FileApiKeyStore> {
    const size = await stat(resolveConfigPath(loaded, path)).then((s) => s.size, () => 0);
    if (size <= IN_THREAD_MAX_BYTES) return new FileApiKeyStore(await readApiKeyFile(loaded, path));
    const byId = new Map<string, ApiKeyRecord>();
    return loadInParts({
      module: siblingModule(import.meta.url, 'apikey-file-worker'),
      data: { file: loaded.file, dir: loaded.dir, path } satisfies KeyFileJob,
      heapMb,
      take: (part) => {
        // Structured clone drops the freeze; the Sets and the BlockList arrive whole.
        for (const [id, rec] of part as readonly (readonly [string, ApiKeyRecord])[]) byId.set(id, Object.freeze(rec));
      },
      done: () => new FileApiKeyStore(byId),
      outOfMemory: () => new ConfigError(loaded.file, [{ keyPath: KEY_FILE_PATH, problem: `${path}: too large: reading it needs more than ${heapMb} MB (large key sets: use JSON)` }]),
    });
  }

  get size(): number {
    return this.byId.size;
  }

  get(id: string): ApiKeyRecord | undefined {
    return this.byId.get(id);
  }
}

/** How long a Redis entry (found or not) is served from memory: a changed entry is seen within this time. */
const REDIS_ENTRY_TTL_MS = 5000;
/** Background refreshes gathered into one HMGET at most. */
const REFRESH_BATCH = 256;

/** A Redis entry as served: its JSON as read (null: none), and what it compiled to (undefined: nobody). */
interface CachedEntry {
  readonly raw: string | null;
  readonly rec: ApiKeyRecord | undefined;
}

interface QueuedRefresh {
  resolve(rec: ApiKeyRecord | undefined): void;
  reject(err: unknown): void;
}

/**
 * Entries in the Redis hash `<prefix>apikeys`, field = key id, value = the entry as JSON, cached
 * for a short time (revocation itself goes through the deny list). An entry asked for in the last
 * quarter of its time is fetched again in the background while it is still served: a key in use
 * keeps its entry, and its requests never wait for Redis; no entry is served older than its time,
 * whatever Redis does meanwhile. The background fetches of a short while (a tenth of that quarter)
 * leave as one HMGET: alone, each was an ioredis command with its own socket write and read, some
 * 80 us of CPU (bench/NOTES.md item 23). One fetch per id at a time: misses share one too.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  private readonly cache: LRUCache<string, CachedEntry>;
  /** Fetches under way or queued, by id. */
  private readonly fetching = new Map<string, Promise<ApiKeyRecord | undefined>>();
  private readonly refreshBelowMs: number;
  /** How long a background fetch waits for others to leave with. */
  private readonly batchMs: number;
  /** Refreshes waiting for the batch, by id (an id is queued at most once: it is in `fetching` meanwhile). */
  private queued = new Map<string, QueuedRefresh>();
  private timer: NodeJS.Timeout | undefined;

  /** `ttlMs` and `now` (the entries' clock): tests only. */
  constructor(
    private readonly redis: Redis,
    private readonly hashKey: string,
    ttlMs = REDIS_ENTRY_TTL_MS,
    now?: () => number,
  ) {
    // The clock is read on every lookup: lru-cache otherwise keeps the time it read until a timer
    // clears it, so within one busy turn of the event loop an entry could be served past its time.
    this.cache = new LRUCache({ max: 10000, ttl: ttlMs, ttlResolution: 0, ...(now ? { perf: { now } } : {}) });
    this.refreshBelowMs = ttlMs / 4;
    this.batchMs = this.refreshBelowMs / 10;
  }

  get(id: string): Maybe<ApiKeyRecord | undefined> {
    const hit = this.cache.get(id);
    if (hit === undefined) {
      const under = this.fetching.get(id);
      if (under === undefined) return this.track(id, this.load(id));
      // Its entry left (run out, or evicted) while its refresh waits in the batch: send it now.
      if (this.queued.has(id)) this.refresh();
      return under;
    }
    const left = this.cache.getRemainingTTL(id);
    if (left <= this.refreshBelowMs && !this.fetching.has(id)) {
      // An entry about to run out is fetched at once, not after the batch's wait: the misses that
      // follow share that fetch. A failed refresh leaves the entry to run out its time; the misses
      // after it see the failure.
      this.track(id, left > this.batchMs ? this.queue(id) : this.load(id)).catch(() => undefined);
    }
    return hit.rec;
  }

  private track(id: string, p: Promise<ApiKeyRecord | undefined>): Promise<ApiKeyRecord | undefined> {
    const tracked = p.finally(() => this.fetching.delete(id));
    this.fetching.set(id, tracked);
    return tracked;
  }

  private async load(id: string): Promise<ApiKeyRecord | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.hget(this.hashKey, id);
    } catch (err) {
      throw unavailable(err);
    }
    return this.accept(id, raw);
  }

  private queue(id: string): Promise<ApiKeyRecord | undefined> {
    const p = new Promise<ApiKeyRecord | undefined>((resolve, reject) => this.queued.set(id, { resolve, reject }));
    if (this.queued.size >= REFRESH_BATCH) this.refresh();
    else this.timer ??= setTimeout(this.refresh, this.batchMs).unref();
    return p;
  }

  private readonly refresh = (): void => {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = [...this.queued];
    this.queued = new Map();
    const fail = (err: unknown): void => batch.forEach(([, q]) => q.reject(unavailable(err)));
    let sent: Promise<(string | null)[]>;
    try {
      sent = this.redis.hmget(this.hashKey, ...batch.map(([id]) => id));
    } catch (err) {
      fail(err);
      return;
    }
    // Each entry settles on its own: one that fails to compile cannot leave the others waiting.
    sent.then(
      (raws) =>
        batch.forEach(([id, q], i) => {
          try {
            q.resolve(this.accept(id, raws[i] ?? null));
          } catch (err) {
            q.reject(err);
          }
        }),
      fail,
    );
  };

  /** Compiles what Redis holds for `id` and serves it from now on; a refresh that reads what it read before keeps what that compiled to. */
  private accept(id: string, raw: string | null): ApiKeyRecord | undefined {
    const before = this.cache.peek(id);
    let rec: ApiKeyRecord | undefined;
    if (before !== undefined && before.raw === raw) rec = before.rec;
    else if (raw !== null) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        parsed = undefined;
      }
      const compiled = validateEntry(parsed) ? compileEntry(parsed) : 'invalid entry';
      // A corrupt entry authenticates nobody.
      rec = typeof compiled === 'string' ? undefined : compiled;
    }
    this.cache.set(id, { raw, rec });
    return rec;
  }
}

const unavailable = (err: unknown): UnavailableError => new UnavailableError('store_unavailable', 'API key store unavailable', { cause: err });
