// End to end: OpenAPI validation of real HTTP requests through a real Envoy (envoy/envoy.yaml:
// ext_authz with with_request_body, 8 KiB, partial bodies marked). Bodies travel in the Check;
// refusals are problem+json and never reach the upstream; a cut body is refused with 413.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildRepoPolicies } from '../helpers/opa.js';
import { ROOT } from '../helpers/service.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'openapi');

describe('OpenAPI validation through Envoy', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;
  let bearer: string;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    stack = await startStack(tmp, {
      authentication: { jwt: { issuers: [jwksFileIssuer()] } },
      openapi: { specs: [{ name: 'pets', file: join(FIXTURES, 'petstore-30.yaml') }] },
    });
    bearer = `Bearer ${await signToken(key, { sub: 'alice' })}`;
    await warmUp(stack, { authorization: bearer }, '/pets?limit=1');
  });
  afterAll(() => stack?.stop());

  const post = (path: string, body: string, type = 'application/json', auth = true) => {
    stack.clear();
    return send(`${stack.http}${path}`, {
      method: 'POST',
      headers: { 'content-type': type, 'content-length': Buffer.byteLength(body), ...(auth ? { authorization: bearer } : {}) },
      body,
    });
  };
  const get = (path: string, headers: Record<string, string> = {}) => {
    stack.clear();
    return send(`${stack.http}${path}`, { headers: { authorization: bearer, 'x-tenant': 'acme', ...headers } });
  };

  it('forwards a valid JSON body to the upstream', async () => {
    const r = await post('/pets', JSON.stringify({ name: 'Rex', kind: 'dog', owner: { email: 'alice@example.test' } }));
    expect(r.status).toBe(200);
    expect(stack.seen).toHaveLength(1);
  });

  it('refuses an invalid body with problem+json naming the pointer, and the upstream sees nothing', async () => {
    const r = await post('/pets', JSON.stringify({ name: 'Rex', kind: 'unicorn-SECRET' }));
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toBe('application/problem+json');
    expect(r.body).not.toContain('unicorn-SECRET');
    expect(JSON.parse(r.body)).toMatchObject({ status: 400, errors: [{ in: 'body', pointer: '/kind' }] });
    expect(stack.seen).toHaveLength(0);
  });

  it('validates form bodies too', async () => {
    expect((await post('/pets', 'name=Rex&age=3', 'application/x-www-form-urlencoded')).status).toBe(200);
    expect((await post('/pets', 'name=Rex&age=old', 'application/x-www-form-urlencoded')).status).toBe(400);
  });

  it('refuses a body larger than Envoy sends to ext_authz (413), since it cannot be validated', async () => {
    const big = JSON.stringify({ name: 'Rex', kind: 'dog', pad: 'x'.repeat(20_000) });
    const r = await post('/pets', big);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.body)).toMatchObject({ status: 413, title: 'Content Too Large' });
    expect(stack.seen).toHaveLength(0);
  });

  it('validates parameters: 400 for a bad one, 404 undocumented, 405 with Allow', async () => {
    expect((await get('/pets?limit=5')).status).toBe(200);
    const bad = await get('/pets?limit=500');
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ errors: [{ in: 'query', name: 'limit', problem: 'must be <= 100' }] });
    expect((await get('/pets', { 'x-tenant': 'NOT VALID' })).status).toBe(400);
    expect((await get('/owners')).status).toBe(404);
    const m = await send(`${stack.http}/pets/7d3f8a52-1c1e-4a53-9f7e-2b0c3c1d9e10`, { method: 'PUT', headers: { authorization: bearer } });
    expect(m.status).toBe(405);
    expect(m.headers.allow).toBe('DELETE, GET');
  });

  it('answers 401, not a validation error, to a caller without a credential (REC-API-14)', async () => {
    const r = await post('/pets', JSON.stringify({ kind: 'unicorn' }), 'application/json', false);
    expect(r.status).toBe(401);
    expect(r.headers['content-type']).toBe('application/json');
  });
});

// The README's curl lines, against the dev stack's spec (envoy/local/openapi.yaml) and the example
// policy (policies/), through Envoy: what `make run` shows.
describe('the local stack\'s API description and example policy (README)', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    stack = await startStack(tmp, {
      authentication: { jwt: { issuers: [jwksFileIssuer()] } },
      routes: [{ name: 'public-health', match: { path_exact: '/healthz', methods: ['GET', 'HEAD'] }, public: true }],
      policy: { bundle: { file: 'bundle.tar.gz' } },
      openapi: { specs: [{ name: 'demo', file: join(ROOT, 'envoy', 'local', 'openapi.yaml') }] },
    });
    for (let i = 0; i < 10 && (await as({ path: '/hello' })).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
  });
  afterAll(() => stack?.stop());

  // `make token` defaults: role buyer, scope orders:read.
  const as = async (o: { roles?: string[]; scope?: string; method?: string; path: string; body?: string }) => {
    const token = await signToken(key, { sub: 'dev-user', claims: { roles: o.roles ?? ['buyer'], scope: o.scope ?? 'orders:read' } });
    const body = o.body;
    return send(`${stack.http}${o.path}`, {
      method: o.method ?? 'GET',
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
      ...(body !== undefined ? { body } : {}),
    });
  };

  it('200 for a good parameter, 400 problem+json for a bad one, 404 for an undocumented path, 401 first', async () => {
    expect((await as({ path: '/hello?count=3' })).status).toBe(200);
    const bad = await as({ path: '/hello?count=99' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'A parameter does not match the API description.',
      errors: [{ in: 'query', name: 'count', problem: 'must be <= 10' }],
    });
    expect((await as({ path: '/hello/world' })).status).toBe(404);
    expect((await send(`${stack.http}/hello?count=99`)).status).toBe(401);
    expect((await send(`${stack.http}/healthz`)).status).toBe(200);
  });

  it('bodies and methods for an admin with orders:write; the spec\'s scopes and admin tag reach the policy', async () => {
    const admin = { roles: ['admin'], scope: 'orders:write' };
    const bad = await as({ ...admin, method: 'POST', path: '/orders', body: '{"item":"tea","quantity":500}' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ errors: [{ in: 'body', pointer: '/quantity', problem: 'must be <= 99' }] });
    expect((await as({ ...admin, method: 'POST', path: '/orders', body: '{"item":"tea","quantity":5}' })).status).toBe(200);
    const put = await as({ ...admin, method: 'PUT', path: '/orders/7' });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('DELETE, GET');
    // createOrder needs orders:write (its security requirement): an admin without it is refused by the policy.
    expect((await as({ roles: ['admin'], method: 'POST', path: '/orders', body: '{"item":"tea","quantity":5}' })).status).toBe(403);
    // deleteOrder is tagged admin.
    expect((await as({ roles: ['buyer'], scope: 'orders:write orders:read', method: 'DELETE', path: '/orders/7' })).status).toBe(403);
  });
});
