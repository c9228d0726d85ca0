// A deny list: lookups on the local mirror (synchronous, on the hot path), changes announced to
// listeners (caches that must not outlive a revocation), and expired entries swept every minute.
// Two implementations: memory.ts (one process) and redis.ts (shared by every instance).
import type { Identity } from '../identity.js';
import type { DenyChange, DenyEntry, DenyKind } from './entry.js';
import { Mirror } from './mirror.js';

type Listener = (change: DenyChange) => void;

const PRUNE_INTERVAL_MS = 60_000;

export abstract class DenyList {
  protected readonly mirror = new Mirror();
  private readonly listeners: Listener[] = [];
  private pruneTimer: NodeJS.Timeout | undefined;

  constructor(protected readonly now: () => number = Date.now) {}

  /** Sweeps expired entries out of the mirror (and, for shared lists, out of the store). */
  protected startPruning(onPruned: (keys: string[]) => Promise<void> = () => Promise.resolve()): void {
    this.pruneTimer = setInterval(() => {
      const gone = this.mirror.prune(Math.floor(this.now() / 1000));
      if (gone.length > 0) void onPruned(gone).catch(() => undefined);
    }, PRUNE_INTERVAL_MS);
    this.pruneTimer.unref();
  }

  protected stopPruning(): void {
    clearInterval(this.pruneTimer);
  }

  /** Whether the list is loaded and current: with Redis, while its connections are up. */
  abstract get ready(): boolean;
  /** Whether the list was loaded at least once (lookups then answer from the mirror). */
  abstract get loaded(): boolean;
  abstract start(): Promise<void>;
  abstract add(entry: DenyEntry): Promise<void>;
  abstract remove(kind: DenyKind, value: string): Promise<boolean>;
  abstract close(): Promise<void>;

  /** Adds a listener; the returned function removes it (a reloaded generation lets go of its caches). */
  onChange(l: Listener): () => void {
    this.listeners.push(l);
    return () => {
      const i = this.listeners.indexOf(l);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  protected emit(change: DenyChange): void {
    for (const l of this.listeners) l(change);
  }

  list(): DenyEntry[] {
    return this.mirror.list(Math.floor(this.now() / 1000));
  }

  /** Entries held in memory, including expired ones not yet swept. */
  get stored(): number {
    return this.mirror.size;
  }

  sourceBlocked(address: string | undefined): boolean {
    return address !== undefined && address !== '' && this.mirror.sourceBlocked(address, Math.floor(this.now() / 1000));
  }

  /** The first deny rule that matches the identity, if any. */
  revoked(id: Identity): DenyKind | undefined {
    const n = Math.floor(this.now() / 1000);
    if (id.jti !== undefined && this.mirror.has('jti', id.jti, n)) return 'jti';
    if (this.mirror.has('subject', id.subject, n)) return 'subject';
    if (id.workload?.keyId !== undefined && this.mirror.has('api_key', id.workload.keyId, n)) return 'api_key';
    return undefined;
  }
}
