// Thin gRPC adapter for envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit: translate in,
// run the limiter, translate out, audit every over-limit decision (V-274525). A call reset or out
// of time before the store call spends no tokens (the limiter checks the call's signal).
import { status, type ServiceError } from '@grpc/grpc-js';
import type { RateLimitRequest } from '../gen/envoy/service/ratelimit/v3/RateLimitRequest.js';
import type { RateLimitResponse } from '../gen/envoy/service/ratelimit/v3/RateLimitResponse.js';
import type { RateLimitServiceHandlers } from '../gen/envoy/service/ratelimit/v3/RateLimitService.js';
import type { DescriptorRequest, DescriptorResult, RateLimitDecision, RateLimiter } from '../ratelimit/limiter.js';
import type { Entry } from '../ratelimit/matcher.js';
import type { Logger } from '../telemetry/logger.js';
import { SpanStatusCode } from '@opentelemetry/api';
import { callerContext, serverSpan } from '../telemetry/tracing.js';
import { secondsSince, type Metrics, type RateLimitOutcome } from '../telemetry/metrics.js';
import type { InFlight } from './inflight.js';
import { callSignal } from './transport.js';
import { UnavailableError, errorMessage } from '../lib/errors.js';

/** "near": past ratelimit.near_limit_ratio of the limit (upstream's near_limit). */
function outcomeOf(r: DescriptorResult): RateLimitOutcome {
  if (r.over) return 'over';
  if (r.shadowOver) return 'shadow_over';
  return r.near ? 'near' : 'within';
}

/** An unlimited descriptor's limit_remaining, as upstream (math.MaxUint32). */
const UNLIMITED_REMAINING = 4294967295;

const duration = (ms: number): { seconds: number; nanos: number } => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

export function rateLimitHandlers(deps: { limiter: RateLimiter; log: Logger; inflight: InFlight; metrics?: Metrics }): RateLimitServiceHandlers {
  const { limiter, log, inflight, metrics } = deps;
  return {
    ShouldRateLimit(call, callback) {
      const done = inflight.begin();
      const started = performance.now();
      const req = call.request;
      const domain = req.domain ?? '';
      const refused = limiter.refusal(domain, req.descriptors?.length ?? 0);
      if (refused !== undefined) {
        done();
        log.warn({ event: 'ratelimit_refused', descriptors: req.descriptors?.length }, refused.message);
        const e: Partial<ServiceError> = { code: status[refused.code], details: refused.message };
        callback(e);
        return;
      }
      const descriptors = toDescriptors(req.descriptors ?? []);
      // proto3 cannot tell an unset hits_addend from 0: both mean 1, as in envoyproxy/ratelimit.
      const hits = req.hits_addend && req.hits_addend > 0 ? req.hits_addend : 1;
      // Unknown domains share one label: the request names them, the config bounds them.
      const label = limiter.knows(domain) ? domain : 'unknown';
      // Checked (not listened to) before the store call and before answering.
      const signal = callSignal(call);
      const parent = callerContext(call.metadata, undefined);
      void serverSpan('envoy-authz ShouldRateLimit', parent, async (span) => {
        try {
          const d = await limiter.shouldRateLimit(domain, descriptors, hits, signal);
          // Reset or out of time while the store answered: nobody will read this answer, so it is
          // neither sent, logged as a decision nor counted (the store may have spent the tokens).
          signal.throwIfAborted();
          if (span.isRecording()) {
            const overLimits = d.descriptors.filter((r) => r.over).map((r) => r.limitLabel ?? 'unnamed');
            span.setAttributes({ 'envoy_authz.domain': label, 'envoy_authz.over_limit': d.over, ...(overLimits.length > 0 ? { 'envoy_authz.limits_over': [...new Set(overLimits)].join(',') } : {}) });
          }
          for (let i = 0; i < d.descriptors.length; i++) {
            const r = d.descriptors[i]!;
            // An unknown domain matches nothing, so limit labels come from configured files only.
            if (r.limit && r.state) metrics?.rateLimitDescriptor(label, outcomeOf(r), r.limitLabel ?? 'unnamed');
            if (r.stats) metrics?.rateLimitStats(label, r.stats.key, r.stats.counts);
            if (r.over || r.shadowOver) {
              const desc = descriptors[i];
              log.info(
                { event: 'ratelimit', domain, descriptor: desc && (isEntryList(desc) ? desc : desc.entries), limit: r.limit?.name, shadow: !r.over, remaining: r.state?.remaining },
                r.over ? 'over limit' : 'over limit (shadow mode)',
              );
            }
          }
          metrics?.rateLimitAnswered(secondsSince(started), d.over);
          callback(null, toRateLimitResponse(d));
        } catch (err) {
          if (err instanceof UnavailableError && (err.code === 'cancelled' || err.code === 'deadline_exceeded')) {
            // The transport has answered (DEADLINE_EXCEEDED) or the caller is gone; nothing was spent.
            span.setStatus({ code: SpanStatusCode.ERROR, message: err.code });
            log.info({ event: 'ratelimit_aborted', domain, code: err.code }, 'rate-limit check stopped before the store');
            callback({ code: err.code === 'cancelled' ? status.CANCELLED : status.DEADLINE_EXCEEDED, details: err.code });
            return;
          }
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'store' });
          log.warn({ event: 'ratelimit_error', domain, err: errorMessage(err) }, 'rate-limit check failed');
          const e: Partial<ServiceError> = { code: status.UNAVAILABLE, details: 'rate limit decision unavailable' };
          callback(e);
        } finally {
          done();
        }
      });
    },
  };
}

