// Thin gRPC adapter for envoy.service.auth.v3.Authorization/Check: translate in, run the pipeline
// under a deadline, translate out, log the decision. Failures never allow and never leak details.
// A call the caller resets stops at the pipeline's next stage and is logged "cancelled", never
// with the decision it did not receive.
import { status, type sendUnaryData, type ServiceError } from '@grpc/grpc-js';
import { grpcTraceparent } from './metadata.js';
import { ROOT_CONTEXT, SpanStatusCode, type Context, type Span } from '@opentelemetry/api';
import type { CheckPipeline } from '../check/pipeline.js';
import { checkCancelledRecord, checkErrorRecord, checkRecord, traceIdOf } from '../telemetry/audit.js';
import { activeTraceId, callerContext, NOOP_SPAN, serverSpanCall } from '../telemetry/tracing.js';
import type { Config } from '../config/schema.js';
import { toRequestView, type RequestView } from '../envoy/request.js';
import { toCheckResponse } from '../envoy/response.js';
import type { AuthorizationHandlers } from '../gen/envoy/service/auth/v3/Authorization.js';
import { budgetMs, withDeadline } from '../lib/deadline.js';
import { UnavailableError } from '../lib/errors.js';
import { writeInfo, type Logger } from '../telemetry/logger.js';
import { secondsSince, type Metrics } from '../telemetry/metrics.js';
import type { InFlight } from './inflight.js';
import { failClosed, type DecisionRecorder } from '../telemetry/decision-log/recorder.js';
import { callSignal } from './transport.js';
import { Stop, type StopSignal } from '../lib/stop.js';
import { isPromise, type Maybe } from '../lib/maybe.js';
import type { Decision } from '../check/decision.js';
import type { CheckResponse } from '../gen/envoy/service/auth/v3/CheckResponse.js';

export interface AuthzServiceDeps {
  readonly pipeline: CheckPipeline;
  readonly check: Config['check'];
  readonly log: Logger;
  readonly inflight: InFlight;
  readonly metrics?: Metrics;
  /** Masks audit records by the bundle's system.log.mask and writes decision logs; absent: plain audit records. */
  readonly recorder?: DecisionRecorder;
}

function asUnavailable(err: unknown): UnavailableError {
  return err instanceof UnavailableError ? err : new UnavailableError('internal', err instanceof Error ? err.message : 'unknown error');
}

/**
 * One Check call from its decision (or failure) to its answer, audit line and clean-up. A class:
 * one object per call where the handler's closures and async frames were several (the decision
 * usually comes back synchronously, and then nothing here makes a promise).
 */
class CheckExchange {
  /** Set by run(), inside the call's span. */
  private span: Span = NOOP_SPAN;
  private traceId: string | undefined;

  constructor(
    private readonly deps: AuthzServiceDeps,
    private readonly call: Parameters<AuthorizationHandlers['Check']>[0],
    private readonly callback: sendUnaryData<CheckResponse>,
    private readonly req: RequestView | undefined,
    private readonly started: number,
    /** What the pipeline may spend, ms from `started`. */
    private readonly budget: number,
    private readonly signal: StopSignal,
    /** The pipeline's stop, following the call's. */
    private readonly work: Stop,
    /** Ends the call's count in flight. */
    private readonly done: () => void,
  ) {}

  /** Decides and answers, in the call's span: what it returns settles when the call is done (the span ends then). */
  run(span: Span): Maybe<void> {
    this.span = span;
    this.traceId = traceIdFor(this.call, this.req);
    const req = this.req;
    if (!req) return this.failed(new UnavailableError('internal', 'CheckRequest could not be read'));
    let d: Maybe<Decision>;
    try {
      d = this.deps.pipeline.check(req, this.work);
      // What waits gets what is left of the budget.
      if (isPromise(d)) d = withDeadline(d, Math.max(0, this.budget - (performance.now() - this.started)), this.work);
    } catch (err) {
      return this.failed(err);
    }
    // Decided at once (the usual case): answered now, no promise. Else when it settles; the span
    // (tracing on) ends with that promise.
    if (!isPromise(d)) return this.decided(d);
    return d.then(
      (decision) => this.decided(decision),
      (err: unknown) => this.failed(err),
    );
  }

  private end(): void {
    this.work.detach();
    this.done();
  }

