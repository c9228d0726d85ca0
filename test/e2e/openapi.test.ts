// End to end: OpenAPI validation of real HTTP requests through a real Envoy (envoy/envoy.yaml:
// ext_authz with with_request_body, 8 KiB, partial bodies marked). Bodies travel in the Check;
// refusals are problem+json and never reach the upstream; a cut body is refused with 413.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { startStack, type Stack } from '../helpers/stack.js';
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
      authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } }] } },
      openapi: { specs: [{ name: 'pets', file: join(FIXTURES, 'petstore-30.yaml') }] },
    });
    bearer = `Bearer ${await signToken(key, { sub: 'alice' })}`;
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
