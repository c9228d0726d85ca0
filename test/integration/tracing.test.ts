// Trace context: our Check span joins the caller's trace from the gRPC metadata (W3C), else
// from the HTTP headers inside the CheckRequest (W3C or B3). A real OTLP receiver collects.
import { credentials, Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckRequest } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { envoyProtos } from '../../src/envoy/protos.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { setupTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { capture } from '../helpers/log.js';
import { startOtlpReceiver } from '../helpers/otlp.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const W3C_TRACE = '0af7651916cd43dd8448eb211c80319c';
const B3_TRACE = '80f198ee56343ba864fe8b2a57d3eff7';

describe('trace context propagation', () => {
  const tmp = tempDir();
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let tracing: Tracing;
  let svc: Awaited<ReturnType<typeof startInProcess>>;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    tracing = await setupTracing(createLogger('silent', capture().stream), {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_SERVICE_NAME: 'envoy-authz',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    svc = await startInProcess(tmp.write('authz.yaml', configYaml({ server: { address: '127.0.0.1:0' }, routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }] })));
  });
  afterAll(async () => {
    await svc?.shutdown();
    await tracing?.shutdown();
    receiver?.server.close();
  });

  function check(req: CheckRequest, md: Metadata): Promise<void> {
    const Ctor = envoyProtos().envoy.service.auth.v3.Authorization;
    const c = new Ctor(svc.address, credentials.createInsecure());
    return new Promise((resolve, reject) =>
      c.Check(req, md, (err) => {
        c.close();
        if (err) reject(err);
        else resolve();
      }),
    );
  }

  async function checkSpanOf(traceId: string): Promise<{ parentSpanId: string } | undefined> {
    const until = Date.now() + 5000;
    for (;;) {
      const s = receiver.spans.find((x) => x.name === 'envoy-authz Check' && x.traceId === traceId);
      if (s || Date.now() > until) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('joins a W3C trace from the gRPC metadata', async () => {
    const md = new Metadata();
    md.set('traceparent', `00-${W3C_TRACE}-b7ad6b7169203331-01`);
    await check(checkRequest() as CheckRequest, md);
    expect((await checkSpanOf(W3C_TRACE))?.parentSpanId).toBe('b7ad6b7169203331');
  });

  it('joins a B3 trace from the HTTP headers inside the CheckRequest', async () => {
    const req = checkRequest({ headers: { 'x-b3-traceid': B3_TRACE, 'x-b3-spanid': 'e457b5a2e4d86bd1', 'x-b3-sampled': '1' } });
    await check(req as CheckRequest, new Metadata());
    expect((await checkSpanOf(B3_TRACE))?.parentSpanId).toBe('e457b5a2e4d86bd1');
    expect(svc.logs.lines().find((l) => l.event === 'check' && l.trace_id === B3_TRACE)).toBeDefined();
  });
});
