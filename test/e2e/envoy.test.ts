// End to end: real Envoy (envoy/envoy.yaml) + envoy-authz as a process + the demo upstream.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevCerts } from '../helpers/certs.js';
import { send } from '../helpers/client.js';
import type { EnvoyPorts } from '../helpers/envoy.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';
import { legacyTlsServer, offerTls11 } from '../helpers/tls-probe.js';

interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
}

describe('Envoy + envoy-authz + upstream', () => {
  const tmp = tempDir();
  let key: TestKey;
  let stack: Stack;
  let certs: DevCerts;
  let ports: EnvoyPorts;
  let http: string;
  let https: string;
  const upstreamHits = (): number => stack.seen.length;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    stack = await startStack(tmp, {
      authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } }] } },
      routes: [{ name: 'health', match: { path_exact: '/healthz', methods: ['GET'] }, public: true }],
    });
    ({ certs, ports, http } = stack);
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
    https = `https://127.0.0.1:${ports.https}`;
  });
  afterAll(() => stack?.stop());

  it('forwards a request with a valid token, with identity headers and without Authorization', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const r = await send(`${http}/orders/42?x=1`, { headers: { authorization: `Bearer ${token}`, 'x-auth-subject': 'mallory' } });
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as Echo;
    expect(echo.path).toBe('/orders/42?x=1');
    expect(echo.headers['x-auth-subject']).toBe('alice');
    expect(echo.headers['x-auth-issuer']).toBe(ISSUER);
    expect(echo.headers.authorization).toBeUndefined();
  });

  it('answers 401 with WWW-Authenticate and one uniform body for missing and invalid tokens', async () => {
    const before = upstreamHits();
    const missing = await send(`${http}/orders`);
    const expired = await send(`${http}/orders`, { headers: { authorization: `Bearer ${await signToken(key, { expIn: -600, iatAgo: 900 })}` } });
    const foreign = await send(`${http}/orders`, { headers: { authorization: `Bearer ${await signToken(await makeKey('ES256'))}` } });
    const garbage = await send(`${http}/orders`, { headers: { authorization: 'Bearer not-a-jwt' } });
    for (const r of [missing, expired, foreign, garbage]) {
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toBe('Bearer');
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.body).toBe(missing.body);
    }
    expect(JSON.parse(missing.body)).toEqual({ error: 'unauthenticated', message: 'Valid credentials are required.' });
    expect(upstreamHits()).toBe(before);
  });

  it('refuses a token in the query string', async () => {
    const token = await signToken(key);
    const r = await send(`${http}/orders?access_token=${token}`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(401);
  });

  it('lets a public route through without a token and strips spoofed identity headers', async () => {
    const r = await send(`${http}/healthz`, { headers: { 'x-auth-subject': 'admin', 'x-auth-issuer': 'me' } });
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as Echo;
    expect(echo.headers['x-auth-subject']).toBeUndefined();
    expect(echo.headers['x-auth-issuer']).toBeUndefined();
  });

  it('serves the same over the TLS listener', async () => {
    const token = await signToken(key, { sub: 'tls-user' });
    const ok = await send(`${https}/orders`, { ca: certs.read('ca.crt'), servername: 'localhost', headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    expect((JSON.parse(ok.body) as Echo).headers['x-auth-subject']).toBe('tls-user');
    const denied = await send(`${https}/orders`, { ca: certs.read('ca.crt'), servername: 'localhost' });
    expect(denied.status).toBe(401);
  });

  it('refuses TLS 1.1 on the TLS listener, offered for real (openssl s_client), which a legacy server would accept', async () => {
    expect(await offerTls11(await legacyTlsServer(certs.read('server.crt'), certs.read('server.key')))).toBe('negotiated TLSv1.1');
    expect(await offerTls11(ports.https)).toBe('refused');
  });

  it('caps request bodies (413 beyond 1 MiB)', async () => {
    const token = await signToken(key);
    const r = await send(`${http}/upload`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
      body: Buffer.alloc(1024 * 1024 + 1, 1),
    });
    expect(r.status).toBe(413);
  });

  it('fails closed when envoy-authz is down', async () => {
    const token = await signToken(key);
    expect((await send(`${http}/orders`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect(await stack.authz.stop()).toBe(0);
    const before = upstreamHits();
    const r = await send(`${http}/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).toBe(503);
    expect(upstreamHits()).toBe(before);
  });
});
