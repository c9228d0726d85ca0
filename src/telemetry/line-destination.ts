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
 * Where writes cannot wait (nonBlockingWriter), the lines of one turn of the event loop are
 * written in place at its end (setImmediate), in one writev(2) per `maxWrite` bytes: one line a
 * write at low load, many at high load, without SonicBoom's thread-pool job per write. What the fd
 * does not take at once (a full pipe: EAGAIN), and every line after it until SonicBoom has written
 * them all, goes to SonicBoom, which waits the pipe out - in order, as before. flush, flushSync
 * (pino's on exit) and end write the turn's lines first.
 */
export function byteDestination(fd: number, maxWrite: number): FdDestination {
  const boom = pino.destination({ dest: fd, contentMode: 'buffer', sync: false, minLength: 0, maxWrite });
  const toBoom = boom.write.bind(boom) as unknown as (b: Buffer) => boolean;
  const direct = nonBlockingWriter(fd);
  const inPlace = direct !== undefined;
  const asBytes = (line: string | Buffer): Buffer => (typeof line === 'string' ? Buffer.from(line) : line);
  // An instance property, so that pino's EPIPE handler (which replaces write with a no-op) still
  // silences every writer.
  if (direct === undefined) return Object.assign(boom, { write: (line: string | Buffer): boolean => toBoom(asBytes(line)), inPlace, [WRITES_BYTES]: true as const });
  if (direct !== fd) boom.once('close', () => closeSync(direct));

  // Bytes handed to SonicBoom and not yet written by it; the lines of this turn, not yet written.
  let queued = 0;
  boom.on('write', (n: number) => (queued -= n));
  let turn: Buffer[] = [];
  let turnBytes = 0;
  let scheduled = false;
  const queue = (b: Buffer): void => {
    queued += b.length;
    toBoom(b);
  };
  const writeTurn = (): void => {
    const lines = turn;
    if (lines.length === 0) return;
    turn = [];
    turnBytes = 0;
    let written = 0;
    if (queued === 0) {
      try {
        written = writevSync(direct, lines);
      } catch {
        // EAGAIN (a full pipe) SonicBoom waits out; any other error it meets again and reports,
        // as it always has (pino: silent after EPIPE).
      }
    }
    for (const line of lines) {
      if (written >= line.length) written -= line.length;
      else {
        queue(written > 0 ? line.subarray(written) : line);
        written = 0;
      }
    }
  };
  const atTurnEnd = (): void => {
    scheduled = false;
    writeTurn();
  };
  const write = (line: string | Buffer): boolean => {
    const bytes = asBytes(line);
    if (turnBytes + bytes.length > maxWrite) writeTurn();
    turn.push(bytes);
    turnBytes += bytes.length;
    if (!scheduled) {
      scheduled = true;
      setImmediate(atTurnEnd);
    }
    return true;
  };
  const flush = boom.flush.bind(boom);
  const flushSync = boom.flushSync.bind(boom);
  const end = boom.end.bind(boom);
  return Object.assign(boom, {
    write,
    flush(cb?: (err?: Error) => unknown): void {
      writeTurn();
      flush(cb);
    },
    flushSync(): void {
      writeTurn();
      flushSync();
    },
    end(): void {
      writeTurn();
      end();
    },
    inPlace,
    [WRITES_BYTES]: true as const,
  });
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
