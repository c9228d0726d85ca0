// The file sink: one JSON event per line, appended (mode 0600: events hold request data), written
// off the event loop's critical path by one async writer. Before a write would take the file past
// max_bytes it is rotated: path -> path.1 -> ... -> path.<max_files> (the oldest is overwritten).
// Events waiting for the disk are bounded by buffer_bytes (the oldest are dropped, counted); an
// event larger than max_bytes by itself is dropped; a failed write drops its batch, is counted
// and logged once per failing run.
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import type { Logger } from '../logger.js';
import { errorMessage } from '../../lib/errors.js';
import type { DecisionEvent } from './event.js';
import type { DecisionLogSink, SinkCounter } from './sink.js';

export interface FileSinkOptions {
  readonly path: string;
  readonly maxBytes: number;
  readonly maxFiles: number;
  readonly bufferBytes: number;
}

// One write takes at most this much of the queue.
const BATCH_BYTES = 1024 * 1024;

export class FileSink implements DecisionLogSink {
  readonly name = 'file';
  private readonly queue: { line: string; bytes: number }[] = [];
  private queued = 0;
  private handle: FileHandle | undefined;
  private size = 0;
  private writing: Promise<void> | undefined;
  private failing = false;
  private closed = false;

  constructor(
    private readonly opts: FileSinkOptions,
    private readonly log: Logger,
    private readonly count: SinkCounter,
  ) {}

  write(event: DecisionEvent): void {
    if (this.closed) return;
    const line = `${JSON.stringify(event)}\n`;
    const bytes = Buffer.byteLength(line);
    if (bytes > this.opts.maxBytes) {
      this.count('file', 'dropped', 1);
      return;
    }
    this.queue.push({ line, bytes });
    this.queued += bytes;
    let dropped = 0;
    while (this.queued > this.opts.bufferBytes && this.queue.length > 1) {
      this.queued -= this.queue.shift()!.bytes;
      dropped++;
    }
    if (dropped > 0) this.count('file', 'dropped', dropped);
    this.writing ??= this.drain().finally(() => (this.writing = undefined));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.writing;
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      let bytes = 0;
      let n = 0;
      while (n < this.queue.length && (n === 0 || bytes + this.queue[n]!.bytes <= Math.min(BATCH_BYTES, this.opts.maxBytes))) bytes += this.queue[n++]!.bytes;
      const batch = this.queue.splice(0, n);
      this.queued -= bytes;
      try {
        await this.append(batch.map((b) => b.line).join(''), bytes);
        this.count('file', 'sent', n);
        this.failing = false;
      } catch (err) {
        this.count('file', 'failed', 1);
        this.count('file', 'dropped', n);
        await this.handle?.close().catch(() => undefined);
        this.handle = undefined;
        if (!this.failing) this.log.warn({ event: 'decision_log_file_failed', err: errorMessage(err) }, 'decision log file write failed; events dropped');
        this.failing = true;
      }
    }
  }

  private async append(data: string, bytes: number): Promise<void> {
    if (!this.handle) {
      this.handle = await open(this.opts.path, 'a', 0o600);
      this.size = (await this.handle.stat()).size;
    }
    if (this.size > 0 && this.size + bytes > this.opts.maxBytes) await this.rotate();
    await this.handle.write(data);
    this.size += bytes;
  }

  private async rotate(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
    const p = this.opts.path;
    for (let i = this.opts.maxFiles - 1; i >= 1; i--) {
      if (await stat(`${p}.${i}`).then(() => true, () => false)) await rename(`${p}.${i}`, `${p}.${i + 1}`);
    }
    await rename(p, `${p}.1`);
    this.handle = await open(p, 'a', 0o600);
    this.size = 0;
  }
}
