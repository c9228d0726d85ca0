// Thin gRPC adapter for envoy.service.auth.v3.Authorization/Check: translate in, run the pipeline
// under a deadline, translate out, log the decision. Failures never allow and never leak details.
import { status, type ServiceError } from '@grpc/grpc-js';
import type { CheckPipeline } from '../check/pipeline.js';
import type { Decision } from '../check/decision.js';
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

function logDecision(log: Logger, req: RequestView, d: Decision, started: number): void {
  log.info(
    {
      event: 'check',
      request_id: req.id,
      route: d.route,
      method: req.method,
      host: req.host,
      path: req.path,
      source: req.source.address,
      allowed: d.allowed,
      subject: d.identity?.subject,
      issuer: d.identity?.issuer,
      auth_method: d.identity?.method,
      workload: d.identity?.workload?.id,
      api_key_id: d.identity?.workload?.keyId,
      policy_revision: d.policyRevision,
      ...(d.allowed ? { dry_run_denied: d.dryRunDenied } : { status: d.status, reason: d.reason }),
      duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
    },
    d.allowed ? 'allowed' : 'denied',
  );
}

export function authorizationHandlers(deps: AuthzServiceDeps): AuthorizationHandlers {
  const { pipeline, check, log, inflight, metrics } = deps;
  const seconds = (started: number): number => (performance.now() - started) / 1000;
  return {
    Check(call, callback) {
      const started = performance.now();
      const done = inflight.begin();
      let req: RequestView | undefined;
      const decide = async (): Promise<Decision> => {
        req = toRequestView(call.request);
        return pipeline.check(req);
      };
      withDeadline(decide(), budgetMs(check.deadline_ms, call.getDeadline()))
        .then(
          (d) => {
            if (req) logDecision(log, req, d, started);
            metrics?.decision(d.allowed ? 'allowed' : 'denied', d.allowed ? (d.dryRunDenied ? 'dry_run_denied' : 'ok') : d.reason, d.route, seconds(started));
            callback(null, toCheckResponse(d));
          },
          (err: unknown) => {
            const u = asUnavailable(err);
            log.warn({ event: 'check_error', request_id: req?.id, code: u.code, err: u.message }, 'no decision; failing closed');
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
