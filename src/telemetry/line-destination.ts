// Where log lines go: stdout through pino's own destination (SonicBoom: asynchronous writes,
// flushed on exit, silent after EPIPE), set to hold Buffers. In its default string mode SonicBoom
// measures the text still waiting with Buffer.byteLength on every write, which flattens (copies) all
// of it: under load several lines wait behind each write(2), so every audit line made kilobytes of
// garbage, more the slower stdout drains. Held as Buffers, lines are joined once per write(2), and
// the audit line is written into its Buffer without a line string at all (logger.ts writeInfo).
// Where a write(2) cannot wait (nonBlockingWriter), lines are written in place, on the event
// loop: SonicBoom's asynchronous write is a thread-pool job per write, and at 1,000 lines/s - one
// line each, nothing to join - that hand-off cost 55-65 us of CPU a line on one core against 10-20
// for the write itself (bench/NOTES.md item 21).
import { closeSync, constants, fstatSync, openSync, writevSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type DestinationStream } from 'pino';

const WRITES_BYTES = Symbol('line-destination.writesBytes');

/** A destination whose write() also takes a Buffer holding whole lines. */
export interface ByteDestination extends DestinationStream {
  write(line: string | Buffer): void;
  readonly [WRITES_BYTES]: true;
}

export function writesBytes(d: DestinationStream): d is ByteDestination {
  return (d as Partial<ByteDestination>)[WRITES_BYTES] === true;
}

type Boom = ReturnType<typeof pino.destination>;

/** A ByteDestination on a file descriptor; `inPlace`: whether it writes lines in place (nonBlockingWriter). */
export type FdDestination = Boom & ByteDestination & { readonly inPlace: boolean };

/**
 * A descriptor on which a write(2) to what `fd` names returns at once, never waiting for a reader
 * or a disk; undefined where there is none.
 * - A character device other than a terminal (/dev/null): `fd` itself.
 * - A pipe: the pipe opened again in non-blocking mode (/proc/self/fd), a file description of our
 *   own, on which a full pipe answers EAGAIN. Not `fd` itself: its mode is shared with every
 *   process that inherited it, and libuv makes a spawned child's stdio blocking (cluster.fork
 *   too), for the parent as well.
 * - A regular file (it can wait on its disk), a terminal (on its user), a socket (it cannot be
 *   opened again), or where /proc is missing: none.
 */
