// telemetry/: this logger (with redact.ts), audit records, metrics, traces.
// The one place logging is configured, for every logger in the process: each record, child
// binding and message passes through the redaction layer (src/telemetry/redact.ts), and no line
// is longer than MAX_LINE_BYTES, whoever writes it.
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import { REDACTED, SENSITIVE_KEYS, cleanString, redact } from './redact.js';
import { stdoutDestination, writesBytes } from './line-destination.js';
import { JsonWriter } from '../lib/json-writer.js';

export { REDACTED, redact } from './redact.js';

/** The longest line written, newline included; a longer record is replaced by a short one. */
export const MAX_LINE_BYTES = 4096;
// Of the original line, at most this much is kept in the replacement (as a string field).
const HEAD_CHARS = 1024;

const redactRecord = (obj: Record<string, unknown>): Record<string, unknown> => redact(obj) as Record<string, unknown>;
// Child-logger bindings do not pass through formatters.log; pino applies serializers to them
// (and to the top level of records, already redacted by then: booleans stay booleans).
const censor = (v: unknown): unknown => (typeof v === 'boolean' ? v : REDACTED);
const serializers: Record<string, (v: unknown) => unknown> = Object.fromEntries([...SENSITIVE_KEYS].map((k) => [k, censor]));
serializers.msg = (m: unknown) => (typeof m === 'string' ? cleanString(m) : m);

/**
 * The line as written: itself when it fits (almost always: fields are already cut to 256
 * characters), else a record that keeps level, time, service, event and message, says
 * `truncated`, gives the original size and the start of the original line.
 */
export function capLine(line: string): string {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short lines need no byte count.
  if (line.length * 3 <= MAX_LINE_BYTES) return line;
  const bytes = Buffer.byteLength(line);
  if (bytes <= MAX_LINE_BYTES) return line;
  let rec: Record<string, unknown> = {};
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    // Not JSON (cannot happen with pino's serializer): keep only the head.
  }
  const kept: Record<string, unknown> = {};
  for (const k of ['level', 'time', 'service', 'worker', 'component', 'event', 'msg']) if (typeof rec[k] !== 'object' && rec[k] !== undefined) kept[k] = rec[k];
  for (let head = HEAD_CHARS; ; head >>= 1) {
    const out = `${JSON.stringify({ ...kept, truncated: true, line_bytes: bytes, head: line.slice(0, head) })}\n`;
    if (Buffer.byteLength(out) <= MAX_LINE_BYTES || head === 0) return out;
  }
}

// pino's isoTime, made once per millisecond: under load several lines share one.
let lastMs = -1;
let lastTime = '';
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastTime;
}

export function createLogger(level: LevelWithSilent, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'envoy-authz' },
      timestamp: isoTime,
      formatters: { level: (label) => ({ level: label }), log: redactRecord },
      serializers,
      hooks: { streamWrite: capLine },
    },
    destination ?? stdoutDestination(MAX_LINE_BYTES),
  );
}

// The audit line is written here, member by member, and copied out at its exact size: no line
// string and no record string per Check. A line over the cap takes the string path (capLine).
const line = new JsonWriter();

/**
 * `log.info(rec, msg)` for the one record written per request (the audit record), with the same
 * line as a result - level, time, the logger's bindings, the redacted record, msg; capped - but
 * serialized as JSON.stringify would (src/lib/json-writer.ts) instead of pino's per-key string
 * building, which made about 7 KB of garbage per Check for a 600-byte line. (One difference: a
 * lone UTF-16 surrogate is written escaped, as JSON.stringify does, where pino passes it raw and
 * the UTF-8 encoder replaces it.) On a byte destination (stdout, ./line-destination.ts) the line
 * is written straight into its Buffer. The tests compare the lines with pino's own, on both paths.
 */
export function writeInfo(log: Logger, rec: Record<string, unknown>, msg: string): void {
  if (!log.isLevelEnabled('info')) return;
  const l = log as unknown as Record<symbol, unknown>;
  const redacted = redactRecord(rec);
  const levelAndStart = (l[pino.symbols.lsCacheSym] as Record<number, string>)[log.levels.values.info!]!;
  const time = (l[pino.symbols.timeSym] as () => string)();
  const chindings = l[pino.symbols.chindingsSym] as string;
  const message = cleanString(msg);
  const end = l[pino.symbols.endSym] as string;
  const stream = l[pino.symbols.streamSym] as DestinationStream;
  if (writesBytes(stream)) {
    line.reset();
    line.raw(levelAndStart);
    line.raw(time);
    line.raw(chindings);
    line.members(redacted);
    line.raw(MSG_KEY);
    line.string(message);
    line.raw(end);
    if (line.length <= MAX_LINE_BYTES) {
      stream.write(line.take());
      return;
    }
  }
  const body = JSON.stringify(redacted);
  const fields = body.length > 2 ? `,${body.slice(1, -1)}` : '';
  stream.write(capLine(`${levelAndStart}${time}${chindings}${fields}${MSG_KEY}${JSON.stringify(message)}${end}`));
}

const MSG_KEY = ',"msg":';

export type { Logger };
