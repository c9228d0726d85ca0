// The service sink: OPA's decision-log upload API. Events wait in a bounded buffer (count and
// bytes; when full the oldest is dropped and counted) and are POSTed as gzipped JSON arrays
// (Content-Encoding: gzip, each body at most upload_size_limit_bytes) to <url><resource>, with
// an optional bearer token. After a success the next upload waits a random time between
// min_delay_seconds and max_delay_seconds (OPA's reporting); after a failure the events go back
// to the front of the buffer and the retry waits an exponential backoff from 100 ms capped at
// max_delay_seconds (OPA's util.DefaultBackoff). The Check never waits for any of this.
import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { errorMessage } from '../../lib/errors.js';
import type { Logger } from '../logger.js';
import type { DecisionEvent } from './event.js';
import type { DecisionLogSink, SinkCounter } from './sink.js';

const gzip = promisify(gzipCb);

export interface UploadOptions {
  /** <service url><resource>. */
  readonly endpoint: string;
  readonly token?: string;
  readonly timeoutMs: number;
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly maxEvents: number;
  readonly maxBufferBytes: number;
  readonly uploadLimitBytes: number;
  /** How long close() waits for the last upload (default 5 s). */
  readonly closeBudgetMs?: number;
}

/** OPA's minRetryDelay and util.DefaultBackoff (factor 1.6, jitter 0.1). */
const RETRY_BASE_MS = 100;
export function backoffMs(maxMs: number, retries: number, random = Math.random): number {
  const d = Math.min(maxMs, RETRY_BASE_MS * 1.6 ** retries);
  return Math.max(0, Math.min(maxMs, d * (1 + 0.1 * (2 * random() - 1))));
}

// JSON compresses well: a chunk is first sized at this many times the limit, then halved until its gzip fits.
const FIRST_GUESS_RATIO = 4;
// On close, one last upload is waited for at most this long (by default).
const CLOSE_BUDGET_MS = 5000;

interface Item {
  readonly json: string;
  readonly bytes: number;
}

export class Uploader implements DecisionLogSink {
  readonly name = 'service';
  private buffer: Item[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private retries = 0;
  private closed = false;

  constructor(
    private readonly opts: UploadOptions,
    private readonly log: Logger,
    private readonly count: SinkCounter,
  ) {}

  /** Starts the periodic uploads (not called by a dry run). */
  start(): void {
    this.schedule(this.successDelay());
  }

  write(event: DecisionEvent): void {
    if (this.closed) return;
    const json = JSON.stringify(event);
    this.push([{ json, bytes: Buffer.byteLength(json) }], false);
  }

  /** The number of events waiting. */
  get pending(): number {
    return this.buffer.length;
  }

  /** Uploads what is buffered now (the timer's job; tests call it to skip the wait). */
  flush(): Promise<void> {
    this.running ??= this.upload().finally(() => (this.running = undefined));
    return this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.running;
    // One last upload, waited for at most the close budget; what it cannot send is counted dropped
    // (also when it fails after close() has returned).
    if (this.buffer.length > 0) await Promise.race([this.upload(), new Promise((r) => setTimeout(r, this.opts.closeBudgetMs ?? CLOSE_BUDGET_MS).unref())]);
  }

  /** Adds items (at the front: a failed batch goes back first); drops the oldest beyond the bounds. */
  private push(items: Item[], front: boolean): void {
    this.buffer = front ? [...items, ...this.buffer] : (this.buffer.push(...items), this.buffer);
    for (const i of items) this.bytes += i.bytes;
    let dropped = 0;
    while (this.buffer.length > 0 && (this.buffer.length > this.opts.maxEvents || this.bytes > this.opts.maxBufferBytes)) {
      this.bytes -= this.buffer.shift()!.bytes;
      dropped++;
    }
    if (dropped > 0) this.count('service', 'dropped', dropped);
  }

  private successDelay(): number {
    const { minDelayMs: min, maxDelayMs: max } = this.opts;
    return min + (max - min) * Math.random();
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.flush(), ms);
    this.timer.unref();
  }

  /** One round: every buffered event, in bodies that fit the limit; reschedules itself. */
  private async upload(): Promise<void> {
    const items = this.buffer;
    this.buffer = [];
    this.bytes = 0;
    let sent = 0;
    try {
      while (sent < items.length) {
        const body = await this.nextBody(items, sent);
        if (body.gzipped === undefined) {
          // One event alone is over the limit: OPA drops it too.
          this.count('service', 'dropped', 1);
          sent += 1;
          continue;
        }
        await this.post(body.gzipped);
        this.count('service', 'sent', body.n);
        sent += body.n;
      }
      this.retries = 0;
      this.schedule(this.successDelay());
    } catch (err) {
      this.count('service', 'failed', 1);
      if (this.closed) {
        this.count('service', 'dropped', items.length - sent);
        return;
      }
      this.push(items.slice(sent), true);
      if (this.retries === 0) this.log.warn({ event: 'decision_log_upload_failed', err: errorMessage(err) }, 'decision log upload failed; retrying with backoff');
      this.schedule(backoffMs(this.opts.maxDelayMs, this.retries++));
    }
  }

  /** The largest run of items from `from` whose gzipped JSON array fits the limit. */
  private async nextBody(items: readonly Item[], from: number): Promise<{ n: number; gzipped?: Buffer }> {
    const limit = this.opts.uploadLimitBytes;
    let n = 0;
    let raw = 2;
    while (from + n < items.length && (n === 0 || raw + items[from + n]!.bytes + 1 <= limit * FIRST_GUESS_RATIO)) raw += items[from + n++]!.bytes + 1;
    for (;;) {
      const gz = await gzip(`[${items.slice(from, from + n).map((i) => i.json).join(',')}]`);
      if (gz.length <= limit) return { n, gzipped: gz };
      if (n === 1) return { n };
      n = Math.ceil(n / 2);
    }
  }

  private async post(body: Buffer): Promise<void> {
    const res = await fetch(this.opts.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
        ...(this.opts.token !== undefined ? { authorization: `Bearer ${this.opts.token}` } : {}),
      },
      body,
      signal: AbortSignal.timeout(this.opts.timeoutMs),
      redirect: 'error',
    });
    // The answer's body is not read (a receiver cannot make us buffer it).
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status >= 300) throw new Error(`HTTP ${res.status}`);
  }
}
