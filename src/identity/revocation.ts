// Deny lists (REC-API-17, V-274844, V-274850): by token jti, subject, API key id and source CIDR.
// Lookups are local and synchronous on the hot path. With Redis, the lists are shared: every
// change is written to a hash and announced on a channel; each instance keeps a mirror, loads the
// whole hash on (re)connect, and applies announcements as they arrive (well within a second).
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import { parseApiKey } from '../authn/apikey-format.js';
import type { Identity } from './identity.js';

export const DENY_KINDS = ['jti', 'subject', 'api_key', 'cidr'] as const;
export type DenyKind = (typeof DENY_KINDS)[number];

export interface DenyEntry {
  readonly kind: DenyKind;
  readonly value: string;
  /** Epoch seconds; absent: until removed. */
  readonly expiresAt?: number;
  readonly reason?: string;
  readonly createdAt: number;
  readonly createdBy?: string;
}

const API_KEY_ID = /^[A-Za-z0-9]{12}$/;

/**
 * The value to store for what an admin sent: for `api_key`, a whole key (any prefix, valid
 * checksum) becomes its id, so the secret part is never stored, announced or logged.
 */
export function normalizeDenyValue(kind: DenyKind, value: string): string {
  if (kind !== 'api_key' || API_KEY_ID.test(value)) return value;
  const prefix = /^[a-z][a-z0-9]{1,15}(?=_)/.exec(value)?.[0];
  return (prefix !== undefined ? parseApiKey(value, prefix)?.id : undefined) ?? value;
}

/** Validates a (normalized) value for its kind; returns a problem, which never quotes the value, or undefined. */
export function denyValueProblem(kind: DenyKind, value: string): string | undefined {
  if (value === '' || value.length > 2048) return 'value must be 1..2048 characters';
  if (kind === 'api_key' && !API_KEY_ID.test(value)) return 'value must be an API key id (12 letters or digits) or a whole valid API key';
  if (kind === 'cidr') {
    const [net, len] = value.split('/');
    const max = net && isIPv4(net) ? 32 : net && isIPv6(net) ? 128 : -1;
    if (max < 0) return 'not an IP address or CIDR';
    if (len !== undefined && !(/^\d+$/.test(len) && Number(len) <= max)) return 'bad prefix length';
  }
  return undefined;
}

/** A change: one entry added or removed, or `reset` when the whole list was reloaded. */
export type DenyChange = { op: 'add' | 'remove'; entry: DenyEntry } | { op: 'reset' };
type Listener = (change: DenyChange) => void;

/** The local mirror: what every lookup reads. */
class Mirror {
  private entries = new Map<string, DenyEntry>();
  private cidrs = new BlockList();

  static key(kind: DenyKind, value: string): string {
    return `${kind}:${value}`;
  }

  replaceAll(entries: Iterable<DenyEntry>): void {
    this.entries = new Map([...entries].map((e) => [Mirror.key(e.kind, e.value), e]));
    this.rebuildCidrs();
  }

  put(e: DenyEntry): void {
    this.entries.set(Mirror.key(e.kind, e.value), e);
    if (e.kind === 'cidr') this.rebuildCidrs();
  }

  delete(kind: DenyKind, value: string): boolean {
    const had = this.entries.delete(Mirror.key(kind, value));
    if (had && kind === 'cidr') this.rebuildCidrs();
    return had;
  }

  // BlockList cannot remove rules, so it is rebuilt on CIDR changes (rare, admin-driven).
  private rebuildCidrs(): void {
    const list = new BlockList();
    for (const e of this.entries.values()) {
      if (e.kind !== 'cidr') continue;
      const [net, len] = e.value.split('/');
      const type = isIPv4(net!) ? 'ipv4' : 'ipv6';
      list.addSubnet(net!, len === undefined ? (type === 'ipv4' ? 32 : 128) : Number(len), type);
    }
    this.cidrs = list;
  }

  has(kind: DenyKind, value: string, nowS: number): boolean {
    const e = this.entries.get(Mirror.key(kind, value));
    return e !== undefined && (e.expiresAt === undefined || e.expiresAt > nowS);
  }

