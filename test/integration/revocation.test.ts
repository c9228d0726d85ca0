// Revocation across two running instances sharing a real Redis, through the authenticated admin API.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { send } from '../helpers/client.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789abcdef';

async function eventually(fn: () => Promise<boolean>, ms = 1000): Promise<number> {
  const start = Date.now();
  while (!(await fn())) {
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - start;
}

describe('revocation shared through Redis', () => {
  const tmp = tempDir();
  let redis: TestRedis;
  let key: TestKey;
  let a: Awaited<ReturnType<typeof startInProcess>>;
  let b: Awaited<ReturnType<typeof startInProcess>>;
  let ca: AuthzClient;
  let cb: AuthzClient;
  const apiKey = generateApiKey('eak');

  beforeAll(async () => {
    redis = await startRedis();
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    await redis.client.hset(
      'test:apikeys',
      apiKey.id,
      JSON.stringify({ id: apiKey.id, digest: digestApiKey(apiKey.key), owner: 'svc-batch', expires_at: new Date(Date.now() + 86400_000).toISOString() }),
    );
    const file = tmp.write(
      'authz.yaml',
      configYaml({
        server: { address: '127.0.0.1:0' },
        authentication: {
          jwt: { issuers: [jwksFileIssuer()] },
          api_keys: { redis: true },
        },
        admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN_TOKEN).digest('hex') }] },
        revocation: { store: 'redis' },
        redis: { url: redis.url, key_prefix: 'test:' },
      }),
    );
    a = await startInProcess(file);
    b = await startInProcess(file);
    ca = authzClient(a.address);
    cb = authzClient(b.address);
  });

  afterAll(async () => {
    ca?.close();
    cb?.close();
    await a?.shutdown();
    await b?.shutdown();
    await redis?.stop();
  });

  const admin = (svc: { adminAddress: string }, method: string, path: string, body?: unknown, token = ADMIN_TOKEN) =>
    send(`http://${svc.adminAddress}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });

  const allowed = async (c: AuthzClient, headers: Record<string, string>): Promise<boolean> =>
    (await c.check(checkRequest({ headers }))).status?.code === 0;

  it('authenticates API keys stored in Redis', async () => {
    expect(await allowed(ca, { 'x-api-key': apiKey.key })).toBe(true);
  });

  it('a jti revoked on one instance is denied by both within a second', async () => {
    const token = await signToken(key, { claims: { jti: 'jti-to-revoke' } });
    const auth = { authorization: `Bearer ${token}` };
    expect(await allowed(ca, auth)).toBe(true);
    expect(await allowed(cb, auth)).toBe(true);

    const r = await admin(a, 'POST', '/v1/revocations', { kind: 'jti', value: 'jti-to-revoke', ttl_s: 600, reason: 'leaked' });
    expect(r.status).toBe(201);
    expect(await allowed(ca, auth)).toBe(false);
    expect(await eventually(async () => !(await allowed(cb, auth)))).toBeLessThan(1000);
    const denied = await cb.check(checkRequest({ headers: auth }));
    expect(denied.denied_response?.status?.code).toBe('Unauthorized');

    expect((await admin(b, 'DELETE', '/v1/revocations/jti/jti-to-revoke')).status).toBe(204);
    await eventually(async () => (await allowed(ca, auth)) && (await allowed(cb, auth)));
  });

  it('a revoked API key id is denied by both instances', async () => {
    const h = { 'x-api-key': apiKey.key };
    expect((await admin(b, 'POST', '/v1/revocations', { kind: 'api_key', value: apiKey.id })).status).toBe(201);
    await eventually(async () => !(await allowed(ca, h)) && !(await allowed(cb, h)));
    const list = JSON.parse((await admin(a, 'GET', '/v1/revocations')).body) as { entries: { kind: string; value: string; createdBy: string }[] };
    expect(list.entries).toContainEqual(expect.objectContaining({ kind: 'api_key', value: apiKey.id, createdBy: 'ops' }));
  });

  it('a new instance loads the existing deny list from Redis', async () => {
    await admin(a, 'POST', '/v1/revocations', { kind: 'subject', value: 'mallory' });
    const late = await startInProcess(tmp.dir + '/authz.yaml');
    const c = authzClient(late.address);
    try {
      expect(await allowed(c, { authorization: `Bearer ${await signToken(key, { sub: 'mallory' })}` })).toBe(false);
      expect(await allowed(c, { authorization: `Bearer ${await signToken(key, { sub: 'alice' })}` })).toBe(true);
    } finally {
      c.close();
      await late.shutdown();
    }
  });

  it('requires an admin token for state-changing endpoints and audits every call', async () => {
    expect((await admin(a, 'POST', '/v1/revocations', { kind: 'subject', value: 'x' }, 'wrong')).status).toBe(401);
    expect((await send(`http://${a.adminAddress}/v1/revocations`)).status).toBe(401);
    expect((await admin(a, 'POST', '/v1/revocations', { kind: 'nope', value: 'x' })).status).toBe(400);
    expect((await admin(a, 'POST', '/v1/revocations', { kind: 'cidr', value: '10.0.0.0/99' })).status).toBe(400);
    const audit = a.logs.lines().filter((l) => l.event === 'admin');
    expect(audit).toContainEqual(expect.objectContaining({ actor: null, result: 'error', status: 401 }));
    expect(audit).toContainEqual(expect.objectContaining({ actor: 'ops', action: 'add', kind: 'jti', value: 'jti-to-revoke', reason: 'leaked', result: 'ok' }));
    expect(a.logs.text()).not.toContain(ADMIN_TOKEN);
  });

  it('serves health and readiness without authentication', async () => {
    expect((await send(`http://${a.adminAddress}/healthz`)).status).toBe(200);
    const ready = await send(`http://${a.adminAddress}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ ready: true, components: { grpc: 'serving', revocation: 'ready' } });
  });
});
