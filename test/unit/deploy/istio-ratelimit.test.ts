// The chart's rate-limit EnvoyFilter: it puts envoy.filters.http.ratelimit right after ext_authz,
// calls our Service, answers within the service's Redis budget, builds the local stack's
// descriptors from the configured identity headers, and real Envoy accepts what it patches in
// (the patch applied to envoy/envoy.yaml, checked with `envoy --mode validate`).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { compileRateLimitFile } from '../../../src/ratelimit/config.js';
import { envoyBinary } from '../../helpers/envoy.js';
import { ROOT } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';
import { only, render, VALUES_FILES, type K8sDoc } from './chart.js';
import { applyRateLimitFilter, type Bootstrap, type EnvoyFilter, type Patch, type RateLimitFilter, type RateLimits } from './envoyfilter.js';

const WITH_RATE_LIMITS = VALUES_FILES.filter((v) => render([v]).some((d) => d.kind === 'EnvoyFilter'));

function parts(ef: EnvoyFilter): { filter: Patch; vhost: Patch } {
  expect(ef.spec.configPatches.map((p) => p.applyTo)).toEqual(['HTTP_FILTER', 'VIRTUAL_HOST']);
  return { filter: ef.spec.configPatches[0]!, vhost: ef.spec.configPatches[1]! };
}

describe('Istio rate-limit EnvoyFilter', () => {
  const tmp = tempDir();
  it('is rendered by the Istio values files', () => {
    expect(WITH_RATE_LIMITS.length).toBeGreaterThanOrEqual(3);
  });

  it.each(WITH_RATE_LIMITS)('%s: ratelimit after ext_authz, our Service, a timeout above Redis\'s, a configured domain, the same workloads as the CUSTOM policy', (values) => {
    const docs = render([values]);
    const ef = only<EnvoyFilter>(docs, 'EnvoyFilter');
    const { filter, vhost } = parts(ef);
    expect(filter.match.listener!.filterChain.filter).toEqual({ name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.ext_authz' } });
    expect(filter.patch.operation).toBe('INSERT_AFTER');
    expect(vhost.match.context).toBe(filter.match.context);
    const rl = filter.patch.value as RateLimitFilter;
    expect(rl.name).toBe('envoy.filters.http.ratelimit');
    expect(rl.typed_config.failure_mode_deny).toBe(true);

    const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name.endsWith('-config'))!;
    const cfg = parseConfig(values, secret.stringData!['authz.yaml']!);
    // The service's Redis failure mode answers before Envoy stops waiting.
    expect(parseFloat(rl.typed_config.timeout) * 1000).toBeGreaterThan(cfg.redis!.command_timeout_ms);
    const svc = only(docs, 'Service');
    const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
    expect(rl.typed_config.rate_limit_service.grpc_service.envoy_grpc).toEqual({ cluster_name: `outbound|${cfg.server.address.split(':').pop()}||${host}`, authority: host });
    // Envoy's domain is one the service loads.
    const files = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-ratelimit'))!.data!;
    const domains = Object.entries(files).map(([n, t]) => compileRateLimitFile(n, t, { algorithm: cfg.ratelimit.algorithm }).domain);
    expect(domains).toContain(rl.typed_config.domain);
    // Identity descriptors read the headers the service sets.
    const actions = (vhost.patch.value as { rate_limits: RateLimits }).rate_limits.flatMap((r) => r.actions);
    const h = cfg.authentication.upstream_headers;
    expect(actions).toContainEqual({ request_headers: { header_name: h.subject, descriptor_key: 'user' } });
    expect(actions).toContainEqual({ request_headers: { header_name: h.client, descriptor_key: 'client' } });
    const ap = only<K8sDoc & { spec: { selector: { matchLabels: Record<string, string> } } }>(docs, 'AuthorizationPolicy');
    expect(ef.spec.workloadSelector.labels).toEqual(ap.spec.selector.matchLabels);
    expect(ef.metadata.namespace).toBe(ap.metadata.namespace);
  });

  it('uses the local stack\'s ratelimit filter settings and descriptors (envoy/envoy.yaml)', () => {
    const boot = parse(readFileSync(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8'), { maxAliasCount: 100 }) as Bootstrap;
    const hcm = boot.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
    const local = hcm.http_filters.find((f) => f.name === 'envoy.filters.http.ratelimit')! as RateLimitFilter;
    const { filter, vhost } = parts(only<EnvoyFilter>(render(['envoy/istio/values.yaml']), 'EnvoyFilter'));
    const ours = (filter.patch.value as RateLimitFilter).typed_config;
    const { rate_limit_service: a, ...restOurs } = ours;
    const { rate_limit_service: b, ...restLocal } = local.typed_config;
    expect(restOurs).toEqual(restLocal);
    expect(a.transport_api_version).toBe(b.transport_api_version);
    expect((vhost.patch.value as { rate_limits: RateLimits }).rate_limits).toEqual(hcm.route_config.virtual_hosts[0]!.rate_limits);
  });

  it.each(WITH_RATE_LIMITS)('%s: Envoy accepts the patched filter and descriptors', (values) => {
    const boot = parse(readFileSync(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8'), { maxAliasCount: 100 }) as Bootstrap;
    applyRateLimitFilter(boot, only<EnvoyFilter>(render([values]), 'EnvoyFilter'), 'ext_authz');
    const file = tmp.write(`${values.replaceAll('/', '_')}.envoy.yaml`, stringify(boot, { aliasDuplicateObjects: false }));
    // Throws with Envoy's message when the configuration is refused.
    execFileSync(envoyBinary(), ['--mode', 'validate', '-c', file, '--log-level', 'error'], { cwd: ROOT, stdio: 'pipe' });
  });
});

