// Spans that say what happened: one `authenticate` span per credential the request carries (not
// one per configured method), the decision's route, reason and policy revision on the Check span,
// and the service's resource attributes. A real OTLP receiver collects; a real OPA bundle decides.
// (A file of its own: the tracer provider is process-global. The receiver reads int64 attributes as strings.)
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { createLogger } from '../../src/telemetry/logger.js';
import { setupTracing, type Tracing } from '../../src/telemetry/tracing.js';
import { authzClient, rlsClient, type AuthzClient, type RlsClient } from '../helpers/grpc.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { capture } from '../helpers/log.js';
import { buildBundle } from '../helpers/opa.js';
import { startOtlpReceiver, type ReceivedSpan } from '../helpers/otlp.js';
import { checkRequest, type ReqOptions } from '../helpers/requests.js';
import { configYaml, ROOT, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const REGO = `package envoy.authz
import rego.v1
default allow := false
allow if input.identity.subject == "alice"
allow if input.identity.subject == "svc-batch"
`;

describe('what the spans say', () => {
  const tmp = tempDir();
  const apiKey = generateApiKey('eak');
  let key: TestKey;
  let receiver: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let tracing: Tracing;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;
  let rls: RlsClient;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    tmp.write('apikeys.yaml', { keys: [{ id: apiKey.id, digest: digestApiKey(apiKey.key), owner: 'svc-batch', expires_at: new Date(Date.now() + 86400_000).toISOString() }] });
    buildBundle(tmp.dir, 'policy', { rego: REGO, revision: 'rev-7' });
    tmp.write('limits.yaml', 'domain: d\ndescriptors:\n  - key: user\n    rate_limit: {name: per-user, unit: minute, requests_per_unit: 1}\n  - key: route\n    rate_limit: {unit: minute, requests_per_unit: 1}\n');
    receiver = await startOtlpReceiver();
    tracing = await setupTracing(createLogger('silent', capture().stream), {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${receiver.port}`,
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=staging,team=platform%2Cauth',
    });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: {
            // Three methods configured; a request carries one or two of them.
            methods: ['jwt', 'api_key', 'mtls'],
            jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } }] },
            api_keys: { file: 'apikeys.yaml' },
            mtls: { trust_domains: [{ name: 'dev.local' }] },
          },
          policy: { bundle: { file: 'policy.tar.gz' } },
          ratelimit: { files: ['limits.yaml'] },
        }),
      ),
    );
    client = authzClient(svc.address);
    rls = rlsClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    rls?.close();
    await svc?.shutdown();
    await tracing?.shutdown();
    receiver?.server.close();
  });

  /** A CheckRequest with its own x-request-id (the audit record's request_id). */
  const request = (id: string, o: ReqOptions): ReturnType<typeof checkRequest> => checkRequest({ ...o, headers: { ...o.headers, 'x-request-id': id } });

  /** The Check span of the request with this id (found by its audit record's trace_id), and its trace. */
  async function traceOf(requestId: string): Promise<{ check: ReceivedSpan; trace: ReceivedSpan[] }> {
    const rec = svc.logs.lines().find((l) => l.event === 'check' && l.request_id === requestId);
    expect(rec?.trace_id, JSON.stringify(svc.logs.lines().slice(-3))).toBeDefined();
    const until = Date.now() + 5000;
    for (;;) {
      const trace = receiver.spans.filter((s) => s.traceId === rec!.trace_id);
      const check = trace.find((s) => s.name === 'envoy-authz Check');
      // The Check span ends last: its children are in by then.
      if (check) return { check, trace };
      if (Date.now() > until) throw new Error(`no Check span for ${requestId}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('a bearer token alone: one authenticate span (not one per configured method), with the route, reason and policy revision on the Check span', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const res = await client.check(request('one-token', { headers: { authorization: `Bearer ${token}` } }));
    expect(res.status?.code).toBe(0);
    const { check, trace } = await traceOf('one-token');
    const authn = trace.filter((s) => s.name === 'authenticate');
    expect(authn.map((s) => s.attributes['envoy_authz.methods'])).toEqual(['jwt']);
    expect(authn[0]!.parentSpanId).toBe(check.spanId);
    expect(check.attributes).toMatchObject({
      'envoy_authz.route': 'default',
      'envoy_authz.allowed': true,
      'envoy_authz.reason': 'ok',
      'envoy_authz.policy_revision': 'rev-7',
      'envoy_authz.auth_method': 'jwt',
    });
    expect(typeof check.attributes['envoy_authz.decision_id']).toBe('string');
  });

  it('a token and an API key: two authenticate spans; a policy denial says policy_denied with the revision', async () => {
    const token = await signToken(key, { sub: 'mallory' });
    const res = await client.check(request('two-credentials', { headers: { authorization: `Bearer ${token}`, 'x-api-key': apiKey.key } }));
    expect(res.denied_response?.status?.code).toBe('Forbidden');
    const { check, trace } = await traceOf('two-credentials');
    expect(trace.filter((s) => s.name === 'authenticate').map((s) => s.attributes['envoy_authz.methods']).sort()).toEqual(['api_key', 'jwt']);
    expect(check.attributes).toMatchObject({ 'envoy_authz.allowed': false, 'envoy_authz.reason': 'policy_denied', 'envoy_authz.status': '403', 'envoy_authz.policy_revision': 'rev-7' });
  });

  it('no credential: no authenticate span, reason credential_missing', async () => {
    const res = await client.check(request('no-credential', {}));
    expect(res.denied_response?.status?.code).toBe('Unauthorized');
    const { check, trace } = await traceOf('no-credential');
    expect(trace.filter((s) => s.name === 'authenticate')).toEqual([]);
    expect(check.attributes).toMatchObject({ 'envoy_authz.allowed': false, 'envoy_authz.reason': 'credential_missing', 'envoy_authz.status': '401' });
  });

  it('ShouldRateLimit names the limits that refused: configured name, else descriptor path, never a value', async () => {
    const descriptors: [string, string][][] = [[['user', 'carol']], [['route', 'secret-route-value']]];
    await rls.shouldRateLimit('d', descriptors);
    const res = await rls.shouldRateLimit('d', descriptors);
    expect(res.overall_code).toBe('OVER_LIMIT');
    const until = Date.now() + 5000;
    const over = (): ReceivedSpan | undefined => receiver.spans.find((s) => s.name === 'envoy-authz ShouldRateLimit' && s.attributes['envoy_authz.over_limit'] === true);
    while (!over() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(over()?.attributes).toMatchObject({ 'envoy_authz.domain': 'd', 'envoy_authz.limits_over': 'per-user,route' });
    expect(JSON.stringify(receiver.spans)).not.toContain('secret-route-value');
  });

  it('names the service: service.name, service.version, service.instance.id, and OTEL_RESOURCE_ATTRIBUTES (deployment.environment.name)', async () => {
    const { check } = await traceOf('one-token');
    expect(check.resource).toMatchObject({
      'service.name': 'envoy-authz',
      'service.version': (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
      'deployment.environment.name': 'staging',
      team: 'platform,auth',
    });
    expect(check.resource['service.instance.id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
