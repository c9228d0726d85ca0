// A deny list of one process: lost on restart, not shared with other instances or workers.
import type { DenyEntry, DenyKind } from './entry.js';
import { DenyList } from './deny-list.js';

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
