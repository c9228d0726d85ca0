// Thin gRPC adapter for envoy.service.auth.v3.Authorization/Check: translate in, run the pipeline
// under a deadline, translate out, log the decision. Failures never allow and never leak details.
import { status, type ServiceError } from '@grpc/grpc-js';
import type { CheckPipeline } from '../check/pipeline.js';
import type { Decision } from '../check/decision.js';
import { checkErrorRecord, checkRecord } from '../telemetry/audit.js';
import type { Config } from '../config/schema.js';
import { toRequestView, type RequestView } from '../envoy/request.js';
import { toCheckResponse } from '../envoy/response.js';
import type { AuthorizationHandlers } from '../gen/envoy/service/auth/v3/Authorization.js';
import { budgetMs, withDeadline } from '../lib/deadline.js';
import { UnavailableError } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { InFlight } from './inflight.js';

export interface AuthzServiceDeps {
  readonly pipeline: CheckPipeline;
  readonly check: Config['check'];
  readonly log: Logger;
  readonly inflight: InFlight;
  readonly metrics?: Metrics;
}

function asUnavailable(err: unknown): UnavailableError {
  return err instanceof UnavailableError ? err : new UnavailableError('internal', err instanceof Error ? err.message : 'unknown error');
}

export function authorizationHandlers(deps: AuthzServiceDeps): AuthorizationHandlers {
  const { pipeline, check, log, inflight, metrics } = deps;
  const seconds = (started: number): number => (performance.now() - started) / 1000;
  return {
    Check(call, callback) {
      const started = performance.now();
      const done = inflight.begin();
      const tp = call.metadata.get('traceparent')[0];
      const traceparent = typeof tp === 'string' ? tp : undefined;
      let req: RequestView | undefined;
      const decide = async (): Promise<Decision> => {
        req = toRequestView(call.request);
        return pipeline.check(req);
      };
      withDeadline(decide(), budgetMs(check.deadline_ms, call.getDeadline()))
        .then(
          (d) => {
            if (req) log.info(checkRecord(req, d, performance.now() - started, traceparent), d.allowed ? 'allowed' : 'denied');
            metrics?.decision(d.allowed ? 'allowed' : 'denied', d.allowed ? (d.dryRunDenied ? 'dry_run_denied' : 'ok') : d.reason, d.route, seconds(started));
            callback(null, toCheckResponse(d));
          },
          (err: unknown) => {
            const u = asUnavailable(err);
            log.warn(checkErrorRecord(req, u.code, u.message, performance.now() - started, traceparent), 'no decision; failing closed');
            metrics?.checkError(u.code, seconds(started));
            if (check.on_error.mode === 'deny') {
              callback(null, toCheckResponse({ allowed: false, route: 'error', status: check.on_error.deny_status, reason: u.code }));
              return;
            }
            const e: Partial<ServiceError> = {
              code: u.code === 'deadline_exceeded' ? status.DEADLINE_EXCEEDED : status.UNAVAILABLE,
              details: 'authorization decision unavailable',
            };
            callback(e);
          },
        )
        .finally(done);
    },
  };
}
