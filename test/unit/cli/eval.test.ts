// The offline evaluator's parts in-process: a given identity comes out of the pipeline's own
// canonicalization unchanged (or is refused), CheckRequest JSON is read by the proto's names
// (or JSON names) and nothing is dropped silently, and credentials never appear in the report.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { credentialsFor } from '../../../src/cli/eval/identity.js';
import { parseRequest } from '../../../src/cli/eval/request.js';
import { evaluate } from '../../../src/cli/eval/run.js';
import { UsageError } from '../../../src/cli/eval/usage-error.js';
import { ensureDevSigningKey } from '../../../src/dev/local-secrets.js';
import { toRequestView } from '../../../src/envoy/request.js';
import { canonicalize } from '../../../src/identity/identity.js';
import { checkMethod } from '../../../src/server/codecs.js';
import { jwks, makeKey, signToken, jwksFileIssuer } from '../../helpers/keys.js';
import { buildRepoPolicies } from '../../helpers/opa.js';
import { testPki } from '../../helpers/pki.js';
import { configYaml } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';

const SA_ISSUER = 'urn:envoy-authz:service-accounts';
const places = { bearerHeader: 'authorization', scheme: 'Bearer', apiKeyHeader: 'x-api-key' };
const roundTrip = (given: Record<string, unknown>): unknown => {
  const { user, workload } = credentialsFor(given, SA_ISSUER, 1_000_000_000_000);
  return canonicalize(user, workload, SA_ISSUER);
};

describe('a given identity', () => {
  it('is what the pipeline canonicalizes from its credentials: service account by API key, user, user with an mTLS workload', () => {
    const apiKey = { subject: 'svc', issuer: SA_ISSUER, kind: 'service_account', method: 'api_key', scopes: ['orders:write'], roles: [], workload: { id: 'svc', method: 'api_key' }, expiresAt: 2_000_000_000, claims: {} };
    expect(roundTrip(apiKey)).toEqual(apiKey);
    const user = { subject: 'alice', issuer: 'https://idp', kind: 'user', method: 'jwt', scopes: ['a'], roles: ['buyer'], jti: 'j1', expiresAt: 2_000_000_000, claims: { tenant: 't1' } };
    expect(roundTrip(user)).toEqual(user);
    const both = { ...user, workload: { id: 'spiffe://example.org/ns/shop/sa/web', method: 'mtls', trustDomain: 'example.org' } };
    expect(roundTrip(both)).toEqual(both);
  });

  it('fills what a policy author leaves out the way the service would', () => {
    expect(roundTrip({ subject: 'bob', roles: ['admin'] })).toMatchObject({ subject: 'bob', kind: 'user', method: 'jwt', roles: ['admin'], scopes: [], expiresAt: 1_000_003_600 });
    expect(roundTrip({ subject: 'svc', method: 'mtls' })).toMatchObject({ kind: 'service_account', issuer: SA_ISSUER, workload: { id: 'svc', method: 'mtls' } });
  });

  it.each([
    [{ subject: 'x', kind: 'user', method: 'api_key' }, /a user is authenticated by jwt or introspection/],
    [{ subject: 'x', kind: 'service_account', method: 'jwt' }, /api_key or mtls/],
    [{ subject: 'x', kind: 'service_account', issuer: 'https://other' }, /service_account_issuer/],
    [{ subject: 'x', kind: 'service_account', roles: ['admin'] }, /no roles, claims or jti/],
    [{ subject: 'x', workload: { method: 'mtls' } }, /needs id and method/],
    [{ subject: 'x', role: ['typo'] }, /unknown field "role"/],
    [{ roles: [] }, /subject is required/],
    ['alice', /must be an object/],
  ])('refuses an identity the service cannot produce: %j', (given, message) => {
    expect(() => credentialsFor(given, SA_ISSUER)).toThrow(UsageError);
    expect(() => credentialsFor(given, SA_ISSUER)).toThrow(message);
  });
});

