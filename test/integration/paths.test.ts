// Route matching on the normalized path, through the real gRPC Check: an Envoy configured without
// normalize_path (Istio, hand-written configs) must not let `/docs/../orders` pass as `/docs`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('route matching on the normalized path', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } }] } },
          routes: [{ name: 'docs', match: { path_prefix: '/docs' }, public: true }],
        }),
      ),
    );
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  const answer = async (path: string, headers: Record<string, string> = {}): Promise<{ status: string; body?: string }> => {
    const res = await client.check(checkRequest({ path, headers }));
    return res.status?.code === 0 ? { status: 'OK' } : { status: String(res.denied_response?.status?.code), ...(res.denied_response?.body ? { body: res.denied_response.body } : {}) };
  };

  it('evaluates /docs/../orders as /orders: not the public /docs route', async () => {
    expect(await answer('/docs/guide')).toEqual({ status: 'OK' });
    expect((await answer('/docs/../orders')).status).toBe('Unauthorized');
    expect((await answer('/docs/%2e%2e/orders')).status).toBe('Unauthorized');
    expect((await answer('/docs/.%2E/orders?x=/docs')).status).toBe('Unauthorized');
    expect(await answer('//docs//guide')).toEqual({ status: 'OK' });
    expect(await answer('/%64ocs/guide')).toEqual({ status: 'OK' });
    // And the caller of /orders is the one verified.
    expect(await answer('/docs/../orders', { authorization: `Bearer ${await signToken(key, { sub: 'alice' })}` })).toEqual({ status: 'OK' });
    const line = svc.logs.lines().find((l) => l.event === 'check' && l.path === '/orders' && l.reason === 'credential_missing');
    expect(line, 'the audit line names the normalized path').toBeDefined();
  });

  it('answers 400 with one body for paths that cannot be normalized safely', async () => {
    for (const path of ['/docs/../../orders', '/docs\\..\\orders', '/docs/%zz', '/docs/%00', 'docs/x', '/docs/a b']) {
      expect(await answer(path), path).toEqual({ status: 'BadRequest', body: '{"error":"bad_request","message":"The request path is not valid."}' });
    }
    expect(svc.logs.lines().some((l) => l.event === 'check' && l.reason === 'path_invalid' && l.status === 400)).toBe(true);
  });
});
