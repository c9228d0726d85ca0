// Metrics records into its own cells (metric-cells.ts) instead of the SDK's instruments: /metrics
// must say exactly what the SDK's own counters and histograms said for the same records - names,
// help, units, types, attributes, bucket counts, sums, counts - including past the cardinality limit.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import type { Attributes } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { AttributeCells, MAX_CELLS } from '../../../src/telemetry/metric-cells.js';
import { Metrics, type DescriptorStats } from '../../../src/telemetry/metrics.js';

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1];

/** The instruments as Metrics defined them with the SDK's own Counter and Histogram (before metric-cells.ts). */
function reference() {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({ readers: [exporter] });
  const m = provider.getMeter('envoy-authz');
  const hist = (name: string, description: string) => m.createHistogram(name, { description, unit: 's', advice: { explicitBucketBoundaries: BUCKETS } });
  const stat = (name: string, what: string) =>
    m.createCounter(`envoy_authz_ratelimit_${name}`, { description: `Rate-limit hits ${what}, by domain and descriptor stat key (envoyproxy/ratelimit's ${name}).` });
  const r = {
    decisions: m.createCounter('envoy_authz_decisions', { description: 'Check decisions by outcome (allowed, denied) and reason.' }),
    checkDuration: hist('envoy_authz_check_duration_seconds', 'Time to answer one Check.'),
    checkErrors: m.createCounter('envoy_authz_check_errors', { description: 'Checks answered with an error (failing closed), by code.' }),
    rateLimit: m.createCounter('envoy_authz_ratelimit_checks', {
      description: 'ShouldRateLimit descriptors by domain, limit (its configured name, else its descriptor path in the file) and outcome (within, near, over, shadow_over).',
    }),
    rateLimitDuration: hist('envoy_authz_ratelimit_duration_seconds', 'Time to answer one ShouldRateLimit.'),
    stats: {
      totalHits: stat('total_hits', 'of matched descriptors'),
      overLimit: stat('over_limit', 'past the limit'),
      nearLimit: stat('near_limit', 'past ratelimit.near_limit_ratio of the limit'),
      withinLimit: stat('within_limit', 'within the limit'),
      shadowMode: stat('shadow_mode', 'that a shadow_mode limit would have refused'),
    },
    caches: m.createCounter('envoy_authz_cache_lookups', { description: 'Cache lookups by cache and result (hit, miss).' }),
    stages: hist(
      'envoy_authz_stage_duration_seconds',
      'Time per pipeline stage (authenticate, jwt.verify, introspection, policy.evaluate, openapi.validate, token.mint, ratelimit.store).',
    ),
    calls: m.createCounter('envoy_authz_outbound_calls', { description: 'Outbound calls (JWKS, introspection, bundle downloads) by target and outcome.' }),
    guard: m.createCounter('envoy_authz_failure_guard_store_errors', {
      description: 'Failed authentications the credential-stuffing guard could not count because the store failed (no block follows from them).',
    }),
    reloads: m.createCounter('envoy_authz_config_reload', {
      description: 'Config reloads (file change, SIGHUP) by result: success (new generation serving) or failure (the last good config kept).',
    }),
    decisionLogs: m.createCounter('envoy_authz_decision_log_events', {
      description:
        'Decision-log events by sink (console, file, service) and outcome: sent, dropped (buffer full, too large, mask failed), failed (a write or upload attempt that failed; its events are retried or dropped).',
    }),
    openapi: m.createCounter('envoy_authz_openapi_requests', {
      description: 'Requests of documented OpenAPI operations by spec, operation, outcome (valid, refused, reported) and reason.',
    }),
    undocumented: m.createCounter('envoy_authz_openapi_undocumented_requests', {
      description: 'Requests no OpenAPI operation describes, by spec, method and a bounded, normalized path label (openapi.undocumented_max_labels).',
    }),
    events: m.createCounter('envoy_authz_events', {
      description: 'State changes: bundle activations/rejections, config reloads, store failures and recoveries, JWKS and introspection failures.',
    }),
  };
  const sink = {
    decision: (outcome: string, reason: string, route: string, s: number) => {
      r.decisions.add(1, { outcome, reason, route });
      r.checkDuration.record(s, { outcome });
    },
    checkError: (code: string, s: number) => {
      r.checkErrors.add(1, { code });
      r.checkDuration.record(s, { outcome: 'error' });
    },
    rateLimitDescriptor: (domain: string, outcome: string, limit: string) => r.rateLimit.add(1, { domain, limit, outcome }),
    rateLimitStats: (domain: string, key: string, counts: DescriptorStats) => {
      for (const name of Object.keys(counts) as (keyof DescriptorStats)[]) if (counts[name] > 0) r.stats[name].add(counts[name], { domain, key });
    },
    rateLimitAnswered: (s: number, over: boolean) => r.rateLimitDuration.record(s, { outcome: over ? 'over' : 'ok' }),
    event: (name: string) => r.events.add(1, { event: name }),
    cacheLookup: (cache: string, hit: boolean) => r.caches.add(1, { cache, result: hit ? 'hit' : 'miss' }),
    stage: (stage: string, s: number) => r.stages.record(s, { stage }),
    configReload: (result: string) => r.reloads.add(1, { result }),
    guardStoreError: () => r.guard.add(1),
    decisionLog: (sink: string, outcome: string, n: number) => r.decisionLogs.add(n, { sink, outcome }),
    openapiRequest: (spec: string, operation: string, outcome: string, reason: string) => r.openapi.add(1, { spec, operation, outcome, reason }),
    openapiUndocumented: (spec: string, method: string, path: string) => r.undocumented.add(1, { spec, method, path }),
    call: (target: string, ok: boolean) => r.calls.add(1, { target, outcome: ok ? 'ok' : 'error' }),
  };
  return { sink, handle: exporter.getMetricsRequestHandler.bind(exporter), shutdown: () => provider.shutdown() };
}

