// A deny list shared through Redis: every change is written to a hash and announced on a
// channel; each instance keeps a mirror, loads the whole hash on (re)connect, and applies
// announcements as they arrive (well within a second).
import type { Redis } from 'ioredis';
import { parseEntry, type DenyEntry, type DenyKind } from './entry.js';
import { DenyList } from './deny-list.js';

interface Announcement {
  op: 'add' | 'remove';
  entry: DenyEntry;
}

export class RedisDenyList extends DenyList {
  private wasLoaded = false;
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

  get loaded(): boolean {
    return this.wasLoaded;
  }

  get ready(): boolean {
    return this.wasLoaded && this.redis.status === 'ready' && this.subscriber.status === 'ready';
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
    this.wasLoaded = true;
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
