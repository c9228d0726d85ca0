// End to end: the example Rego policy (policies/) compiled to wasm decides requests that pass
// through a real Envoy: roles grant access, the admin path is for admins, policy headers arrive.
import type { IncomingHttpHeaders, Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { devCerts } from '../helpers/certs.js';
import { send } from '../helpers/client.js';
import { envoyPorts, freePort, renderEnvoyConfig, startEnvoy, type EnvoyPorts, type RunningEnvoy } from '../helpers/envoy.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { buildRepoPolicies } from '../helpers/opa.js';
import { configYaml, spawnService, type ServiceProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('policy through Envoy', () => {
  const tmp = tempDir();
  let key: TestKey;
  let ports: EnvoyPorts;
  let authz: ServiceProcess;
  let envoy: RunningEnvoy;
  let upstream: Server;
  let seen: IncomingHttpHeaders[] = [];

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    const authzPort = await freePort();
    authz = await spawnService([
      '--config',
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: `127.0.0.1:${authzPort}` },
          authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } }] } },
          routes: [{ name: 'health', match: { path_exact: '/healthz' }, public: true }],
          policy: { bundle: { file: 'bundle.tar.gz' } },
        }),
      ),
    ]);
    const echo = await startEchoUpstream('127.0.0.1', 0, (h) => seen.push(h));
    upstream = echo.server;
    ports = await envoyPorts(authzPort, echo.port);
    envoy = await startEnvoy(renderEnvoyConfig(ports, devCerts(join(tmp.dir, 'certs')).dir, join(tmp.dir, 'envoy.yaml')), ports.admin);
  });

  afterAll(async () => {
    await envoy?.stop();
    await authz?.stop();
    upstream?.close();
  });

  const as = async (roles: string[], path: string) => {
    seen = [];
    const token = await signToken(key, { sub: `user-${roles.join('-') || 'none'}`, claims: { roles } });
    return send(`http://127.0.0.1:${ports.http}${path}`, { headers: { authorization: `Bearer ${token}` } });
  };

  it('a user with the right role gets 200, and the policy\'s headers reach upstream and client', async () => {
    const r = await as(['buyer'], '/orders/1');
    expect(r.status).toBe(200);
    expect(seen[0]?.['x-authz-roles']).toBe('buyer');
    expect(r.headers['x-authz-policy']).toBe('example-rbac');
  });

  it('a user without the role gets 403 with the uniform body, and nothing reaches upstream', async () => {
    const r = await as([], '/orders/1');
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body)).toEqual({ error: 'forbidden', message: 'Access denied.' });
    expect(seen).toHaveLength(0);
  });

  it('the admin path is 403 for non-admins and open to admins', async () => {
    const denied = await as(['buyer'], '/admin/users');
    expect(denied.status).toBe(403);
    expect(JSON.parse(denied.body)).toMatchObject({ message: 'Administrators only.' });
    expect((await as(['admin'], '/admin/users')).status).toBe(200);
  });

  it('public paths stay open without a credential', async () => {
    expect((await send(`http://127.0.0.1:${ports.http}/healthz`)).status).toBe(200);
  });
});
