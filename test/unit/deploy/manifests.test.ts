// deploy/ cannot be applied here (no cluster, no Docker engine); check that every manifest
// parses, that the embedded configs are valid for envoy-authz, and that monitoring refers only
// to metrics the service exports.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { compileRateLimitFile } from '../../../src/ratelimit/config.js';
import { Metrics } from '../../../src/telemetry/metrics.js';
import { ROOT } from '../../helpers/service.js';

const read = (p: string): Promise<string> => readFile(join(ROOT, 'deploy', p), 'utf8');
const EXPORTED = [
  'envoy_authz_decisions_total',
  'envoy_authz_check_errors_total',
  'envoy_authz_check_duration_seconds_bucket',
  'envoy_authz_ratelimit_checks_total',
  'envoy_authz_ratelimit_duration_seconds_bucket',
  'envoy_authz_events_total',
  'envoy_authz_ratelimit_store_degraded',
  'envoy_authz_dependency_up',
  'envoy_authz_stage_duration_seconds_bucket',
];

interface K8sDoc {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: { template?: { spec: { containers: { readinessProbe: { grpc: { port: number } }; ports: { containerPort: number }[] }[]; volumes: { secret?: { defaultMode: number } }[] } } };
}

function metricNames(text: string): string[] {
  return [...text.matchAll(/envoy_authz_[a-z_]+/g)].map((m) => m[0]);
}

describe('deploy/', () => {
  // deploy/validate.sh (make deploy-validate) proves the file is what the chart renders and that it
  // passes the Kubernetes schemas; this proves what it carries is right for the service.
  it('Kubernetes manifests parse, embed a valid config and rate-limit file, and probe gRPC health', async () => {
    const docs = parseAllDocuments(await read('kubernetes/envoy-authz.yaml')).map((d) => d.toJS() as K8sDoc);
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'NetworkPolicy', 'PodDisruptionBudget', 'ServiceAccount', 'Secret', 'ConfigMap', 'Service', 'Deployment']);
    const cfg = parseConfig('secret:authz.yaml', docs.find((d) => d.kind === 'Secret')!.stringData!['authz.yaml']!);
    expect(cfg.server.address).toBe('0.0.0.0:9191');
    expect(cfg.ratelimit.files).toEqual(['/etc/envoy-authz/ratelimit/envoy-authz.yaml']);
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    expect(compileRateLimitFile('configmap:envoy-authz.yaml', cm.data!['envoy-authz.yaml']!, { algorithm: 'token_bucket' }).domain).toBe('envoy-authz');
    const pod = docs.find((d) => d.kind === 'Deployment')!.spec!.template!.spec;
    expect(pod.containers[0]!.readinessProbe.grpc).toEqual({ port: 9191 });
    // Secrets must not be readable by "other": the service refuses such key files.
    for (const v of pod.volumes.filter((x) => x.secret)) expect(v.secret!.defaultMode).toBe(0o440);
  });

  it('the list of exported metrics is what the service serves', async () => {
    const m = new Metrics();
    m.decision('allowed', 'ok', 'default', 0.001);
    m.checkError('internal', 0.001);
    m.rateLimitDescriptor('d', 'over', 'per-user');
    m.rateLimitAnswered(0.001, true);
    m.event('bundle_activated');
    m.observeStore(() => ({ store: 'redis', mode: 'local', degraded: true }));
    m.observeDependencies(() => ({ policy_bundle: true }));
    m.stage('authenticate', 0.001);
    const server = createServer((req, res) => m.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const text = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`)).text();
      for (const name of EXPORTED) expect(text).toContain(`${name}{`);
    } finally {
      server.close();
      await m.shutdown();
    }
  });

  it('alert rules and the dashboard use only exported metrics', async () => {
    const alerts = parse(await read('monitoring/alerts.yaml')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const exprs = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr));
    expect(exprs.length).toBeGreaterThanOrEqual(5);
    const dashboard = JSON.parse(await read('monitoring/grafana-dashboard.json')) as { panels: { targets: { expr: string }[] }[] };
    const all = [...exprs, ...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr))];
    for (const name of all.flatMap(metricNames)) expect(EXPORTED, name).toContain(name);
  });

  it('the compose stack runs the repository\'s own Envoy bootstrap and a valid envoy-authz config', async () => {
    const compose = parse(await read('compose.yaml')) as {
      services: Record<string, { image?: string; build?: unknown; command?: string[]; network_mode?: string; environment?: Record<string, string> }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['authz', 'envoy', 'jaeger', 'redis', 'upstream']);
    expect(compose.services.envoy!.command).toContain('/work/envoy/envoy.yaml');
    for (const s of Object.values(compose.services)) expect(s.network_mode).toBe('host');
    // Revocations in Redis must survive a Redis restart: persistence on.
    expect(compose.services.redis!.command?.join(' ')).toMatch(/--appendonly yes/);
    const cfg = parseConfig('deploy/compose/authz.yaml', await read('compose/authz.yaml'));
    expect(cfg.ratelimit.store).toBe('redis');
    expect(cfg.server.address).toBe('127.0.0.1:9191'); // where envoy/envoy.yaml sends ext_authz
    // One trace per request in Jaeger: Envoy's tracer and envoy-authz both export to its OTLP receivers.
    expect(compose.services.jaeger!.environment).toMatchObject({ COLLECTOR_OTLP_ENABLED: 'true' });
    expect(compose.services.authz!.environment).toMatchObject({ OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' });
    const envoy = parse(await readFile(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8'), { maxAliasCount: 100 }) as {
      static_resources: { clusters: { name: string; load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } }[] };
    };
    const collector = envoy.static_resources.clusters.find((c) => c.name === 'otel_collector')!;
    expect(collector.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address).toEqual({ address: '127.0.0.1', port_value: 4317 });
  });

  it('the Dockerfile is multi-stage, runs as non-root and ships no dev dependencies', async () => {
    const text = await read('Dockerfile');
    expect(text.match(/^FROM /gm)).toHaveLength(2);
    expect(text).toMatch(/^USER 1000:1000$/m);
    expect(text).toContain('npm prune --omit=dev');
  });
});
