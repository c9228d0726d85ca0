// OpenTelemetry metrics, served as Prometheus text on the admin listener's /metrics. Every
// attribute comes from a bounded set (outcomes, reason codes, configured route and domain
// names, store kinds): never a subject, a token or a raw path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPMetricExporter as OtlpGrpc } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as OtlpProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { serviceResource } from './resource.js';
import { CounterCells, HistogramCells, HistogramProducer } from './metric-cells.js';


/** Seconds since a `performance.now()` reading: what the latency histograms record. */
export const secondsSince = (started: number): number => (performance.now() - started) / 1000;

/** One descriptor's counts of hits, as envoyproxy/ratelimit's per-descriptor stats (ratelimit/stats.ts computes them). */
export interface DescriptorStats {
  readonly totalHits: number;
  readonly overLimit: number;
  readonly nearLimit: number;
  readonly withinLimit: number;
  readonly shadowMode: number;
}

export type RateLimitOutcome = 'within' | 'near' | 'over' | 'shadow_over';
export type CacheName = 'verified_token' | 'introspection' | 'minted_token' | 'policy_decision';
export type CallTarget = 'jwks' | 'introspection' | 'bundle';

/**
 * What modules record, passed to each by the composition root (server/components.ts) - the
 * service's Metrics, or NO_METRICS where nothing is measured (unit tests, CLIs). No process-wide
 * instance: two services in one process (tests) keep their numbers apart.
 */
export interface MetricsSink {
  cacheLookup(cache: CacheName, hit: boolean): void;
  /** An outbound call (JWKS fetch, introspection, bundle download) and its outcome. */
  call(target: CallTarget, ok: boolean): void;
  /** One pipeline stage's duration (the names of the tracing child spans: a bounded set). */
  stage(stage: string, seconds: number): void;
  /** A state change (a bounded name: bundle_activated, ratelimit_store_failed, ...). */
  event(name: string): void;
  /** A failure-guard counter the store could not update. */
  guardStoreError(): void;
}

export const NO_METRICS: MetricsSink = {
  cacheLookup: () => undefined,
  call: () => undefined,
  stage: () => undefined,
  event: () => undefined,
  guardStoreError: () => undefined,
};

/** Retired signing kids still reported (as 0). */
const MAX_SIGNING_KIDS = 16;

// Seconds; the Check budget is 150 ms, so the buckets are fine-grained below it.
const METER = 'envoy-authz';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1];

export class Metrics implements MetricsSink {
  private readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly exporter: PrometheusExporter;
  // Recorded into our own cells (metric-cells.ts): the SDK's instruments hash the attributes on every call.
  private readonly decisions: CounterCells;
  private readonly checkDuration: HistogramCells;
  private readonly checkErrors: CounterCells;
  private readonly rateLimit: CounterCells;
  private readonly rateLimitDuration: HistogramCells;
  private readonly rateLimitStatCounters: Readonly<Record<keyof DescriptorStats, CounterCells>>;
  private readonly events: CounterCells;
  private readonly caches: CounterCells;
  private readonly calls: CounterCells;
  private readonly stages: HistogramCells;
  private readonly guardStoreErrors: CounterCells;
  private readonly configReloads: CounterCells;
  private readonly decisionLogs: CounterCells;
  private readonly openapiRequests: CounterCells;
  private readonly openapiUndocumentedCalls: CounterCells;

