// End to end: the shipped envoy/envoy.yaml, tracer included (as `make run` runs it), with its
// collector cluster pointed at a real OTLP/gRPC receiver; envoy-authz exports there too. One
// request gives one trace: Envoy's spans and ours share the trace id, our Check span is a child
// of Envoy's ext_authz span (ShouldRateLimit of its ratelimit span), and no span attribute
// carries the token. Without a collector the same stack serves as usual.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { startOtlpGrpcReceiver, type ReceivedSpan } from '../helpers/otlp.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('one trace through Envoy and envoy-authz', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;
  let receiver: Awaited<ReturnType<typeof startOtlpGrpcReceiver>>;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    receiver = await startOtlpGrpcReceiver();
    stack = await startStack(
      tmp,
      { authentication: { jwt: { issuers: [jwksFileIssuer()] } } },
      {
        tracingCollectorPort: receiver.port,
        env: {
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
          OTEL_BSP_SCHEDULE_DELAY: '100',
        },
      },
    );
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
  });
  afterAll(async () => {
    await stack?.stop();
    receiver?.server.forceShutdown();
  });

  /** The spans of `traceId` once ours (Check, ShouldRateLimit) and Envoy's ingress span are in. */
  async function traceOf(traceId: string): Promise<ReceivedSpan[]> {
    const until = Date.now() + 10_000;
    for (;;) {
      const found = receiver.spans.filter((s) => s.traceId === traceId);
      const names = new Set(found.map((s) => s.name));
      const envoyRoot = found.some((s) => s.service === 'envoy' && s.parentSpanId === '');
      if ((names.has('envoy-authz Check') && names.has('envoy-authz ShouldRateLimit') && envoyRoot) || Date.now() > until) return found;
      await sleep(100);
    }
  }

  const byIdOf = (spans: ReceivedSpan[]): Map<string, ReceivedSpan> => new Map(spans.map((s) => [s.spanId, s]));

  it('joins Envoy\'s trace: Check under Envoy\'s ext_authz span, ShouldRateLimit under its ratelimit span, no token in attributes', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const r = await send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status, r.body).toBe(200);

    const isOurs = (s: ReceivedSpan): boolean => s.name === 'envoy-authz Check' && s.attributes['enduser.id'] === 'alice';
    const until = Date.now() + 10_000;
    while (!receiver.spans.some(isOurs) && Date.now() < until) await sleep(100);
    const check = receiver.spans.find(isOurs);
    expect(check, `spans: ${receiver.spans.map((s) => `${s.service}:${s.name}`).join(', ')}`).toBeDefined();
    const trace = await traceOf(check!.traceId);
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const shown = trace.map((s) => `${s.service}:${s.name} ${s.spanId}<-${s.parentSpanId}`).join('\n');

    // Envoy's spans: the ingress span (the root), and one per gRPC call it made for the request.
    const envoySpans = trace.filter((s) => s.service === 'envoy');
    expect(envoySpans.filter((s) => s.parentSpanId === ''), shown).toHaveLength(1);
    const checkParent = byId.get(check!.parentSpanId);
    expect(checkParent, shown).toMatchObject({ service: 'envoy' });
    expect(checkParent!.name).toMatch(/envoy\.service\.auth\.v3\.Authorization\.Check/);
    const rls = trace.find((s) => s.name === 'envoy-authz ShouldRateLimit');
    expect(byId.get(rls!.parentSpanId), shown).toMatchObject({ service: 'envoy' });
    expect(byId.get(rls!.parentSpanId)!.name).toMatch(/envoy\.service\.ratelimit\.v3\.RateLimitService\.ShouldRateLimit/);

    expect(check!.attributes).toMatchObject({ 'envoy_authz.allowed': true, 'envoy_authz.reason': 'ok', 'enduser.id': 'alice' });
    const children = trace.filter((s) => s.parentSpanId === check!.spanId).map((s) => s.name);
    expect(children).toEqual(expect.arrayContaining(['authenticate']));
    expect(trace.some((s) => s.name === 'jwt.verify')).toBe(true);

    const everything = JSON.stringify(receiver.spans);
    for (const part of token.split('.')) expect(everything).not.toContain(part);

    // The audit record names the same trace.
    const rec = stack.authz.lines.find((l) => l.event === 'check' && l.subject === 'alice');
    expect(rec?.trace_id).toBe(check!.traceId);

    // The same token again: verified from the cache, the Check decided without waiting. Its span
    // and its stage spans are still made, ended and joined the same way.
    const again = await send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status, again.body).toBe(200);
    const second = (s: ReceivedSpan): boolean => isOurs(s) && s.traceId !== check!.traceId;
    const until2 = Date.now() + 10_000;
    while (!receiver.spans.some(second) && Date.now() < until2) await sleep(100);
    const cached = receiver.spans.find(second);
    expect(cached, `spans: ${receiver.spans.map((s) => `${s.service}:${s.name}`).join(', ')}`).toBeDefined();
    expect(cached!.attributes).toMatchObject({ 'envoy_authz.allowed': true, 'envoy_authz.reason': 'ok' });
    const trace2 = await traceOf(cached!.traceId);
    expect(byIdOf(trace2).get(cached!.parentSpanId)).toMatchObject({ service: 'envoy' });
    const stages = trace2.filter((s) => s.parentSpanId === cached!.spanId).map((s) => s.name);
    expect(stages).toEqual(expect.arrayContaining(['authenticate']));
    expect(trace2.some((s) => s.name === 'jwt.verify')).toBe(false);
  });

  it('turns off at run time (runtime_modify tracing.global_enabled=0): no spans from Envoy, nor from us (we follow its unsampled traceparent)', async () => {
    const modify = (v: number): Promise<Response> => fetch(`http://127.0.0.1:${stack.ports.admin}/runtime_modify?tracing.global_enabled=${v}`, { method: 'POST' });
    expect((await modify(0)).status).toBe(200);
    try {
      // Let the earlier test's batches land first.
      await sleep(500);
      const before = receiver.spans.length;
      const token = await signToken(key, { sub: 'dave' });
      expect((await send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      // Both flush every 100 ms here: anything made for this request would be in by now.
      await sleep(1500);
      expect(stack.authz.lines.some((l) => l.event === 'check' && l.subject === 'dave')).toBe(true);
      expect(receiver.spans.slice(before).map((s) => `${s.service}:${s.name}`)).toEqual([]);
    } finally {
      await modify(100);
    }
  });
});

describe('the shipped tracer without a collector', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    // No tracingCollectorPort: Envoy's otel_collector cluster points at a port nothing listens on.
    stack = await startStack(tmp, { authentication: { jwt: { issuers: [jwksFileIssuer()] } } });
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('starts and serves; exports fail (its stats say so) and cost no request', async () => {
    const token = await signToken(key, { sub: 'bob' });
    const ok = async (): Promise<void> => expect((await send(`${stack.http}/orders`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    await ok();
    expect((await send(`${stack.http}/orders`)).status).toBe(401);
    // Envoy flushes its spans every 5 s: wait for the export to the absent collector to fail.
    const stat = async (): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${stack.ports.admin}/stats?filter=^cluster\\.otel_collector\\.upstream_cx_connect_fail$`)).text();
      return Number(/: (\d+)/.exec(text)?.[1] ?? 0);
    };
    const until = Date.now() + 15_000;
    while ((await stat()) === 0 && Date.now() < until) await sleep(250);
    expect(await stat()).toBeGreaterThan(0);
    await ok();
    expect(stack.envoy.process.exitCode).toBeNull();
  });
});
