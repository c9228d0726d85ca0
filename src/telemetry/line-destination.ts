// Where log lines go: stdout through pino's own destination (SonicBoom: asynchronous writes,
// flushed on exit, silent after EPIPE), set to hold Buffers. In its default string mode SonicBoom
// measures the text still waiting with Buffer.byteLength on every write, which flattens (copies) all
// of it: under load several lines wait behind each write(2), so every audit line made kilobytes of
// garbage, more the slower stdout drains. Held as Buffers, lines are joined once per write(2), and
// the audit line is written into its Buffer without a line string at all (logger.ts writeInfo).
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

/**
 * File descriptor `fd` as a ByteDestination (still SonicBoom: flushSync, events). Each write(2)
 * carries at most `maxWrite` bytes (whole lines): the log line cap, so that a pipe write stays
 * within PIPE_BUF (4096 bytes, written atomically) and cluster workers sharing stdout never
 * interleave inside a line.
 */
export function byteDestination(fd: number, maxWrite: number): Boom & ByteDestination {
  const boom = pino.destination({ dest: fd, contentMode: 'buffer', sync: false, minLength: 0, maxWrite });
  const writeBuffer = boom.write.bind(boom) as unknown as (b: Buffer) => boolean;
  // An instance property, so that pino's EPIPE handler (which replaces write with a no-op) still
  // silences every writer.
  const write = (line: string | Buffer): boolean => writeBuffer(typeof line === 'string' ? Buffer.from(line) : line);
  return Object.assign(boom, { write, [WRITES_BYTES]: true as const });
}

/**
 * The process's log destination: stdout as bytes; undefined (pino's default, process.stdout) when
 * something replaced process.stdout.write - a test runner capturing output - as pino itself decides.
 */
export function stdoutDestination(maxWrite: number): ByteDestination | undefined {
  const proto = (process.stdout.constructor as { prototype?: { write?: unknown } }).prototype;
  if (process.stdout.write !== proto?.write) return undefined;
  return byteDestination(process.stdout.fd ?? 1, maxWrite);
}