export function nonBlockingWriter(fd: number): number | undefined {
  try {
    const st = fstatSync(fd);
    if (st.isCharacterDevice()) return isatty(fd) ? undefined : fd;
    if (!st.isFIFO()) return undefined;
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
}

/**
 * File descriptor `fd` as a ByteDestination (still SonicBoom: flushSync, events). Each write(2)
 * carries at most `maxWrite` bytes (whole lines): the log line cap, so that a pipe write stays
 * within PIPE_BUF (4096 bytes, written atomically) and cluster workers sharing stdout never
 * interleave inside a line.
 *
 * Where writes cannot wait (nonBlockingWriter), SonicBoom writes nothing: the lines of one turn of
 * the event loop are written in place at its end (setImmediate), in one writev(2) per `maxWrite`
 * bytes - one line a write at low load, many at high load, without SonicBoom's thread-pool job per
 * write. Lines a full pipe refuses (EAGAIN) wait, in order, with every line after them, and are
 * tried again every RETRY_MS. flushSync (pino's, on exit) writes everything, waiting out a full
 * pipe; EPIPE makes every writer a no-op, as pino does for SonicBoom.
 */
export function byteDestination(fd: number, maxWrite: number): FdDestination {
  const boom = pino.destination({ dest: fd, contentMode: 'buffer', sync: false, minLength: 0, maxWrite });
  const direct = nonBlockingWriter(fd);
  const inPlace = direct !== undefined;
  const asBytes = (line: string | Buffer): Buffer => (typeof line === 'string' ? Buffer.from(line) : line);
  // An instance property, so that pino's EPIPE handler (which replaces write with a no-op) still
  // silences every writer.
  if (direct === undefined) {
    const toBoom = boom.write.bind(boom) as unknown as (b: Buffer) => boolean;
    return Object.assign(boom, { write: (line: string | Buffer): boolean => toBoom(asBytes(line)), inPlace, [WRITES_BYTES]: true as const });
  }
  if (direct !== fd) boom.once('close', () => closeSync(direct));
  const out = new InPlaceWriter(direct, maxWrite, (err) => {
    // EPIPE: silent from now on, as pino's handler makes SonicBoom; anything else is SonicBoom's error, as before.
    if (err.code === 'EPIPE') Object.assign(boom, { write: noop, end: noop, flushSync: noop, flush: noop, destroy: noop });
    else boom.emit('error', err);
  });
  const end = boom.end.bind(boom);
  return Object.assign(boom, {
    write: (line: string | Buffer): boolean => out.write(asBytes(line)),
    flush: (cb?: (err?: Error) => unknown): void => out.whenWritten(() => cb?.()),
    flushSync: (): void => out.writeAllSync(),
    end: (): void => out.whenWritten(end),
    inPlace,
    [WRITES_BYTES]: true as const,
  });
}

const noop = (): void => undefined;
/** How long lines a full pipe refused wait before the next try. */
const RETRY_MS = 10;

/** Lines written in place on a descriptor that never waits (see byteDestination). */
class InPlaceWriter {
  /** Lines not yet written, in order: this turn's, and any a full pipe refused. */
  private lines: Buffer[] = [];
  private bytes = 0;
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private waiters: (() => void)[] = [];
  private failed = false;

  constructor(
    private readonly fd: number,
    private readonly maxWrite: number,
    private readonly onError: (err: NodeJS.ErrnoException) => void,
  ) {}

  write(line: Buffer): boolean {
    if (this.failed) return true;
    // A turn over the cap goes out as it fills, in writes of whole lines within it.
    if (this.retry === undefined && this.lines.length > 0 && this.bytes + line.length > this.maxWrite) this.tryWrite();
    this.lines.push(line);
    this.bytes += line.length;
    if (this.retry === undefined && !this.scheduled) {
      this.scheduled = true;
      setImmediate(this.atTurnEnd);
    }
    return true;
  }

  /** `done` once every line given so far is written (or dropped after an error). */
  whenWritten(done: () => void): void {
    if (this.lines.length === 0) return done();
    this.waiters.push(done);
    if (this.retry === undefined && !this.scheduled) this.tryWrite();
  }

  /** Everything, now: a full pipe is waited out (on exit there is no event loop to wait with). */
  writeAllSync(): void {
    clearTimeout(this.retry);
    this.retry = undefined;
    const pause = new Int32Array(new SharedArrayBuffer(4));
    while (!this.writeSome()) Atomics.wait(pause, 0, 0, RETRY_MS);
  }

  private readonly atTurnEnd = (): void => {
    this.scheduled = false;
    if (this.retry === undefined) this.tryWrite();
  };

  private tryWrite(): void {
    if (this.writeSome()) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
      return;
    }
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.tryWrite();
    }, RETRY_MS);
  }

  /** Writes what the fd takes, in writes of whole lines within the cap; true when nothing is left. */
  private writeSome(): boolean {
    while (this.lines.length > 0) {
      let n = 0;
      let size = 0;
      while (n < this.lines.length && (n === 0 || size + this.lines[n]!.length <= this.maxWrite)) size += this.lines[n++]!.length;
      let written: number;
      try {
        written = writevSync(this.fd, n === this.lines.length ? this.lines : this.lines.slice(0, n));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EAGAIN') return false;
        this.failed = true;
        this.lines = [];
        this.bytes = 0;
        this.onError(e);
        return true;
      }
      this.bytes -= written;
      let k = 0;
      while (k < n && written >= this.lines[k]!.length) written -= this.lines[k++]!.length;
      this.lines.splice(0, k);
      // A write cut inside a line (not a pipe's, within PIPE_BUF): the rest of it goes first next.
      if (written > 0) this.lines[0] = this.lines[0]!.subarray(written);
    }
    return true;
  }
}

/**
 * The process's log destination: stdout as bytes; undefined (pino's default, process.stdout) when
 * something replaced process.stdout.write - a test runner capturing output - as pino itself decides.
 */
export function stdoutDestination(maxWrite: number): FdDestination | undefined {
  const proto = (process.stdout.constructor as { prototype?: { write?: unknown } }).prototype;
  if (process.stdout.write !== proto?.write) return undefined;
  return byteDestination(process.stdout.fd ?? 1, maxWrite);
}
