// End to end: Envoy's ratelimit filter after ext_authz, asking envoy-authz's RateLimitService
// with descriptors built from the verified identity.
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoUpstream } from '../../src/dev/echo-upstream.js';
import { devCerts } from '../helpers/certs.js';
import { send } from '../helpers/client.js';
import { envoyPorts, freePort, renderEnvoyConfig, startEnvoy, type EnvoyPorts, type RunningEnvoy } from '../helpers/envoy.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { configYaml, spawnService, type ServiceProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

describe('per-user rate limits through Envoy', () => {
  const tmp = tempDir();
  let key: TestKey;
  let ports: EnvoyPorts;
  let authz: ServiceProcess;
  let envoy: RunningEnvoy;
  let upstream: Server;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    tmp.write(
      'limits.yaml',
      `domain: envoy-authz
descriptors:
  - key: user
    rate_limit: {name: per-user, unit: minute, requests_per_unit: 3}
`,
    );
    const authzPort = await freePort();
    authz = await spawnService([
      '--config',
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: `127.0.0.1:${authzPort}` },
          authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } }] }, brute_force: { max_failures: 3, window_s: 60 } },
          ratelimit: { files: ['limits.yaml'], algorithm: 'fixed_window', headers: 'both' },
        }),
      ),
    ]);
    const echo = await startEchoUpstream('127.0.0.1', 0);
    upstream = echo.server;
    ports = await envoyPorts(authzPort, echo.port);
    envoy = await startEnvoy(renderEnvoyConfig(ports, devCerts(join(tmp.dir, 'certs')).dir, join(tmp.dir, 'envoy.yaml')), ports.admin);
  });

  afterAll(async () => {
    await envoy?.stop();
    await authz?.stop();
    upstream?.close();
  });

  const get = async (sub: string) => send(`http://127.0.0.1:${ports.http}/orders`, { headers: { authorization: `Bearer ${await signToken(key, { sub })}` } });

  it('the N+1th request of a user gets 429 with Retry-After and RateLimit headers; another user is still served', async () => {
    const first = await get('carol');
    expect(first.status).toBe(200);
    expect(first.headers['ratelimit-policy']).toBe('"per-user";q=3;w=60');
    expect(first.headers.ratelimit).toMatch(/^"per-user";r=2;t=\d+$/);
    expect(first.headers['x-ratelimit-remaining']).toBe('2');
    expect((await get('carol')).status).toBe(200);
    expect((await get('carol')).status).toBe(200);
    const limited = await get('carol');
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(limited.headers.ratelimit).toMatch(/^"per-user";r=0;t=\d+$/);
    expect((await get('dave')).status).toBe(200);
  });

  it('a client cannot pick its own rate-limit identity: spoofed x-auth-subject is replaced', async () => {
    const r = await send(`http://127.0.0.1:${ports.http}/orders`, {
      headers: { authorization: `Bearer ${await signToken(key, { sub: 'erin' })}`, 'x-auth-subject': 'carol' },
    });
    expect(r.status).toBe(200);
  });

  it('answers 429 after repeated failed authentications from one address, before verifying', async () => {
    const bad = { authorization: `Bearer ${await signToken(await makeKey(), { sub: 'mallory' })}` };
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await send(`http://127.0.0.1:${ports.http}/orders`, { headers: bad })).status);
    expect(codes).toEqual([401, 401, 401, 429, 429]);
    const lines = authz.lines.filter((l) => l.event === 'check' && l.reason === 'too_many_failures');
    expect(lines.length).toBe(2);
  });
});
