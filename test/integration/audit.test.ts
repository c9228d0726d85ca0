// Audit records: for an allowed, a denied, a rate-limited and an errored request, the record
// exists with every field the SRG asks for, and no secret appears anywhere in the log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authzClient, rlsClient, type AuthzClient, type RlsClient } from '../helpers/grpc.js';
import { loopbackServer } from '../helpers/http.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const DECISION_FIELDS = ['time', 'decision_id', 'trace_id', 'request_id', 'source', 'method', 'host', 'path', 'query_keys', 'route', 'allowed', 'status', 'reason', 'duration_ms'];
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('audit records', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let authz: AuthzClient;
  let rls: RlsClient;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    tmp.write('limits.yaml', 'domain: a\ndescriptors:\n  - key: user\n    rate_limit: {unit: minute, requests_per_unit: 1, name: per-user}\n');
    const hang = await loopbackServer(() => undefined);
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          check: { deadline_ms: 100 },
          authentication: {
            jwt: {
              issuers: [
                { issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } },
                { issuer: 'https://slow.test.invalid', audiences: [AUDIENCE], jwks: { url: `${hang.url}/jwks`, allow_insecure_http: true } },
              ],
            },
          },
          ratelimit: { files: ['limits.yaml'] },
        }),
      ),
    );
    authz = authzClient(svc.address);
    rls = rlsClient(svc.address);
  });
  afterAll(async () => {
    authz?.close();
    rls?.close();
    await svc?.shutdown();
  });

  it('records allowed, denied, rate-limited and errored requests completely, and no secret', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const slow = await signToken(key, { iss: 'https://slow.test.invalid' });
    const traceparent = `00-${TRACE}-00f067aa0ba902b7-01`;
    await authz.check(checkRequest({ path: '/orders?limit=5&secret=abc', headers: { authorization: `Bearer ${token}`, traceparent, cookie: `s=${token}` } }));
    await authz.check(checkRequest({ path: '/orders', headers: { authorization: `Bearer ${token}x` } }));
    await authz.check(checkRequest({ headers: { authorization: `Bearer ${slow}` } })).catch(() => undefined);
    await rls.shouldRateLimit('a', [[['user', 'alice']]]);
    await rls.shouldRateLimit('a', [[['user', 'alice']]]);

    const lines = svc.logs.lines();
    const allowed = lines.find((l) => l.event === 'check' && l.allowed === true)!;
    const denied = lines.find((l) => l.event === 'check' && l.allowed === false)!;
    for (const rec of [allowed, denied]) for (const f of DECISION_FIELDS) expect(rec, `field ${f}`).toHaveProperty(f);
    expect(allowed).toMatchObject({ trace_id: TRACE, subject: 'alice', issuer: ISSUER, auth_method: 'jwt', status: 200, reason: 'ok', path: '/orders', query_keys: ['limit', 'secret'] });
    expect(denied).toMatchObject({ status: 401, reason: 'signature_invalid' });
    expect(typeof allowed.decision_id).toBe('string');
    expect(allowed.decision_id).not.toBe(denied.decision_id);

    const errored = lines.find((l) => l.event === 'check_error')!;
    expect(errored).toMatchObject({ code: 'deadline_exceeded', allowed: false, method: 'GET', path: '/orders' });
    expect(errored).toHaveProperty('decision_id');

    const limited = lines.find((l) => l.event === 'ratelimit')!;
    expect(limited).toMatchObject({ domain: 'a', limit: 'per-user', shadow: false, descriptor: [{ key: 'user', value: 'alice' }] });

    const text = svc.logs.text();
    for (const t of [token, slow]) for (const part of t.split('.')) expect(text).not.toContain(part);
    expect(text).not.toContain('abc');
  });
});
