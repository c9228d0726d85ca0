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

/** What the recorder needs of the engine (PolicyEngine). */
export interface MaskEvaluator {
  hasEntrypoint(entrypoint: string): boolean;
  evaluateEntrypoint(entrypoint: string, input: unknown): unknown;
}

export interface RecorderOptions {
  /** The policy's decision path: the event's `path`. */
  readonly decisionPath: string;
  readonly labels: Record<string, string>;
  readonly scrubber: Scrubber;
  readonly sinks: readonly DecisionLogSink[];
  readonly count: SinkCounter;
  /**
   * The policy input of a request (the pipeline's builder): for a Check the policy did not see
   * (an authentication denial), the mask still applies to its audit record, evaluated with an
   * event that has this input and no result.
   */
  readonly toInput?: (req: RequestView, identity: Decision['identity']) => Record<string, unknown>;
}

/** The record without any field a mask could have hidden: what a failing mask leaves. */
export function failClosed(rec: Record<string, unknown>): Record<string, unknown> {
  const closed: Record<string, unknown> = { ...rec, mask_error: true };
  for (const f of MASKABLE_FIELDS) delete closed[f];
  return closed;
}

export class DecisionRecorder {
  private maskFailing = false;

  constructor(
    private readonly engine: MaskEvaluator | undefined,
    private readonly opts: RecorderOptions,
    private readonly log: Logger,
  ) {}

  /** The audit record of a decision, masked; its event goes to the sinks. Never throws. */
  checkRecord(req: RequestView, d: Decision, durationMs: number, traceId: string | undefined, at?: Date): Record<string, unknown> {
    const rec = checkRecord(req, d, durationMs, traceId);
    // No sink and no mask (the default): the event would be built for nobody (nor its time).
    if (this.opts.sinks.length === 0 && !this.engine?.hasEntrypoint(MASK_ENTRYPOINT)) return rec;
    const now = at ?? new Date();
    const ev = d.evaluation;
    if (!ev) return this.maskOnly(req, d, rec, traceId, now);
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
    const rules = this.rules(event);
    if (!rules) {
      for (const s of this.opts.sinks) this.opts.count(s.name, 'dropped', 1);
      return failClosed(rec);
    }
    if (this.opts.sinks.length > 0) this.emit(event, rules);
    return maskCheckRecord(rec, rules);
  }

  /** A Check without a policy evaluation: no event, but the bundle's mask on its audit record. */
  private maskOnly(req: RequestView, d: Decision, rec: Record<string, unknown>, traceId: string | undefined, now: Date): Record<string, unknown> {
    if (!this.engine?.hasEntrypoint(MASK_ENTRYPOINT) || !this.opts.toInput) return rec;
    let input: Record<string, unknown>;
    try {
      input = this.opts.toInput(req, d.identity);
    } catch {
      // A request the input builder cannot read: the mask cannot say what to hide.
      return failClosed(rec);
    }
    const event = decisionEvent({
      labels: this.opts.labels,
      decisionId: rec.decision_id as string,
      traceId,
      revision: undefined,
      path: this.opts.decisionPath,
      input,
      result: undefined,
      time: now,
      metrics: {},
    });
    const rules = this.rules(event);
    return rules ? maskCheckRecord(rec, rules) : failClosed(rec);
  }

  /** The mask rules for an event (none without a mask); undefined when the mask fails. */
  private rules(event: DecisionEvent): MaskRule[] | undefined {
    try {
      const rules = this.engine ? parseMaskRules(this.engine.evaluateEntrypoint(MASK_ENTRYPOINT, event)) : [];
      this.maskFailing = false;
      return rules;
    } catch (err) {
      if (!this.maskFailing) this.log.warn({ event: 'decision_log_mask_failed', err: errorMessage(err) }, 'system.log.mask failed: decision-log event dropped, audit record without request fields');
      this.maskFailing = true;
      return undefined;
    }
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