  decided(d: Decision): void {
    try {
      // Decided, but the caller is gone (reset, or its deadline answered): not a decision anyone received.
      if (this.signal.aborted) throw this.signal.reason;
      const { metrics, recorder, log } = this.deps;
      const req = this.req!;
      const reason = d.allowed ? (d.dryRunDenied ? 'dry_run_denied' : 'ok') : d.reason;
      if (this.span.isRecording()) this.span.setAttributes({
        'envoy_authz.route': d.route,
        'envoy_authz.allowed': d.allowed,
        'envoy_authz.reason': reason,
        ...(d.allowed ? {} : { 'envoy_authz.status': d.status }),
        ...(d.policyRevision !== undefined ? { 'envoy_authz.policy_revision': d.policyRevision } : {}),
        ...(d.decisionId !== undefined ? { 'envoy_authz.decision_id': d.decisionId } : {}),
        ...(d.identity ? { 'enduser.id': d.identity.subject, 'envoy_authz.auth_method': d.identity.method } : {}),
      });
      const durationMs = performance.now() - this.started;
      metrics?.decision(d.allowed ? 'allowed' : 'denied', reason, d.route, secondsSince(this.started));
      this.callback(null, toCheckResponse(d));
      // After the answer: the mask evaluation and decision-log sinks never delay it (and,
      // the answer being sent, nothing below may reach the catch that answers again).
      try {
        let record: Record<string, unknown>;
        try {
          record = recorder ? recorder.checkRecord(req, d, durationMs, this.traceId) : checkRecord(req, d, durationMs, this.traceId);
        } catch {
          // A recorder that fails leaves no field its mask could have hidden (fail closed).
          record = failClosed(checkRecord(req, d, durationMs, this.traceId));
        }
        writeInfo(log, record, d.allowed ? 'allowed' : 'denied');
      } catch {
        // The answer is sent: nothing here may reach the catch below, which would answer again.
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.end();
    }
  }

  failed(err: unknown): void {
    try {
      this.fail(err);
    } finally {
      this.end();
    }
  }

  /** No decision: the caller gets the failure answer first, which never depends on the span, log or metrics after it. */
  private fail(err: unknown): void {
    const u = asUnavailable(err);
    this.answerFailure(u);
    try {
      const { log, metrics } = this.deps;
      const { req, started, traceId, span } = this;
      span.setStatus({ code: SpanStatusCode.ERROR, message: u.code });
      if (span.isRecording()) span.setAttributes({ 'envoy_authz.reason': u.code });
      if (u.code === 'cancelled') log.info(checkCancelledRecord(req, performance.now() - started, traceId), 'cancelled');
      else log.warn(checkErrorRecord(req, u.code, u.message, performance.now() - started, traceId), 'no decision; failing closed');
      metrics?.checkError(u.code, secondsSince(started));
    } catch {
      // The answer is sent: nothing here may answer again (nor reject: the promise path has no catch after this).
    }
  }

  private answerFailure(u: UnavailableError): void {
    const { check } = this.deps;
    if (u.code === 'cancelled') return this.callback({ code: status.CANCELLED, details: 'cancelled' });
    if (check.on_error.mode === 'deny') {
      return this.callback(null, toCheckResponse({ allowed: false, route: 'error', status: check.on_error.deny_status, reason: u.code }));
    }
    const e: Partial<ServiceError> = {
      code: u.code === 'deadline_exceeded' ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE,
      details: 'authorization decision unavailable',
    };
    this.callback(e);
  }
}

/** The caller's trace context; one that cannot be read is no reason to fail the Check. */
function parentContext(call: Parameters<AuthorizationHandlers['Check']>[0], req: RequestView | undefined): Context {
  try {
    return callerContext(call.metadata, req?.headers);
  } catch {
    return ROOT_CONTEXT;
  }
}

/** The trace id for the audit record: the active span's, else the proxied request's, else the gRPC call's. */
function traceIdFor(call: Parameters<AuthorizationHandlers['Check']>[0], req: RequestView | undefined): string | undefined {
  try {
    return activeTraceId() ?? traceIdOf(req, req?.headers.has('traceparent') ? undefined : grpcTraceparent(call.metadata));
  } catch {
    return undefined;
  }
}

const runExchange = (x: CheckExchange, span: Span): Maybe<void> => x.run(span);

export function authorizationHandlers(deps: AuthzServiceDeps): AuthorizationHandlers {
  const { check, inflight } = deps;
  return {
    Check(call, callback) {
      const started = performance.now();
      // The budget counts from here: stages that answer at once spend it too.
      const budget = budgetMs(check.deadline_ms, call.getDeadline());
      const done = inflight.begin();
      let req: RequestView | undefined;
      try {
        req = toRequestView(call.request);
      } catch {
        req = undefined; // answered below as an internal error
      }
      // The pipeline's work stops when the call is reset or its deadline passes (ours or the caller's).
      const signal = callSignal(call);
      const work = new Stop();
      work.follow(signal);
      const x = new CheckExchange(deps, call, callback, req, started, budget, signal, work, done);
      void serverSpanCall('envoy-authz Check', parentContext(call, req), runExchange, x);
    },
  };
}
