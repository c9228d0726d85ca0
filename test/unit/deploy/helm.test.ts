// The Helm chart, rendered by the real helm for every values file of `make test`: the config it
// writes is valid for the service's own loader, every file the config names is mounted, probes and
// ports match the config, labels follow the Helm conventions, and values that would make a broken
// or unsafe install are refused at render time. (`helm lint` and the Kubernetes schemas: make
// deploy-validate; the Istio resources against Istio's CRDs: crds.test.ts.)
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { compileRateLimitFile } from '../../../src/ratelimit/config.js';
import { CHART, only, render, RenderError, VALUES_FILES, type K8sDoc } from './chart.js';

interface Probe {
  grpc?: { port: number; service?: string };
  httpGet?: { path: string; port: string };
  tcpSocket?: { port: string };
}
interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: Probe;
  livenessProbe: Probe;
  startupProbe: Probe;
  volumeMounts: { name: string; mountPath: string }[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
}
interface Volume {
  name: string;
  secret?: { secretName: string; defaultMode: number };
  configMap?: { name: string };
}
interface Deployment extends K8sDoc {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string>; annotations: Record<string, string> }; spec: { containers: Container[]; volumes: Volume[]; automountServiceAccountToken: boolean } };
  };
}

const CONFIG_DIR = '/etc/envoy-authz/config';

function pod(docs: K8sDoc[]): { container: Container; volumes: Volume[] } {
  const spec = only<Deployment>(docs, 'Deployment').spec.template.spec;
  return { container: spec.containers[0]!, volumes: spec.volumes };
}

/** The rendered authz.yaml (from the chart's Secret). */
function configText(docs: K8sDoc[]): string {
  const secret = docs.find((d) => d.kind === 'Secret' && d.metadata.name.endsWith('-config'))!;
  return secret.stringData!['authz.yaml']!;
}

/** Every file path the configuration refers to. */
function referencedFiles(cfg: ReturnType<typeof parseConfig>): string[] {
  return [
    ...cfg.ratelimit.files,
    ...(cfg.policy?.bundle.file ? [cfg.policy.bundle.file] : []),
    ...(cfg.policy?.verification ? [cfg.policy.verification.key_file] : []),
    ...(cfg.token?.signing_keys.map((k) => k.file) ?? []),
    ...(cfg.server.tls ? [cfg.server.tls.cert_file, cfg.server.tls.key_file, cfg.server.tls.client_ca_file ?? cfg.server.tls.cert_file] : []),
    ...(cfg.authentication.api_keys?.file ? [cfg.authentication.api_keys.file] : []),
  ];
}

const port = (address: string): number => Number(address.slice(address.lastIndexOf(':') + 1));

describe.each(VALUES_FILES)('helm template -f %s', (values) => {
  const docs = render([values]);
  const cfg = parseConfig(`${values}: authz.yaml`, configText(docs));
  const { container, volumes } = pod(docs);

  it('writes a configuration the service accepts, and rate-limit files it loads', () => {
    expect(container.args).toEqual(['--config', `${CONFIG_DIR}/authz.yaml`]);
    const rl = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name.endsWith('-ratelimit'));
    for (const [name, text] of Object.entries(rl?.data ?? {})) {
      expect(compileRateLimitFile(name, text, { algorithm: cfg.ratelimit.algorithm }).domain).toMatch(/./);
      expect(cfg.ratelimit.files).toContain(`/etc/envoy-authz/ratelimit/${name}`);
    }
  });

  it('mounts every file the configuration names, secrets never readable by "other"', () => {
    const mounts = container.volumeMounts.map((m) => m.mountPath);
    for (const file of [`${CONFIG_DIR}/authz.yaml`, ...referencedFiles(cfg)]) {
      expect(mounts.some((m) => file.startsWith(`${m}/`)), file).toBe(true);
    }
    for (const v of volumes) if (v.secret) expect(v.secret.defaultMode, v.name).toBe(0o440);
    for (const m of container.volumeMounts) expect(volumes.map((v) => v.name)).toContain(m.name);
  });

  it('listens where the ports, the Service and the probes point', () => {
    const grpc = container.ports.find((p) => p.name === 'grpc')!.containerPort;
    const admin = container.ports.find((p) => p.name === 'admin')!.containerPort;
    expect(port(cfg.server.address)).toBe(grpc);
    expect(port(cfg.admin.address)).toBe(admin);
    expect(cfg.server.address).not.toMatch(/^127\.|^\[::1\]/);
    const svc = only<K8sDoc & { spec: { ports: { name: string; targetPort: string }[] } }>(docs, 'Service');
    expect(svc.spec.ports.map((p) => p.targetPort).sort()).toEqual(['admin', 'grpc']);
    // gRPC health on the gRPC port, unless TLS keeps the kubelet's plaintext gRPC probe out.
    if (cfg.server.tls) expect(container.readinessProbe.tcpSocket).toEqual({ port: 'grpc' });
    else expect(container.readinessProbe.grpc).toEqual({ port: grpc });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
  });

  it('labels every resource as the Helm best practices say, and selects pods by stable labels only', () => {
    for (const d of docs) {
      const l = d.metadata.labels ?? {};
      expect(Object.keys(l), `${d.kind}/${d.metadata.name}`).toEqual(
        expect.arrayContaining(['helm.sh/chart', 'app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/version', 'app.kubernetes.io/managed-by']),
      );
    }
    const dep = only<Deployment>(docs, 'Deployment');
    expect(Object.keys(dep.spec.selector.matchLabels).sort()).toEqual(['app.kubernetes.io/instance', 'app.kubernetes.io/name']);
    expect(dep.spec.template.metadata.labels).toMatchObject(dep.spec.selector.matchLabels);
    expect(dep.spec.template.spec.automountServiceAccountToken).toBe(false);
  });
});

