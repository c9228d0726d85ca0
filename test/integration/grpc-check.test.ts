// A real gRPC client calling Check on the real server (in-process), over plaintext and mTLS.
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authzClient, callRaw, healthCheck, type AuthzClient } from '../helpers/grpc.js';
import { loopbackServer, sendJson } from '../helpers/http.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey } from '../helpers/keys.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';
import { devCerts } from '../helpers/certs.js';
import { legacyTlsServer, offerTls11 } from '../helpers/tls-probe.js';

const SLOW_ISSUER = 'https://slow.test.invalid';
const DOWN_ISSUER = 'https://down.test.invalid';

function baseConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { address: '127.0.0.1:0' },
    logging: { level: 'info' },
    authentication: {
      jwt: {
        issuers: [
          { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } },
        ],
      },
    },
    routes: [{ name: 'health', match: { path_exact: '/healthz' }, public: true }],
    ...extra,
  };
}

type HeaderOptions = { header?: { key?: string; value?: string } }[] | undefined;
const headerMap = (hs: HeaderOptions): Record<string, string | undefined> =>
  Object.fromEntries((hs ?? []).map((h) => [h.header?.key ?? '', h.header?.value]));

const errOf = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => {
      throw new Error('expected a gRPC error');
    },
    (e: unknown) => e as ServiceError,
  );

describe('Check over gRPC', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    svc = await startInProcess(tmp.write('authz.yaml', configYaml(baseConfig())));
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    client.close();
    await svc.shutdown();
  });

  it('allows a valid token: identity headers set, Authorization removed', async () => {
    const token = await signToken(key, { sub: 'alice' });
    const res = await client.check(checkRequest({ headers: { authorization: `Bearer ${token}` } }));
    expect(res.status?.code).toBe(0);
    expect(res.http_response).toBe('ok_response');
    const headers = headerMap(res.ok_response?.headers);
    expect(headers).toEqual({ 'x-auth-subject': 'alice', 'x-auth-issuer': ISSUER, 'x-auth-client': 'alice' });
    expect(res.ok_response?.headers?.[0]?.append_action).toBe('OVERWRITE_IF_EXISTS_OR_ADD');
    expect(res.ok_response?.headers_to_remove).toEqual(['x-forwarded-client-cert', 'authorization']);
    expect(res.dynamic_metadata?.fields?.subject?.stringValue).toBe('alice');
  });

  it('denies a missing token with 401, WWW-Authenticate and a uniform JSON body', async () => {
    const res = await client.check(checkRequest());
    expect(res.status?.code).toBe(16);
    expect(res.denied_response?.status?.code).toBe('Unauthorized');
    const headers = headerMap(res.denied_response?.headers);
    expect(headers['www-authenticate']).toBe('Bearer');
    expect(headers['content-type']).toBe('application/json');
    const other = await client.check(checkRequest({ headers: { authorization: 'Bearer a.b.c' } }));
    expect(other.denied_response?.body).toBe(res.denied_response?.body);
    expect(JSON.parse(res.denied_response!.body!)).toEqual({ error: 'unauthenticated', message: 'Valid credentials are required.' });
  });

  it('allows public routes without a credential', async () => {
    const res = await client.check(checkRequest({ path: '/healthz' }));
    expect(res.status?.code).toBe(0);
    expect(res.ok_response?.headers_to_remove).toContain('x-auth-subject');
  });

  it('serves grpc.health.v1 for the server and for the Authorization service', async () => {
    expect(await healthCheck(svc.address)).toBe('SERVING');
    expect(await healthCheck(svc.address, 'envoy.service.auth.v3.Authorization')).toBe('SERVING');
  });

  it('has no reflection service', async () => {
    for (const path of [
      '/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo',
      '/grpc.reflection.v1.ServerReflection/ServerReflectionInfo',
    ]) {
      expect((await callRaw(svc.address, path))?.code).toBe(status.UNIMPLEMENTED);
    }
  });

  it('refuses messages above the receive cap', async () => {
    const err = await errOf(client.check(checkRequest({ headers: { 'x-big': 'a'.repeat(300 * 1024) } })));
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
  });

  it('never writes a token to the log', async () => {
    const token = await signToken(key, { sub: 'log-check' });
    const expired = await signToken(key, { expIn: -600, iatAgo: 900 });
    await client.check(checkRequest({ headers: { authorization: `Bearer ${token}`, cookie: `s=${token}` } }));
    await client.check(checkRequest({ headers: { authorization: `Bearer ${expired}` } }));
    await client.check(checkRequest({ path: `/x?access_token=${token}`, headers: { authorization: `Bearer ${token}` } }));
    const text = svc.logs.text();
    expect(svc.logs.lines().some((l) => l.subject === 'log-check')).toBe(true);
    expect(svc.logs.lines().some((l) => l.reason === 'token_expired')).toBe(true);
    for (const t of [token, expired]) {
      for (const part of t.split('.')) expect(text).not.toContain(part);
    }
  });
});