type Status = NonNullable<RateLimitResponse['statuses']>[number];

/** Pure translator: the limiter's decision -> Envoy's RateLimitResponse (objects built whole: no spread copies per call). */
export function toRateLimitResponse(d: RateLimitDecision): RateLimitResponse {
  const statuses = new Array<Status>(d.descriptors.length);
  for (let i = 0; i < statuses.length; i++) {
    const r = d.descriptors[i]!;
    const code = r.over ? 'OVER_LIMIT' : 'OK';
    if (r.limit && r.state) {
      const l = r.limit;
      statuses[i] = {
        code,
        current_limit: l.name ? { requests_per_unit: l.requestsPerUnit, unit: l.reportedUnit, name: l.name } : { requests_per_unit: l.requestsPerUnit, unit: l.reportedUnit },
        limit_remaining: r.state.remaining,
        duration_until_reset: duration(r.state.resetMs),
      };
    } else statuses[i] = r.unlimited ? { code, limit_remaining: UNLIMITED_REMAINING } : { code };
  }
  const headers = d.headers.map(([key, value]) => ({ key, value }));
  return { overall_code: d.over ? 'OVER_LIMIT' : 'OK', statuses, response_headers_to_add: headers };
}

/** Entry list of a descriptor without a limit override: passed on as decoded when every key and value is a string. */
const isEntryList = (d: DescriptorRequest | readonly Entry[]): d is readonly Entry[] => Array.isArray(d);

type WireDescriptor = NonNullable<RateLimitRequest['descriptors']>[number];

/** The request's descriptors for the limiter: decoded entries are reused as they are when they can be (no copy per call). */
function toDescriptors(ds: readonly WireDescriptor[]): (DescriptorRequest | readonly Entry[])[] {
  const out = new Array<DescriptorRequest | readonly Entry[]>(ds.length);
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    const wire = d.entries ?? [];
    let entries: readonly Entry[] = wire as readonly Entry[];
    for (const e of wire) {
      if (typeof e.key !== 'string' || typeof e.value !== 'string') {
        entries = wire.map((x): Entry => ({ key: x.key ?? '', value: x.value ?? '' }));
        break;
      }
    }
    out[i] = d.limit ? { entries, override: { requestsPerUnit: d.limit.requests_per_unit ?? 0, unit: String(d.limit.unit ?? 'UNKNOWN') } } : entries;
  }
  return out;
}