describe('the request document', () => {
  const full = {
    attributes: {
      source: { address: { socket_address: { address: '10.0.0.1', port_value: 1234 } }, principal: 'spiffe://x/y' },
      request: { time: '2026-01-02T03:04:05.5Z', http: { method: 'POST', path: '/a?b=1', host: 'h', headers: { 'content-type': 'application/json' }, body: '{}', size: '2' } },
      context_extensions: { audience: 'orders' },
      metadata_context: { filter_metadata: { 'envoy.filters.http.jwt_authn': { claims: { sub: 'x', n: 1 } } } },
    },
  };

  it('reads a CheckRequest by proto field names or JSON names alike, Timestamp and Struct as protojson writes them', () => {
    const snake = parseRequest(full, { headers: {} }, places).request;
    const camel = parseRequest(
      {
        attributes: {
          source: { address: { socketAddress: { address: '10.0.0.1', portValue: 1234 } }, principal: 'spiffe://x/y' },
          request: { time: '2026-01-02T03:04:05.5Z', http: { method: 'POST', path: '/a?b=1', host: 'h', headers: { 'content-type': 'application/json' }, body: '{}', size: '2' } },
          contextExtensions: { audience: 'orders' },
          metadataContext: { filterMetadata: { 'envoy.filters.http.jwt_authn': { claims: { sub: 'x', n: 1 } } } },
        },
      },
      { headers: {} },
      places,
    ).request;
    expect(camel).toEqual(snake);
    expect(snake.attributes?.request?.time).toMatchObject({ seconds: String(Date.UTC(2026, 0, 2, 3, 4, 5)).slice(0, -3), nanos: 500_000_000 });
    expect(snake.attributes?.source?.address?.socket_address?.address).toBe('10.0.0.1');
    expect(snake.attributes?.metadata_context?.filter_metadata?.['envoy.filters.http.jwt_authn']?.fields?.claims).toBeDefined();
  });

  it('decodes as the server does: a map\'s keys sorted, the same header winning', () => {
    const doc = { attributes: { request: { http: { method: 'GET', path: '/', host: 'h', headers: { 'x-user': 'lower', b: '2', 'X-User': 'upper', a: '1' } } }, context_extensions: { z: '1', a: '2' } } };
    const { request } = parseRequest(doc, { headers: {} }, places);
    const message = checkMethod();
    expect(JSON.stringify(request)).toBe(JSON.stringify(message.requestDeserialize(message.requestSerialize(doc as never))));
    expect(Object.keys(request.attributes!.request!.http!.headers!)).toEqual(['X-User', 'a', 'b', 'x-user']);
    expect(Object.keys(request.attributes!.context_extensions!)).toEqual(['a', 'z']);
    expect(toRequestView(request).headers.get('x-user')).toBe('lower');
  });

  it('refuses a field the proto does not have, instead of dropping it', () => {
    expect(() => parseRequest({ attributes: { request: { http: { methd: 'GET' } } } }, { headers: {} }, places)).toThrow(/request\.attributes\.request\.http\.methd: HttpRequest has no such field/);
    expect(() => parseRequest({ method: 'GET', paht: '/' }, { headers: {} }, places)).toThrow(/unknown short-form field "paht"/);
  });

  it('puts credentials in header_map when the request carries raw headers (encode_raw_headers), replacing a same-named one', () => {
    const raw = { attributes: { request: { http: { method: 'GET', path: '/', header_map: { headers: [{ key: 'authorization', raw_value: Buffer.from('old').toString('base64') }, { key: 'x-a', raw_value: Buffer.from('1').toString('base64') }] } } } } };
    const r = parseRequest(raw, { token: 'tok', headers: {} }, places).request;
    const view = toRequestView(r);
    expect(view.headers.get('authorization')).toBe('Bearer tok');
    expect(view.headers.get('x-a')).toBe('1');
  });

  it('puts credentials where the configured service reads them', () => {
    const r = parseRequest({ path: '/x' }, { token: 't0k', apiKey: 'k3y', headers: { 'x-extra': '1' }, principal: 'spiffe://p', sourceAddress: '10.9.9.9' }, { ...places, scheme: '' }).request;
    expect(r.attributes?.request?.http?.headers).toMatchObject({ authorization: 't0k', 'x-api-key': 'k3y', 'x-extra': '1', ':path': '/x', ':method': 'GET' });
    expect(r.attributes?.source).toMatchObject({ principal: 'spiffe://p', address: { socket_address: { address: '10.9.9.9' } } });
  });
});