/** The same records, N rounds, through either implementation (Metrics' methods are the interface). */
function drive(m: Pick<Metrics, 'decision' | 'checkError' | 'rateLimitDescriptor' | 'rateLimitStats' | 'rateLimitAnswered' | 'event' | 'cacheLookup' | 'stage' | 'configReload' | 'guardStoreError' | 'decisionLog' | 'openapiRequest' | 'openapiUndocumented' | 'call'>, rounds: number): void {
  // Every boundary exactly, between them, 0, above the last; and a negative value (ignored by both).
  const durations = [0, 0.0001, ...BUCKETS, ...BUCKETS.map((b) => b * 1.37), 2.5, 17, -1];
  for (let i = 0; i < rounds; i++) {
    const s = durations[i % durations.length]!;
    m.decision(i % 3 === 0 ? 'denied' : 'allowed', i % 5 === 0 ? 'credential_missing' : 'ok', `route-${i % 4}`, s);
    if (i % 7 === 0) m.checkError(i % 2 ? 'deadline_exceeded' : 'internal', s);
    m.rateLimitDescriptor(`d${i % 2}`, (['within', 'near', 'over', 'shadow_over'] as const)[i % 4]!, i % 3 ? 'user' : 'route_default');
    m.rateLimitStats(`d${i % 2}`, `user_u${i % 9}`, { totalHits: 1 + (i % 3), overLimit: i % 4 === 0 ? 1 : 0, nearLimit: i % 5 === 0 ? 2 : 0, withinLimit: i % 2, shadowMode: i % 11 === 0 ? 1 : 0 });
    m.rateLimitAnswered(s / 3, i % 6 === 0);
    m.stage((['authenticate', 'jwt.verify', 'ratelimit.store'] as const)[i % 3]!, s * 0.7);
    m.cacheLookup((['verified_token', 'policy_decision'] as const)[i % 2]!, i % 3 !== 0);
    if (i % 13 === 0) m.event(i % 2 ? 'bundle_activated' : 'ratelimit_store_failed');
    if (i % 17 === 0) m.configReload(i % 2 ? 'success' : 'failure');
    if (i % 19 === 0) m.guardStoreError();
    m.decisionLog(i % 2 ? 'console' : 'file', 'sent', i % 4);
    if (i % 3 === 0) m.openapiRequest('petstore', `op${i % 5}`, (['valid', 'refused', 'reported'] as const)[i % 3]!, i % 2 ? 'none' : 'body');
    if (i % 8 === 0) m.openapiUndocumented('petstore', 'GET', `/p/${i % 3}`);
    m.call((['jwks', 'introspection', 'bundle'] as const)[i % 3]!, i % 4 !== 0);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
const servers: Server[] = [];
async function scrape(handle: Handler): Promise<string> {
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
  return res.text();
}
afterAll(() => servers.forEach((s) => s.close()));

/** Metric families (a HELP block each, without target_info: its resource differs) in a stable order, lines sorted within. */
function families(text: string, roundSums = false): string[] {
  const round = (l: string): string => (roundSums && /_sum[{ ]/.test(l) ? l.replace(/ (\S+)$/, (_, v: string) => ` ${Number(v).toPrecision(12)}`) : l);
  return text
    .split(/\n(?=# HELP )/)
    .filter((b) => !b.startsWith('# HELP target_info'))
    .map((b) => b.trim().split('\n').map(round).sort().join('\n'))
    .sort();
}

describe('metric cells', () => {
  it('export what the SDK instruments exported: names, help, units, attributes, buckets, sums and counts', async () => {
    const ref = reference();
    const ours = new Metrics({});
    drive(ref.sink, 3000);
    drive(ours, 3000);
    const want = families(await scrape(ref.handle));
    const got = families(await scrape((req, res) => ours.handle(req, res)));
    expect(want.length).toBeGreaterThan(14);
    expect(got).toEqual(want);
    // And again after more records: cumulative, as the SDK's. (The SDK adds each collection's
    // partial sum to the last, we keep one running sum: sums agree to rounding, not to the last bit.)
    drive(ref.sink, 500);
    drive(ours, 500);
    expect(families(await scrape((req, res) => ours.handle(req, res)), true)).toEqual(families(await scrape(ref.handle), true));
    await ref.shutdown();
    await ours.shutdown();
  });

  it('past the cardinality limit (1999 sets and the overflow), count new attribute sets under otel.metric.overflow, as the SDK', async () => {
    const ref = reference();
    const ours = new Metrics({});
    for (let i = 0; i < MAX_CELLS + 300; i++) {
      const counts = { totalHits: 1, overLimit: 0, nearLimit: 0, withinLimit: 1, shadowMode: 0 };
      ref.sink.rateLimitStats('d', `k${i}`, counts);
      ours.rateLimitStats('d', `k${i}`, counts);
      ref.sink.stage(`s${i}`, 0.001);
      ours.stage(`s${i}`, 0.001);
    }
    const got = families(await scrape((req, res) => ours.handle(req, res)));
    expect(got).toEqual(families(await scrape(ref.handle)));
    const stats = got.find((f) => f.includes('# HELP envoy_authz_ratelimit_total_hits_total'))!;
    expect(stats.split('\n').filter((l) => l.startsWith('envoy_authz_ratelimit_total_hits_total')).length).toBe(MAX_CELLS);
    expect(stats).toContain('envoy_authz_ratelimit_total_hits_total{otel_metric_overflow="true"} 301');
    await ref.shutdown();
    await ours.shutdown();
  });

  it('find a cell by its values without making another, and build its attributes once', () => {
    let made = 0;
    const cells = new AttributeCells<{ n: number }>(['a', 'b', 'c'], () => ({ n: made++ }), 4);
    const x = cells.get('1', '2', '3');
    expect(cells.get('1', '2', '3')).toBe(x);
    // Values that would collide as a joined string stay apart.
    expect(cells.get('1', '23', '')).not.toBe(x);
    cells.get('2', '2', '2');
    const overflow = cells.get('3', '3', '3');
    expect(cells.get('4', '4', '4')).toBe(overflow);
    const seen: Attributes[] = [];
    cells.forEach((attributes) => seen.push(attributes));
    expect(seen).toEqual([{ a: '1', b: '2', c: '3' }, { a: '1', b: '23', c: '' }, { a: '2', b: '2', c: '2' }, { 'otel.metric.overflow': true }]);
    expect(made).toBe(4);
  });
});