  /** Prometheus on /metrics always; OTLP too when OTEL_METRICS_EXPORTER=otlp (endpoint etc. from OTEL_EXPORTER_OTLP_*). */
  constructor(env: NodeJS.ProcessEnv = process.env) {
    const histogram = (name: string, description: string, keys: readonly string[]): HistogramCells => new HistogramCells(name, { description, unit: 's' }, LATENCY_BUCKETS, keys);
    this.checkDuration = histogram('envoy_authz_check_duration_seconds', 'Time to answer one Check.', ['outcome']);
    this.rateLimitDuration = histogram('envoy_authz_ratelimit_duration_seconds', 'Time to answer one ShouldRateLimit.', ['outcome']);
    this.stages = histogram(
      'envoy_authz_stage_duration_seconds',
      'Time per pipeline stage (authenticate, jwt.verify, introspection, policy.evaluate, openapi.validate, token.mint, ratelimit.store).',
      ['stage'],
    );
    const metricProducers = [new HistogramProducer(METER, [this.checkDuration, this.rateLimitDuration, this.stages])];
    this.exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true, metricProducers });
    const readers: MetricReader[] = [this.exporter];
    if (env.OTEL_METRICS_EXPORTER === 'otlp') {
      const protocol = env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf';
      readers.push(new PeriodicExportingMetricReader({ exporter: protocol === 'grpc' ? new OtlpGrpc() : new OtlpProto(), metricProducers }));
    }
    this.provider = new MeterProvider({
      resource: serviceResource(env),
      readers,
      views: [],
    });
    const meter: Meter = this.provider.getMeter(METER);
    this.meter = meter;
    const counter = (name: string, description: string, keys: readonly string[]): CounterCells => new CounterCells(meter, name, { description }, keys);
    this.decisions = counter('envoy_authz_decisions', 'Check decisions by outcome (allowed, denied) and reason.', ['outcome', 'reason', 'route']);
    this.checkErrors = counter('envoy_authz_check_errors', 'Checks answered with an error (failing closed), by code.', ['code']);
    this.rateLimit = counter(
      'envoy_authz_ratelimit_checks',
      'ShouldRateLimit descriptors by domain, limit (its configured name, else its descriptor path in the file) and outcome (within, near, over, shadow_over).',
      ['domain', 'limit', 'outcome'],
    );
    // envoyproxy/ratelimit's per-descriptor stats (ratelimit.service.rate_limit.<key>.<stat>),
    // counted in hits, labelled by domain and stat key; keys with request values are bounded
    // (ratelimit.stats_max_keys).
    const stat = (name: string, what: string): CounterCells =>
      counter(`envoy_authz_ratelimit_${name}`, `Rate-limit hits ${what}, by domain and descriptor stat key (envoyproxy/ratelimit's ${name}).`, ['domain', 'key']);
    this.rateLimitStatCounters = {
      totalHits: stat('total_hits', 'of matched descriptors'),
      overLimit: stat('over_limit', 'past the limit'),
      nearLimit: stat('near_limit', 'past ratelimit.near_limit_ratio of the limit'),
      withinLimit: stat('within_limit', 'within the limit'),
      shadowMode: stat('shadow_mode', 'that a shadow_mode limit would have refused'),
    };
    this.caches = counter('envoy_authz_cache_lookups', 'Cache lookups by cache and result (hit, miss).', ['cache', 'result']);
    this.calls = counter('envoy_authz_outbound_calls', 'Outbound calls (JWKS, introspection, bundle downloads) by target and outcome.', ['target', 'outcome']);
    this.guardStoreErrors = counter(
      'envoy_authz_failure_guard_store_errors',
      'Failed authentications the credential-stuffing guard could not count because the store failed (no block follows from them).',
      [],
    );
    this.configReloads = counter(
      'envoy_authz_config_reload',
      'Config reloads (file change, SIGHUP) by result: success (new generation serving) or failure (the last good config kept).',
      ['result'],
    );
    this.decisionLogs = counter(
      'envoy_authz_decision_log_events',
      'Decision-log events by sink (console, file, service) and outcome: sent, dropped (buffer full, too large, mask failed), failed (a write or upload attempt that failed; its events are retried or dropped).',
      ['sink', 'outcome'],
    );
    this.openapiRequests = counter(
      'envoy_authz_openapi_requests',
      'Requests of documented OpenAPI operations by spec, operation, outcome (valid, refused, reported) and reason.',
      ['spec', 'operation', 'outcome', 'reason'],
    );
    this.openapiUndocumentedCalls = counter(
      'envoy_authz_openapi_undocumented_requests',
      'Requests no OpenAPI operation describes, by spec, method and a bounded, normalized path label (openapi.undocumented_max_labels).',
      ['spec', 'method', 'path'],
    );
    this.events = counter('envoy_authz_events', 'State changes: bundle activations/rejections, config reloads, store failures and recoveries, JWKS and introspection failures.', ['event']);
  }

  decision(outcome: 'allowed' | 'denied', reason: string, route: string, seconds: number): void {
    this.decisions.add(1, outcome, reason, route);
    this.checkDuration.record(seconds, outcome);
  }

  checkError(code: string, seconds: number): void {
    this.checkErrors.add(1, code);
    this.checkDuration.record(seconds, 'error');
  }

  /** `limit`: the configured limit's name or descriptor path (bounded by the files), never a descriptor value. */
  rateLimitDescriptor(domain: string, outcome: RateLimitOutcome, limit: string): void {
    this.rateLimit.add(1, domain, limit, outcome);
  }

  /** Adds one descriptor's stats (hits); zero counts are not reported, as upstream's counters. */
  rateLimitStats(domain: string, key: string, counts: DescriptorStats): void {
    const c = this.rateLimitStatCounters;
    if (counts.totalHits > 0) c.totalHits.add(counts.totalHits, domain, key);
    if (counts.overLimit > 0) c.overLimit.add(counts.overLimit, domain, key);
    if (counts.nearLimit > 0) c.nearLimit.add(counts.nearLimit, domain, key);
    if (counts.withinLimit > 0) c.withinLimit.add(counts.withinLimit, domain, key);
    if (counts.shadowMode > 0) c.shadowMode.add(counts.shadowMode, domain, key);
  }

  rateLimitAnswered(seconds: number, over: boolean): void {
    this.rateLimitDuration.record(seconds, over ? 'over' : 'ok');
  }

  /** A bounded event name, e.g. bundle_activated, ratelimit_store_failed. */
  event(name: string): void {
    this.events.add(1, name);
  }

  cacheLookup(cache: CacheName, hit: boolean): void {
    this.caches.add(1, cache, hit ? 'hit' : 'miss');
  }

  stage(stage: string, seconds: number): void {
    this.stages.record(seconds, stage);
  }

  /** Reports the rate-limit store's state at every collection: 1 while degraded (nothing while the store is not Redis). */
  observeStore(state: () => { store: string; mode: string; degraded: boolean } | undefined): void {
    this.meter
      .createObservableGauge('envoy_authz_ratelimit_store_degraded', { description: '1 while the shared rate-limit store fails (limits follow failure_mode).' })
      .addCallback((r) => {
        const s = state();
        if (s) r.observe(s.degraded ? 1 : 0, { store: s.store, mode: s.mode });
      });
  }

  /** Reports each dependency at every collection: 1 while it works, 0 while it does not. */
  observeDependencies(state: () => Readonly<Record<string, boolean>>): void {
    this.meter
      .createObservableGauge('envoy_authz_dependency_up', { description: '1 while a dependency works (policy bundle active, deny list current, rate-limit store healthy), else 0.' })
      .addCallback((r) => {
        for (const [dependency, up] of Object.entries(state())) r.observe(up ? 1 : 0, { dependency });
      });
  }

  /** 1 with the active policy revision as a label (none while no bundle is active). */
  observePolicyRevision(revision: () => string | undefined): void {
    this.meter.createObservableGauge('envoy_authz_policy_info', { description: 'The active policy bundle: 1, labelled with its revision.' }).addCallback((r) => {
      const rev = revision();
      if (rev !== undefined) r.observe(1, { revision: rev });
    });
  }

  /** One config reload attempt and its result. */
  configReload(result: 'success' | 'failure'): void {
    this.configReloads.add(1, result);
  }

  /** The config generation serving now and when a config was last loaded successfully (start or reload). */
  observeConfig(state: () => { generation: number; lastSuccessSeconds: number }): void {
    this.meter.createObservableGauge('envoy_authz_config_generation', { description: 'The config generation serving: 1 at start, +1 per successful reload.' }).addCallback((r) => {
      r.observe(state().generation);
    });
    this.meter
      .createObservableGauge('envoy_authz_config_last_reload_success_timestamp_seconds', { description: 'Unix time of the last successful config load (start or reload).' })
      .addCallback((r) => {
        r.observe(state().lastSuccessSeconds);
      });
  }

  /**
   * 1 labelled with the kid of the key that signs minted tokens now; 0 for keys that signed before
   * (the exporter keeps reporting a label set once seen, so a retired kid must be set to 0, not left at 1).
   */
  observeSigningKey(kid: () => string | undefined): void {
    const seen = new Set<string>();
    this.meter
      .createObservableGauge('envoy_authz_signing_key_info', { description: 'The token signing key in use: 1, labelled with its kid (0: a key that signed before).' })
      .addCallback((r) => {
        const k = kid();
        if (k !== undefined) seen.add(k);
        // Bounded: kids come from the config, a few per rotation.
        for (const old of seen) if (seen.size > MAX_SIGNING_KIDS && old !== k) seen.delete(old);
        for (const s of seen) r.observe(s === k ? 1 : 0, { kid: s });
      });
  }

  guardStoreError(): void {
    this.guardStoreErrors.add(1);
  }

  /** Decision-log events (or failed attempts) of one sink. */
  decisionLog(sink: string, outcome: string, n: number): void {
    this.decisionLogs.add(n, sink, outcome);
  }

  /** One request of a documented operation (labels from the loaded specs: bounded). */
  openapiRequest(spec: string, operation: string, outcome: 'valid' | 'refused' | 'reported', reason: string): void {
    this.openapiRequests.add(1, spec, operation, outcome, reason);
  }

  /** One undocumented request; `path` is already a bounded label (openapi/inventory.ts). */
  openapiUndocumented(spec: string, method: string, path: string): void {
    this.openapiUndocumentedCalls.add(1, spec, method, path);
  }

  call(target: CallTarget, ok: boolean): void {
    this.calls.add(1, target, ok ? 'ok' : 'error');
  }

  /** Serves the Prometheus text format. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.exporter.getMetricsRequestHandler(req, res);
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}
