// Joins a Check's audit record and its decision-log event: both carry the same decision_id, and
// the bundle's system.log.mask (evaluated once, with the unmasked event as input, as OPA does)
// applies to both. Only decisions where a policy ran have an event (as in OPA: one event per
// evaluation); the audit record is written for every Check.
// A mask that fails (evaluation error or malformed rule list) fails closed: the event is dropped
// (OPA drops it too) and the audit record loses every field a mask could reach.
import type { Decision } from '../../check/decision.js';
import type { RequestView } from '../../envoy/request.js';
import { errorMessage } from '../../lib/errors.js';
import { MASKABLE_FIELDS, checkRecord, maskCheckRecord } from '../audit.js';
import type { Logger } from '../logger.js';
import { decisionEvent, type DecisionEvent } from './event.js';
import { MASK_ENTRYPOINT, applyMask, parseMaskRules, type MaskRule } from './mask.js';
import type { Scrubber } from './scrub.js';
import type { DecisionLogSink, SinkCounter } from './sink.js';

/** The engine's one method the recorder needs (PolicyEngine.evaluateEntrypoint). */
export interface MaskEvaluator {
  evaluateEntrypoint(entrypoint: string, input: unknown): unknown;
}

export interface RecorderOptions {
  /** The policy's decision path: the event's `path`. */
  readonly decisionPath: string;
  readonly labels: Record<string, string>;
  readonly scrubber: Scrubber;
  readonly sinks: readonly DecisionLogSink[];
  readonly count: SinkCounter;
}

export class DecisionRecorder {
  private maskFailing = false;

  constructor(
    private readonly engine: MaskEvaluator | undefined,
    private readonly opts: RecorderOptions,
    private readonly log: Logger,
  ) {}

  /** The audit record of a decision, masked; its event goes to the sinks. Never throws. */
  checkRecord(req: RequestView, d: Decision, durationMs: number, traceId: string | undefined, now = new Date()): Record<string, unknown> {
    const rec = checkRecord(req, d, durationMs, traceId);
    const ev = d.evaluation;
    if (!ev) return rec;
    const event = decisionEvent({
      labels: this.opts.labels,
      decisionId: rec.decision_id as string,
      traceId,
      revision: d.policyRevision,
      path: this.opts.decisionPath,
      input: ev.input,
      result: ev.result,
      time: now,
      metrics: { timer_rego_query_eval_ns: ev.evalNs, timer_server_handler_ns: Math.round(durationMs * 1e6) },
    });
    let rules: MaskRule[];
    try {
      rules = this.engine ? parseMaskRules(this.engine.evaluateEntrypoint(MASK_ENTRYPOINT, event)) : [];
      this.maskFailing = false;
    } catch (err) {
      if (!this.maskFailing) this.log.warn({ event: 'decision_log_mask_failed', err: errorMessage(err) }, 'system.log.mask failed: decision-log event dropped, audit record without request fields');
      this.maskFailing = true;
      for (const s of this.opts.sinks) this.opts.count(s.name, 'dropped', 1);
      const closed: Record<string, unknown> = { ...rec, mask_error: true };
      for (const f of MASKABLE_FIELDS) delete closed[f];
      return closed;
    }
    if (this.opts.sinks.length > 0) this.emit(event, rules);
    return maskCheckRecord(rec, rules);
  }

  private emit(event: DecisionEvent, rules: readonly MaskRule[]): void {
    try {
      applyMask(event, rules);
      this.opts.scrubber.scrub(event);
    } catch (err) {
      // e.g. a value structuredClone cannot copy: no event rather than an unmasked one.
      for (const s of this.opts.sinks) this.opts.count(s.name, 'failed', 1);
      this.log.warn({ event: 'decision_log_failed', err: errorMessage(err) }, 'decision-log event could not be masked; dropped');
      return;
    }
    for (const s of this.opts.sinks) {
      try {
        s.write(event);
      } catch {
        this.opts.count(s.name, 'failed', 1);
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.opts.sinks.map((s) => s.close()));
  }
}