describe('the report', () => {
  it('never carries the caller credential (policy input) nor the minted token (CheckResponse)', async () => {
    const tmp = tempDir();
    const key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    await ensureDevSigningKey(tmp.dir);
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    const configFile = tmp.write(
      'authz.yaml',
      configYaml({
        authentication: { jwt: { issuers: [jwksFileIssuer()] } },
        token: { default_audience: 'api', signing_keys: [{ file: 'token-signing.jwk' }] },
        policy: { bundle: { file: 'bundle.tar.gz' } },
      }),
    );
    const token = await signToken(key, { sub: 'alice', claims: { roles: ['buyer'] } });
    const r = await evaluate({ configFile, request: { path: '/orders/1' }, credentials: { token, headers: {} } });
    expect(r).toMatchObject({ allowed: true, identity: { subject: 'alice' }, result: { allowed: true } });
    const text = JSON.stringify(r);
    expect(text).not.toContain(token);
    expect(text).not.toMatch(/eyJ/);
    expect((r.input as { attributes: { request: { http: { headers: Record<string, string> } } } }).attributes.request.http.headers.authorization).toBe('[REDACTED]');
    const headers = (r.check_response?.okResponse as { headers: { header: { key: string; value: string } }[] }).headers;
    expect(headers.find((h) => h.header.key === 'authorization')?.header.value).toBe('[REDACTED]');
    // Raw headers (encode_raw_headers): the credential travels base64 in header_map, and is redacted there too.
    const raw = { attributes: { request: { http: { method: 'GET', path: '/orders/1', header_map: { headers: [{ key: 'accept', raw_value: Buffer.from('*/*').toString('base64') }] } } } } };
    const r2 = await evaluate({ configFile, request: raw, credentials: { token, headers: {} } });
    expect(r2).toMatchObject({ allowed: true });
    const text2 = JSON.stringify(r2);
    expect(text2).not.toContain(Buffer.from(`Bearer ${token}`).toString('base64'));
    const rawHeaders = (r2.input as { attributes: { request: { http: { headerMap: { headers: { key: string; rawValue?: string }[] } } } } }).attributes.request.http.headerMap.headers;
    expect(rawHeaders.find((h) => h.key === 'authorization')?.rawValue).toBe('[REDACTED]');
  });
});

describe('a workload as Envoy forwards it', () => {
  it('authenticates the peer certificate (source.certificate) or the principal alone, through the configured trust domains', async () => {
    const tmp = tempDir();
    const pki = testPki(tmp.dir);
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    const configFile = tmp.write(
      'authz.yaml',
      configYaml({ authentication: { mtls: { trust_domains: [{ name: 'dev.local' }] } }, policy: { bundle: { file: 'bundle.tar.gz' } } }),
    );
    const client = 'spiffe://dev.local/ns/demo/sa/client';
    const run = (credentials: Parameters<typeof evaluate>[0]['credentials']): ReturnType<typeof evaluate> => evaluate({ configFile, request: { path: '/hello' }, credentials });

    // The example policy names this SPIFFE ID as a subject allowed on /hello.
    const cert = await run({ headers: {}, clientCertPem: pki.leaf('client', { san: `URI:${client}` }) });
    expect(cert).toMatchObject({ allowed: true, identity: { subject: client, kind: 'service_account', method: 'mtls', workload: { id: client, method: 'mtls', trustDomain: 'dev.local' } } });
    expect(await run({ headers: {}, principal: client })).toMatchObject({ allowed: true, identity: { subject: client } });
    expect(await run({ headers: {}, principal: 'spiffe://dev.local/ns/demo/sa/other' })).toMatchObject({ allowed: false, reason: 'policy_denied' });
    expect(await run({ headers: {}, principal: 'spiffe://elsewhere.org/sa/x' })).toMatchObject({ allowed: false, reason: 'workload_not_allowed', result: null });
  });
});