  sourceBlocked(address: string, nowS: number): boolean {
    if (!this.cidrs.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')) return false;
    // A matching rule may have expired; confirm against the live entries.
    for (const e of this.entries.values()) {
      if (e.kind !== 'cidr' || (e.expiresAt !== undefined && e.expiresAt <= nowS)) continue;
      const [net, len] = e.value.split('/');
      const type = isIPv4(net!) ? 'ipv4' : 'ipv6';
      const one = new BlockList();
      one.addSubnet(net!, len === undefined ? (type === 'ipv4' ? 32 : 128) : Number(len), type);
      if (one.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')) return true;
    }
    return false;
  }

  list(nowS: number): DenyEntry[] {
    return [...this.entries.values()].filter((e) => e.expiresAt === undefined || e.expiresAt > nowS);
  }

  /** Removes expired entries; returns their keys. */
  prune(nowS: number): string[] {
    const gone: string[] = [];
    for (const [k, e] of this.entries) {
      if (e.expiresAt !== undefined && e.expiresAt <= nowS) {
        this.entries.delete(k);
        gone.push(k);
      }
    }
    if (gone.some((k) => k.startsWith('cidr:'))) this.rebuildCidrs();
    return gone;
  }
}

/** How often expired entries are swept out (lookups ignore them before that anyway). */
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

  /** Whether the list is loaded and current (readiness). */
  abstract get ready(): boolean;
  abstract start(): Promise<void>;
  abstract add(entry: DenyEntry): Promise<void>;
  abstract remove(kind: DenyKind, value: string): Promise<boolean>;
  abstract close(): Promise<void>;

  onChange(l: Listener): void {
    this.listeners.push(l);
  }

  protected emit(change: DenyChange): void {
    for (const l of this.listeners) l(change);
  }

  list(): DenyEntry[] {
    return this.mirror.list(Math.floor(this.now() / 1000));
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

export class MemoryDenyList extends DenyList {
  get ready(): boolean {
    return true;
  }

  start(): Promise<void> {
    this.startPruning();
    return Promise.resolve();
  }

  add(entry: DenyEntry): Promise<void> {
    this.mirror.put(entry);
    this.emit({ op: 'add', entry });
    return Promise.resolve();
  }

  remove(kind: DenyKind, value: string): Promise<boolean> {
    const had = this.mirror.delete(kind, value);
    if (had) this.emit({ op: 'remove', entry: { kind, value, createdAt: 0 } });
    return Promise.resolve(had);
  }

  close(): Promise<void> {
    this.stopPruning();
    return Promise.resolve();
  }
}

interface Announcement {
  op: 'add' | 'remove';
  entry: DenyEntry;
}

export class RedisDenyList extends DenyList {
  private loaded = false;
  private readonly hashKey: string;
  private readonly channel: string;

  /** `redis` for commands; `subscriber` is a second connection (a subscribed connection cannot run commands). */
  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    keyPrefix: string,
    now?: () => number,
  ) {
    super(now);
    this.hashKey = `${keyPrefix}deny`;
    this.channel = `${keyPrefix}deny:changes`;
  }

  get ready(): boolean {
    return this.loaded && this.redis.status === 'ready' && this.subscriber.status === 'ready';
  }

  async start(): Promise<void> {
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.channel) this.apply(message);
    });
    // After a reconnect, changes may have been missed: load everything again.
    this.subscriber.on('ready', () => void this.reload().catch(() => undefined));
    await this.subscriber.subscribe(this.channel);
    await this.reload();
    // Expired entries leave the shared hash too (every instance may do it; HDEL is idempotent).
    this.startPruning(async (keys) => {
      await this.redis.hdel(this.hashKey, ...keys);
    });
  }

  private async reload(): Promise<void> {
    const all = await this.redis.hgetall(this.hashKey);
    const entries: DenyEntry[] = [];
    for (const raw of Object.values(all)) {
      const e = parseEntry(raw);
      if (e) entries.push(e);
    }
    this.mirror.replaceAll(entries);
    this.loaded = true;
    this.emit({ op: 'reset' });
  }

  private apply(message: string): void {
    let a: Announcement;
    try {
      a = JSON.parse(message) as Announcement;
    } catch {
      return;
    }
    const e = parseEntry(JSON.stringify(a.entry));
    if (!e) return;
    if (a.op === 'add') this.mirror.put(e);
    else this.mirror.delete(e.kind, e.value);
    this.emit({ op: a.op, entry: e });
  }

  async add(entry: DenyEntry): Promise<void> {
    const field = `${entry.kind}:${entry.value}`;
    await this.redis.multi().hset(this.hashKey, field, JSON.stringify(entry)).publish(this.channel, JSON.stringify({ op: 'add', entry })).exec();
    // Our own announcement arrives too; applying it now makes the change visible here at once.
    this.mirror.put(entry);
    this.emit({ op: 'add', entry });
  }

  async remove(kind: DenyKind, value: string): Promise<boolean> {
    const entry: DenyEntry = { kind, value, createdAt: 0 };
    const res = await this.redis.multi().hdel(this.hashKey, `${kind}:${value}`).publish(this.channel, JSON.stringify({ op: 'remove', entry })).exec();
    const removed = Number(res?.[0]?.[1] ?? 0) > 0;
    this.mirror.delete(kind, value);
    this.emit({ op: 'remove', entry });
    return removed;
  }

  close(): Promise<void> {
    this.stopPruning();
    this.subscriber.disconnect();
    this.redis.disconnect();
    return Promise.resolve();
  }
}

function parseEntry(raw: string): DenyEntry | undefined {
  try {
    const e = JSON.parse(raw) as Partial<DenyEntry>;
    if (typeof e.kind !== 'string' || !(DENY_KINDS as readonly string[]).includes(e.kind) || typeof e.value !== 'string') return undefined;
    if (denyValueProblem(e.kind, e.value)) return undefined;
    return {
      kind: e.kind,
      value: e.value,
      createdAt: typeof e.createdAt === 'number' ? e.createdAt : 0,
      ...(typeof e.expiresAt === 'number' ? { expiresAt: e.expiresAt } : {}),
      ...(typeof e.reason === 'string' ? { reason: e.reason } : {}),
      ...(typeof e.createdBy === 'string' ? { createdBy: e.createdBy } : {}),
    };
  } catch {
    return undefined;
  }
}
