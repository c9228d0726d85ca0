// The console sink (OPA's decision_logs.console): one line per decision through the service
// logger, so the logger's rules hold - every field redacted and cut at 256 characters, no line
// over 4 KB. An event whose line would still not fit loses its input, then its result, each
// replaced by {"truncated": true, "bytes": N} (the size of its JSON): decision_id, labels,
// bundles, erased/masked, timestamp and metrics always stay, so the line still joins the audit
// record. The file and service sinks keep the whole event.
import { MAX_LINE_BYTES, redact, type Logger } from '../logger.js';
import type { DecisionEvent } from './event.js';
import type { DecisionLogSink, SinkCounter } from './sink.js';

// What pino adds around the fields (level, time, service, msg, type): generous.
const ENVELOPE_BYTES = 200;
const BUDGET = MAX_LINE_BYTES - ENVELOPE_BYTES;

const size = (v: unknown): number => Buffer.byteLength(JSON.stringify(redact(v)) ?? '');

/** The event as it fits one log line (the same object when it fits). */
export function fitLine(event: DecisionEvent): DecisionEvent {
  if (size(event) <= BUDGET) return event;
  const out: DecisionEvent = { ...event };
  for (const part of ['input', 'result'] as const) {
    if (out[part] === undefined) continue;
    out[part] = { truncated: true, bytes: Buffer.byteLength(JSON.stringify(event[part]) ?? '') };
    if (size(out) <= BUDGET) return out;
  }
  return out;
}

export function consoleSink(log: Logger, count: SinkCounter): DecisionLogSink {
  return {
    name: 'console',
    write(event) {
      // OPA's console decision logs carry this type and message.
      log.info({ event: 'decision_log', type: 'openpolicyagent.org/decision_logs', ...fitLine(event) }, 'Decision Log');
      count('console', 'sent', 1);
    },
    close: () => Promise.resolve(),
  };
}
