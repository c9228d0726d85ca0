// End to end: Envoy's OpenTelemetry tracer on, exporting to a real OTLP receiver; envoy-authz
// exports there too. Envoy's spans and ours share one trace, ours are children of Envoy's
// ext_authz span, and no span attribute carries the token.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

describe('traces through Envoy', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    receiver = await startOtlpReceiver();
    stack = await startStack(
      tmp,
      { authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } }] } } },
      {
        tracingCollectorPort: receiver.port,
        env: {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
          OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
          OTEL_BSP_SCHEDULE_DELAY: '100',
          OTEL_SERVICE_NAME: 'envoy-authz',
        },
      },
    );
  });
  afterAll(async () => {
    await stack?.stop();
    receiver?.server.close();
  });

  async function spansOf(traceId: string, ours: number, timeoutMs = 10_000): Promise<ReceivedSpan[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = receiver.spans.filter((s) => s.traceId === traceId);
      if (found.filter((s) => s.service === 'envoy-authz').length >= ours && found.some((s) => s.service === 'envoy')) return found;
      if (Date.now() > until) return found;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('joins Envoy\'s trace: our Check span is a child of Envoy\'s, stages are children of ours, no token in attributes', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const r = await send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(200);

    const until = Date.now() + 10_000;
    while (!receiver.spans.some((s) => s.name === 'envoy-authz Check') && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
    const check = receiver.spans.find((s) => s.name === 'envoy-authz Check');
    expect(check, `spans: ${receiver.spans.map((s) => `${s.service}:${s.name}`).join(', ')}`).toBeDefined();
    const trace = await spansOf(check!.traceId, 3);
    const envoySpans = trace.filter((s) => s.service === 'envoy');
    expect(envoySpans.length).toBeGreaterThan(0);
    // Our server span hangs under a span Envoy created for the ext_authz call.
    expect(envoySpans.map((s) => s.spanId)).toContain(check!.parentSpanId);
    expect(check!.attributes).toMatchObject({ 'envoy_authz.allowed': true, 'envoy_authz.reason': 'ok', 'enduser.id': 'alice' });
    const children = trace.filter((s) => s.parentSpanId === check!.spanId).map((s) => s.name);
    expect(children).toEqual(expect.arrayContaining(['authenticate']));
    expect(trace.some((s) => s.name === 'jwt.verify')).toBe(true);
    // The rate-limit call of the same request is in the same trace.
    expect(trace.some((s) => s.name === 'envoy-authz ShouldRateLimit')).toBe(true);

    const everything = JSON.stringify(receiver.spans);
    for (const part of token.split('.')) expect(everything).not.toContain(part);

    // The audit record names the same trace.
    const rec = stack.authz.lines.find((l) => l.event === 'check' && l.subject === 'alice');
    expect(rec?.trace_id).toBe(check!.traceId);
  });
});
