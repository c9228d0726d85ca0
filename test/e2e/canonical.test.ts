// End to end: a JWT, an API key and an mTLS client certificate each reach the upstream as the same
// canonical credential - an internal JWT in Authorization, verifiable against our JWKS - and
// neither does the upstream see the original credential nor the client the internal token.
import type { IncomingHttpHeaders } from 'node:http';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { ensureDevSigningKey } from '../../src/dev/local-secrets.js';
import type { DevCerts } from '../helpers/certs.js';
import { send, type Reply } from '../helpers/client.js';
import type { EnvoyPorts } from '../helpers/envoy.js';
import { ISSUER, jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { startStack, warmUp, type Stack } from '../helpers/stack.js';
import { tempDir } from '../helpers/tmp.js';

describe('canonical credential through Envoy', () => {
  const tmp = tempDir();
  const apiKey = generateApiKey('eak');
  let key: TestKey;
  let stack: Stack;
  let certs: DevCerts;
  let ports: EnvoyPorts;
  let adminPort: number;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    tmp.write('apikeys.yaml', { keys: [{ id: apiKey.id, digest: digestApiKey(apiKey.key), owner: 'svc-batch', expires_at: new Date(Date.now() + 86400_000).toISOString() }] });
    await ensureDevSigningKey(tmp.dir);
    stack = await startStack(tmp, {
      authentication: {
        jwt: { issuers: [jwksFileIssuer()] },
        api_keys: { file: 'apikeys.yaml' },
        mtls: { trust_domains: [{ name: 'dev.local' }] },
      },
      token: { issuer: 'urn:envoy-authz:test', default_audience: 'demo-upstream', signing_keys: [{ file: 'token-signing.jwk' }] },
    });
    ({ certs, ports, adminPort } = stack);
    await warmUp(stack, { authorization: `Bearer ${await signToken(key, { sub: 'warm-up' })}` });
  });
  afterAll(() => stack?.stop());

  async function through(request: () => Promise<Reply>): Promise<{ reply: Reply; upstream: IncomingHttpHeaders; claims: JWTPayload; token: string }> {
    stack.clear();
    const reply = await request();
    expect(reply.status).toBe(200);
    expect(stack.seen).toHaveLength(1);
    const auth = stack.seen[0]!.authorization ?? '';
    expect(auth).toMatch(/^Bearer ey/);
    const token = auth.slice('Bearer '.length);
    const ourJwks = createRemoteJWKSet(new URL(`http://127.0.0.1:${adminPort}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(token, ourJwks, { issuer: 'urn:envoy-authz:test', audience: 'demo-upstream', algorithms: ['ES256'] });
    // The client never sees the internal token.
    expect(JSON.stringify(reply.headers)).not.toContain(token);
    expect(reply.body).not.toContain(token);
    return { reply, upstream: stack.seen[0]!, claims: payload, token };
  }

  it('a JWT becomes the internal token of the user', async () => {
    const original = await signToken(key, { sub: 'alice' });
    const r = await through(() => send(`http://127.0.0.1:${ports.http}/orders`, { headers: { authorization: `Bearer ${original}` } }));
    expect(r.claims).toMatchObject({ sub: 'alice', sub_type: 'user', idp: ISSUER, auth_method: 'jwt' });
    expect(JSON.stringify(r.upstream)).not.toContain(original);
    expect(r.upstream['x-auth-subject']).toBe('alice');
  });

  it('an API key becomes the internal token of its service account', async () => {
    const r = await through(() => send(`http://127.0.0.1:${ports.http}/orders`, { headers: { 'x-api-key': apiKey.key } }));
    expect(r.claims).toMatchObject({ sub: 'svc-batch', sub_type: 'service_account', auth_method: 'api_key', act: { sub: 'svc-batch' } });
    expect(r.upstream['x-api-key']).toBeUndefined();
    expect(JSON.stringify(r.upstream)).not.toContain(apiKey.key);
  });

  it('refuses an API key in the query string, whatever the parameter is called', async () => {
    stack.clear();
    expect((await send(`http://127.0.0.1:${ports.http}/orders?api_key=${apiKey.key}`)).status).toBe(401);
    expect((await send(`http://127.0.0.1:${ports.http}/orders?k=${apiKey.key}`, { headers: { 'x-api-key': apiKey.key } })).status).toBe(401);
    expect(stack.seen).toHaveLength(0);
  });

  /** A request over the mTLS listener with the dev client certificate. */
  const viaMtls = (headers: Record<string, string>): Promise<Reply> =>
    send(`https://127.0.0.1:${ports.mtls}/orders`, { ca: certs.read('ca.crt'), cert: certs.read('client.crt'), key: certs.read('client.key'), servername: 'localhost', headers });

  it('an mTLS client certificate becomes the internal token of its SPIFFE identity', async () => {
    const r = await through(() => viaMtls({ 'x-forwarded-client-cert': 'URI=spiffe://dev.local/ns/demo/sa/admin' }));
    expect(r.claims).toMatchObject({ sub: 'spiffe://dev.local/ns/demo/sa/client', sub_type: 'service_account', auth_method: 'mtls', act: { sub: 'spiffe://dev.local/ns/demo/sa/client' } });
    expect(r.upstream['x-forwarded-client-cert']).toBeUndefined();
  });

  it('a user calling through an mTLS workload gets both: the user as sub, the workload as act', async () => {
    const original = await signToken(key, { sub: 'bob' });
    const r = await through(() => viaMtls({ authorization: `Bearer ${original}` }));
    expect(r.claims).toMatchObject({ sub: 'bob', sub_type: 'user', act: { sub: 'spiffe://dev.local/ns/demo/sa/client' } });
  });

  it('refuses the mTLS listener without a client certificate, and a forged XFCC does not authenticate', async () => {
    await expect(send(`https://127.0.0.1:${ports.mtls}/orders`, { ca: certs.read('ca.crt'), servername: 'localhost' })).rejects.toThrow();
    stack.clear();
    const r = await send(`http://127.0.0.1:${ports.http}/orders`, { headers: { 'x-forwarded-client-cert': 'By=x;URI=spiffe://dev.local/ns/demo/sa/client' } });
    expect(r.status).toBe(401);
    expect(stack.seen).toHaveLength(0);
  });
});
