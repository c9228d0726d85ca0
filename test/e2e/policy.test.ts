// End to end: the example Rego policy (policies/) compiled to wasm decides requests that pass
// through a real Envoy: roles grant access, the admin path is for admins, policy headers arrive.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send } from '../helpers/client.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildRepoPolicies } from '../helpers/opa.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

describe('policy through Envoy', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    stack = await startStack(tmp, {
      authentication: { jwt: { issuers: [jwksFileIssuer()] } },
      routes: [{ name: 'health', match: { path_exact: '/healthz' }, public: true }],
      policy: { bundle: { file: 'bundle.tar.gz' } },
    });
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up', claims: { roles: ['buyer'] } })}` }, '/orders/1');
  });
  afterAll(() => stack?.stop());

  const as = async (roles: string[], path: string) => {
    stack.clear();
    const token = await signToken(key, { sub: `user-${roles.join('-') || 'none'}`, claims: { roles } });
    return send(`${stack.http}${path}`, { headers: { authorization: `Bearer ${token}` } });
  };

  it('a user with the right role gets 200, and the policy\'s headers reach upstream and client', async () => {
    const r = await as(['buyer'], '/orders/1');
    expect(r.status).toBe(200);
    expect(stack.seen[0]?.['x-authz-roles']).toBe('buyer');
    expect(r.headers['x-authz-policy']).toBe('example-rbac');
  });

  it('a user without the role gets 403 with the uniform body, and nothing reaches upstream', async () => {
    const r = await as([], '/orders/1');
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ error: 'forbidden', message: 'Access denied.' });
    expect(stack.seen).toHaveLength(0);
  });

  it('the admin path is 403 for non-admins and open to admins', async () => {
    const denied = await as(['buyer'], '/admin/users');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ message: 'Administrators only.' });
    expect((await as(['admin'], '/admin/users')).status).toBe(200);
  });

  it('public paths stay open without a credential', async () => {
    expect((await send(`${stack.http}/healthz`)).status).toBe(200);
  });
});