describe('failing closed', () => {
  const tmp = tempDir();
  let key: TestKey;
  let hang: Awaited<ReturnType<typeof loopbackServer>>;
  let down: Awaited<ReturnType<typeof loopbackServer>>;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    hang = await loopbackServer(() => undefined);
    down = await loopbackServer((_req, res) => sendJson(res, { error: 'x' }, 503));
  });

  const issuers = (): Record<string, unknown>[] => [
    { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { file: 'jwks.json' } },
    { issuer: SLOW_ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { url: `${hang.url}/jwks`, allow_insecure_http: true } },
    { issuer: DOWN_ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'], jwks: { url: `${down.url}/jwks`, allow_insecure_http: true } },
  ];

  it('answers DEADLINE_EXCEEDED when the decision takes longer than the deadline', async () => {
    const cfg = baseConfig({ check: { deadline_ms: 100 }, authentication: { jwt: { issuers: issuers() } } });
    const svc = await startInProcess(tmp.write('deadline.yaml', configYaml(cfg)));
    const client = authzClient(svc.address);
    try {
      const started = Date.now();
      const err = await errOf(client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key, { iss: SLOW_ISSUER })}` } })));
      expect(err.code).toBe(status.DEADLINE_EXCEEDED);
      expect(err.details).toBe('authorization decision unavailable');
      expect(Date.now() - started).toBeLessThan(3000);
      // Envoy's own grpc-timeout shortens our budget further.
      const err2 = await errOf(
        client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key, { iss: SLOW_ISSUER })}` } }), 60),
      );
      expect(err2.code).toBe(status.DEADLINE_EXCEEDED);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });

  it('answers UNAVAILABLE when the JWKS endpoint fails, without details', async () => {
    const cfg = baseConfig({ authentication: { jwt: { issuers: issuers() } } });
    const svc = await startInProcess(tmp.write('down.yaml', configYaml(cfg)));
    const client = authzClient(svc.address);
    try {
      const err = await errOf(client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key, { iss: DOWN_ISSUER })}` } })));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toBe('authorization decision unavailable');
      expect(svc.logs.lines().some((l) => l.event === 'check_error' && l.code === 'jwks_unavailable')).toBe(true);
    } finally {
      client.close();
      await svc.shutdown();
    }
  });

  it('denies in-band with the configured status when on_error.mode is deny', async () => {
    const cfg = baseConfig({ check: { deadline_ms: 100, on_error: { mode: 'deny', deny_status: 503 } }, authentication: { jwt: { issuers: issuers() } } });
    const svc = await startInProcess(tmp.write('deny.yaml', configYaml(cfg)));
    const client = authzClient(svc.address);
    try {
      const res = await client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key, { iss: SLOW_ISSUER })}` } }));
      expect(res.denied_response?.status?.code).toBe('ServiceUnavailable');
      expect(res.status?.code).toBe(14);
      expect(JSON.parse(res.denied_response!.body!)).toMatchObject({ error: 'unavailable' });
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});

// The dev certificate names localhost; the listener is reached by IP.
const TLS_NAME = { 'grpc.ssl_target_name_override': 'localhost' };

describe('TLS listener', () => {
  const tmp = tempDir();
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let certs: ReturnType<typeof devCerts>;
  let key: TestKey;

  beforeAll(async () => {
    key = await makeKey('ES256');
    tmp.write('jwks.json', jwks(key));
    certs = devCerts(`${tmp.dir}/certs`);
    const cfg = baseConfig({
      server: {
        address: '127.0.0.1:0',
        tls: { cert_file: 'certs/server.crt', key_file: 'certs/server.key', client_ca_file: 'certs/ca.crt' },
      },
    });
    svc = await startInProcess(tmp.write('tls.yaml', configYaml(cfg)));
  });
  afterAll(() => svc.shutdown());

  it('serves Check to a client with a certificate from the trusted CA', async () => {
    const creds = credentials.createSsl(certs.read('ca.crt'), certs.read('client.key'), certs.read('client.crt'));
    const client = authzClient(svc.address, creds, TLS_NAME);
    try {
      const res = await client.check(checkRequest({ headers: { authorization: `Bearer ${await signToken(key)}` } }));
      expect(res.status?.code).toBe(0);
    } finally {
      client.close();
    }
  });

  it('refuses a client without a certificate', async () => {
    const client = authzClient(svc.address, credentials.createSsl(certs.read('ca.crt')), TLS_NAME);
    try {
      const err = await errOf(client.check(checkRequest(), 2000));
      expect(err.code).toBe(status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it('refuses TLS 1.1 offered for real (openssl s_client), which a legacy server would accept', async () => {
    expect(await offerTls11(await legacyTlsServer(certs.read('server.crt'), certs.read('server.key')))).toBe('negotiated TLSv1.1');
    expect(await offerTls11(Number(svc.address.split(':').pop()))).toBe('refused');
  });
});
