// OTLP over gRPC (OTEL_EXPORTER_OTLP_PROTOCOL=grpc) reaches a real gRPC trace receiver.
// (A file of its own: the tracer provider is process-global.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.js';
import { setupTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { authzClient } from '../helpers/grpc.js';
import { capture } from '../helpers/log.js';
import { startOtlpGrpcReceiver } from '../helpers/otlp.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('OTLP/gRPC trace export', () => {
  const tmp = tempDir();
  let receiver: Awaited<ReturnType<typeof startOtlpGrpcReceiver>>;
  let tracing: Tracing;

  beforeAll(async () => {
    receiver = await startOtlpGrpcReceiver();
    tracing = await setupTracing(createLogger('silent', capture().stream), {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
  });
  afterAll(async () => {
    await tracing?.shutdown();
    receiver?.server.forceShutdown();
  });

  it('exports the Check span', async () => {
    const svc = await startInProcess(tmp.write('authz.yaml', configYaml({ server: { address: '127.0.0.1:0' }, routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }] })));
    const client = authzClient(svc.address);
    try {
      await client.check(checkRequest());
      const until = Date.now() + 5000;
      while (!receiver.spans.some((s) => s.name === 'envoy-authz Check') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(receiver.spans.find((s) => s.name === 'envoy-authz Check')).toMatchObject({ service: 'envoy-authz', attributes: { 'envoy_authz.allowed': true } });
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});