describe('chart values', () => {
  const cfgOf = (docs: K8sDoc[]): ReturnType<typeof parseConfig> => parseConfig('authz.yaml', configText(docs));

  it('wires Redis standalone, sentinel and cluster as the service expects, with shared stores where the mode allows', () => {
    const standalone = cfgOf(render(['deploy/kubernetes/values.yaml']));
    expect(standalone.redis).toMatchObject({ url: 'redis://redis.envoy-authz.svc:6379', mode: 'standalone' });
    expect([standalone.ratelimit.store, standalone.revocation.store]).toEqual(['redis', 'redis']);
    const sentinel = cfgOf(render(['deploy/helm/envoy-authz/ci/redis-sentinel-values.yaml']));
    expect(sentinel.redis).toMatchObject({ mode: 'sentinel', sentinel_name: 'authz' });
    expect(sentinel.redis!.nodes).toHaveLength(3);
    const cluster = cfgOf(render(['deploy/helm/envoy-authz/ci/redis-cluster-values.yaml']));
    // Cluster mode serves rate limits only: revocations stay per pod.
    expect([cluster.ratelimit.store, cluster.revocation.store]).toEqual(['redis', 'memory']);
    const none = cfgOf(render([]));
    expect(none.redis).toBeUndefined();
    expect([none.ratelimit.store, none.revocation.store]).toEqual(['memory', 'memory']);
  });

  it('takes the policy bundle from a URL, a ConfigMap or a file, and rolls it out in dry run first', () => {
    const url = cfgOf(render([], ['policy.bundle.url=https://bundles.example.com/b.tar.gz', 'policy.dryRun=true']));
    expect(url.policy).toMatchObject({ bundle: { url: 'https://bundles.example.com/b.tar.gz' }, dry_run: true });
    const cmDocs = render([], ['policy.bundle.configMap.name=policy']);
    expect(cfgOf(cmDocs).policy).toMatchObject({ bundle: { file: '/etc/envoy-authz/policy/bundle.tar.gz' }, dry_run: false });
    expect(pod(cmDocs).volumes.find((v) => v.name === 'policy')!.configMap).toEqual({ name: 'policy' });
    expect(cfgOf(render([], ['policy.bundle.file=/opt/bundle.tar.gz'])).policy!.bundle.file).toBe('/opt/bundle.tar.gz');
    expect(cfgOf(render([])).policy).toBeUndefined();
  });

  it('names the certificate files with TLS, and probes the gRPC port by TCP (the kubelet\'s gRPC probe has no TLS)', () => {
    const docs = render([], ['tls.secretName=tls', 'tls.clientCA=true']);
    expect(cfgOf(docs).server.tls).toEqual({ cert_file: '/etc/envoy-authz/tls/tls.crt', key_file: '/etc/envoy-authz/tls/tls.key', client_ca_file: '/etc/envoy-authz/tls/ca.crt' });
    expect(pod(docs).container.readinessProbe).toMatchObject({ tcpSocket: { port: 'grpc' } });
    expect(pod(docs).container.startupProbe).toMatchObject({ tcpSocket: { port: 'grpc' } });
  });

  it('mounts an operator\'s own configuration Secret instead of rendering one', () => {
    const docs = render([], ['existingConfigSecret=my-authz-config']);
    expect(docs.filter((d) => d.kind === 'Secret')).toEqual([]);
    expect(pod(docs).volumes.find((v) => v.name === 'config')!.secret).toEqual({ secretName: 'my-authz-config', defaultMode: 0o440 });
  });

  it('renders HPA, PDB, NetworkPolicy and ServiceMonitor on request, and no replica count under an HPA', () => {
    const docs = render(['deploy/helm/envoy-authz/ci/redis-sentinel-values.yaml']);
    expect(docs.map((d) => d.kind)).toEqual(expect.arrayContaining(['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'NetworkPolicy', 'ServiceMonitor']));
    expect(only<Deployment>(docs, 'Deployment').spec.replicas).toBeUndefined();
    const plain = render([], ['podDisruptionBudget.enabled=false', 'networkPolicy.enabled=false']);
    expect(plain.map((d) => d.kind)).not.toEqual(expect.arrayContaining(['PodDisruptionBudget']));
    expect(plain.map((d) => d.kind)).not.toContain('NetworkPolicy');
    expect(plain.map((d) => d.kind)).not.toContain('ServiceMonitor');
    expect(only<Deployment>(plain, 'Deployment').spec.replicas).toBe(3);
  });

  it('rolls the pods when the configuration changes, not when only rate-limit files change', () => {
    const sum = (docs: K8sDoc[]): string => only<Deployment>(docs, 'Deployment').spec.template.metadata.annotations['checksum/config']!;
    const base = sum(render([]));
    expect(sum(render([], ['config.logging.level=debug']))).not.toBe(base);
    expect(sum(render([], ['rateLimits.files.extra\\.yaml.domain=extra']))).not.toBe(base); // a new file is a new config entry
    const changedLimit = render([], ['rateLimits.files.envoy-authz\\.yaml.domain=other']);
    expect(sum(changedLimit)).toBe(base);
  });

  it('exports traces to the configured OTLP endpoint with the standard variables, sampled after the proxy, and only when asked', () => {
    expect(pod(render([])).container.env).toBeUndefined();
    const env = pod(render([], ['tracing.enabled=true', 'tracing.endpoint=http://otel.obs.svc:4318', 'tracing.protocol=http/protobuf', 'tracing.environment=prod', 'extraEnv[0].name=X', 'extraEnv[0].value=y'], CHART, ['--set-json', 'tracing.samplingRatio=0.25'])).container.env!;
    const value = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(value).toMatchObject({
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel.obs.svc:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.namespace.name=envoy-authz,k8s.pod.name=$(POD_NAME),deployment.environment.name=prod',
      X: 'y',
    });
    // $(POD_NAME) expands only when POD_NAME comes first.
    expect(env.findIndex((e) => e.name === 'POD_NAME')).toBeLessThan(env.findIndex((e) => e.name === 'OTEL_RESOURCE_ATTRIBUTES'));
  });

  it('renders the proxies\' tracing Telemetry for the selected workloads on request', () => {
    expect(render([]).filter((d) => d.kind === 'Telemetry')).toEqual([]);
    const t = only(render([], ['istio.tracing.enabled=true', 'istio.tracing.collectorService=otel.obs.svc.cluster.local', 'istio.workloadSelector.app=api']), 'Telemetry');
    expect(t.spec).toEqual({ selector: { matchLabels: { app: 'api' } }, tracing: [{ providers: [{ name: 'otel-tracing' }], randomSamplingPercentage: 1 }] });
  });

  it.each([
    [['tracing.enabled=true'], /tracing.endpoint is required/],
    [['tracing.enabled=true', 'tracing.endpoint=otel:4317'], /tracing\/endpoint|pattern/],
    [['istio.tracing.enabled=true', 'istio.workloadSelector.app=api'], /collectorService is required/],
    [['config.server.address=0.0.0.0:1'], /config\/server\/address/],
    [['config.redis.url=redis://x'], /config\/redis/],
    [['config.ratelimit.files={/x.yaml}'], /config\/ratelimit\/files/],
    [['config.policy.dry_run=true'], /config\/policy\/dry_run/],
    [['policy.bundle.url=https://b.example/b.tar.gz', 'policy.bundle.file=/b.tar.gz'], /bundle/],
    [['policy.bundle.url=http://b.example/b.tar.gz'], /policy\/bundle\/url/],
    [['policy.dryRun=true'], /need a bundle/],
    [['config.token.default_audience=x'], /tokenSigning.existingSecret/],
    [['tokenSigning.existingSecret=keys'], /config.token is not/],
    [['redis.mode=sentinel', 'redis.url=redis://x'], /nodes|sentinel_name/],
    [['config.ratelimit.store=redis'], /needs redis.url/],
    [['istio.authorizationPolicy.enabled=true'], /istio.workloadSelector must name/],
    [['istio.rateLimit.enabled=true', 'redis.url=redis://x', 'istio.rateLimit.timeoutMs=100'], /must exceed redis.command_timeout_ms/],
    [['istio.rateLimit.enabled=true', 'istio.authorizationPolicy.enabled=true', 'istio.authorizationPolicy.rules[0].to[0].operation.paths[0]=/api/*'], /every request/],
  ])('refuses %j', (set, message) => {
    expect(() => render([], set)).toThrow(RenderError);
    expect(() => render([], set)).toThrow(message);
  });
});
