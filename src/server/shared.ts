// Stateful components that outlive a config generation when the settings they come from did not
// change: the Redis connections, the deny list, the rate-limit buckets, the policy stage. A reload
// that leaves `revocation` alone must not drop the in-memory deny list, nor refill every bucket.
// Each generation leases what it uses under a key (the settings it was built from); a resource is
// closed when the last generation holding it is closed.

export interface Opened<T> {
  readonly value: T;
  close(): Promise<void>;
}

export interface Lease<T> {
  readonly value: T;
  /** Gives the lease back; the last one closes the resource. Idempotent. */
  release(): Promise<void>;
}

interface Entry {
  readonly opened: Promise<Opened<unknown>>;
  refs: number;
}

export class SharedResources {
  private readonly entries = new Map<string, Entry>();

  /** The resource under `key`, opened now if no generation holds one. A failed open is not kept. */
  async lease<T>(key: string, open: () => Promise<Opened<T>>): Promise<Lease<T>> {
    let entry = this.entries.get(key);
    if (!entry) {
      const created: Entry = { opened: open(), refs: 0 };
      entry = created;
      this.entries.set(key, created);
      created.opened.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
    }
    entry.refs += 1;
    const held = entry;
    let opened: Opened<unknown>;
    try {
      opened = await held.opened;
    } catch (err) {
      held.refs -= 1;
      throw err;
    }
    let released = false;
    return {
      value: opened.value as T,
      release: async () => {
        if (released) return;
        released = true;
        held.refs -= 1;
        if (held.refs > 0) return;
        if (this.entries.get(key) === held) this.entries.delete(key);
        await opened.close();
      },
    };
  }

  /** How many resources are open (tests: nothing is left behind after the last generation). */
  get size(): number {
    return this.entries.size;
  }
}

/** A stable key from the settings a resource is built from (object keys in any order). */
export function settingsKey(kind: string, ...parts: unknown[]): string {
  return `${kind}:${JSON.stringify(parts, (_k, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v))}`;
}
