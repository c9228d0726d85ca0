// A deny list of one process, not shared with other instances or workers. With a snapshot file it
// survives restarts: every change rewrites the file atomically (temporary file, fsync, rename),
// and a start loads it. A revocation that could not be written is refused, not half-applied.
import { open, readFile, rename } from 'node:fs/promises';
import { parseEntry, type DenyEntry, type DenyKind } from './entry.js';
import { DenyList } from './deny-list.js';

interface Snapshot {
  readonly version: 1;
  readonly entries: readonly DenyEntry[];
}

export class MemoryDenyList extends DenyList {
  /** Writes run one after another, each with the whole list as it is then. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    now?: () => number,
    private readonly snapshotFile?: string,
  ) {
    super(now);
  }

  get ready(): boolean {
    return true;
  }

  get loaded(): boolean {
    return true;
  }

  async start(): Promise<void> {
    if (this.snapshotFile !== undefined) this.mirror.replaceAll(await this.load(this.snapshotFile));
    this.startPruning(() => this.persist());
  }

  async add(entry: DenyEntry): Promise<void> {
    const before = this.mirror.get(entry.kind, entry.value);
    this.mirror.put(entry);
    try {
      await this.persist();
    } catch (err) {
      if (before) this.mirror.put(before);
      else this.mirror.delete(entry.kind, entry.value);
      throw err;
    }
    this.emit({ op: 'add', entry });
  }

  async remove(kind: DenyKind, value: string): Promise<boolean> {
    const before = this.mirror.get(kind, value);
    if (!before) return false;
    this.mirror.delete(kind, value);
    try {
      await this.persist();
    } catch (err) {
      this.mirror.put(before);
      throw err;
    }
    this.emit({ op: 'remove', entry: { kind, value, createdAt: 0 } });
    return true;
  }

  async close(): Promise<void> {
    this.stopPruning();
    await this.writing.catch(() => undefined);
  }

  private async load(file: string): Promise<DenyEntry[]> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      // The first start: nothing revoked yet.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new Error(`revocation.snapshot_file ${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    let snap: Partial<Snapshot>;
    try {
      snap = JSON.parse(text) as Partial<Snapshot>;
    } catch {
      throw new Error(`revocation.snapshot_file ${file}: not valid JSON; refusing to start with revocations lost`);
    }
    if (snap.version !== 1 || !Array.isArray(snap.entries)) throw new Error(`revocation.snapshot_file ${file}: not a deny-list snapshot (version 1)`);
    return snap.entries.flatMap((e) => parseEntry(JSON.stringify(e)) ?? []);
  }

  private persist(): Promise<void> {
    const file = this.snapshotFile;
    if (file === undefined) return Promise.resolve();
    const snap: Snapshot = { version: 1, entries: this.mirror.all() };
    const run = this.writing.catch(() => undefined).then(async () => {
      const tmp = `${file}.${process.pid}.tmp`;
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(`${JSON.stringify(snap)}\n`);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    });
    this.writing = run;
    return run;
  }
}
