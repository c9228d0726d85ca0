// `envoy --mode validate` (make envoy-validate) proves envoy/envoy.yaml is accepted; this proves it
// says what we promise: fail closed, peer certificates forwarded, bounded bodies, TLS 1.2+.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { ROOT } from '../../helpers/service.js';

interface Filter {
  name: string;
  typed_config: Record<string, unknown>;
}
interface Hcm {
  http_filters: Filter[];
  tracing?: { random_sampling: { value: number }; provider: { name: string; typed_config: { grpc_service: { envoy_grpc: { cluster_name: string } } } } };
  normalize_path: boolean;
  forward_client_cert_details: string;
}
interface Listener {
  name: string;
  filter_chains: { transport_socket?: { typed_config: { common_tls_context: { tls_params: { tls_minimum_protocol_version: string } } } }; filters: { typed_config: Hcm }[] }[];
}
interface Cluster {
  name: string;
  circuit_breakers?: unknown;
  health_checks?: unknown[];
}

describe('envoy/envoy.yaml', async () => {
  const boot = parse(await readFile(join(ROOT, 'envoy', 'envoy.yaml'), 'utf8'), { maxAliasCount: 100 }) as {
    static_resources: { listeners: Listener[]; clusters: Cluster[] };
  };
  const listeners = boot.static_resources.listeners;

  it.each(['http', 'https'])('%s listener runs ext_authz first, failing closed, with the peer certificate and a bounded body', (name) => {
    const hcm = listeners.find((l) => l.name === name)!.filter_chains[0]!.filters[0]!.typed_config;
    const [first] = hcm.http_filters;
    expect(first!.name).toBe('envoy.filters.http.ext_authz');
    const cfg = first!.typed_config as {
      failure_mode_allow: boolean;
      include_peer_certificate: boolean;
      with_request_body: { max_request_bytes: number };
      grpc_service: { timeout: string; envoy_grpc: { cluster_name: string } };
    };
    expect(cfg.failure_mode_allow).toBe(false);
    expect(cfg.include_peer_certificate).toBe(true);
    expect(cfg.with_request_body.max_request_bytes).toBeLessThanOrEqual(65536);
    expect(parseFloat(cfg.grpc_service.timeout) * 1000).toBeGreaterThan(parseConfig('<defaults>', '').check.deadline_ms);
    expect(hcm.http_filters.map((f) => f.name)).toContain('envoy.filters.http.buffer');
    const rl = hcm.http_filters.find((f) => f.name === 'envoy.filters.http.ratelimit')!.typed_config as { timeout: string; failure_mode_deny: boolean };
    expect(rl.failure_mode_deny).toBe(true);
    // Redis timeouts resolve into the configured failure mode before Envoy stops waiting.
    expect(parseFloat(rl.timeout) * 1000).toBeGreaterThan(parseConfig('<defaults>', 'redis: {url: "redis://x"}').redis!.command_timeout_ms);
    expect(hcm.normalize_path).toBe(true);
    expect(hcm.forward_client_cert_details).toBe('SANITIZE');
  });

  it.each(['http', 'https', 'mtls'])('%s listener traces with the OpenTelemetry tracer to the otel_collector cluster, sampled', (name) => {
    const hcm = listeners.find((l) => l.name === name)!.filter_chains[0]!.filters[0]!.typed_config;
    expect(hcm.tracing?.provider.name).toBe('envoy.tracers.opentelemetry');
    expect(hcm.tracing?.provider.typed_config.grpc_service.envoy_grpc.cluster_name).toBe('otel_collector');
    expect(hcm.tracing?.random_sampling.value).toBeGreaterThan(0);
    expect(boot.static_resources.clusters.map((c) => c.name)).toContain('otel_collector');
  });

  it('requires TLS 1.2 or newer on the TLS listener', () => {
    const tls = listeners.find((l) => l.name === 'https')!.filter_chains[0]!.transport_socket!.typed_config.common_tls_context.tls_params;
    expect(tls.tls_minimum_protocol_version).toBe('TLSv1_2');
  });

  it('puts circuit breakers on every cluster and health-checks envoy-authz', () => {
    for (const c of boot.static_resources.clusters) expect(c.circuit_breakers, c.name).toBeDefined();
    expect(boot.static_resources.clusters.find((c) => c.name === 'ext_authz')!.health_checks).toHaveLength(1);
  });
});
