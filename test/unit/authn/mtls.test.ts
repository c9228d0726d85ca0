import { beforeAll, describe, expect, it } from 'vitest';
import type { Maybe } from '../../../src/lib/maybe.js';
import { MtlsAuthenticator } from '../../../src/authn/mtls.js';
import { lastXfccElement, parseSpiffeId, svidFromPem } from '../../../src/authn/spiffe.js';
import type { MtlsConfig } from '../../../src/config/schema.js';
import { testPki, type TestPki } from '../../helpers/pki.js';
import { requestView } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';

/** The refusal's code (a failure is always a rejection); undefined when it answered, at once or later. */
const code = async (p: Maybe<unknown>): Promise<string | undefined> =>
  Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => (e as { code?: string }).code,
  );

describe('SPIFFE IDs', () => {
  it.each(['spiffe://example.org/ns/a/sa/b', 'spiffe://example.org', 'spiffe://a-b_c.d/x.y-z_1'])('accepts %s', (id) => {
    expect(parseSpiffeId(id)?.id).toBe(id);
  });
  it.each([
    'http://example.org/a',
    'spiffe://Example.org/a',
    'spiffe://example.org/',
    'spiffe://example.org//a',
    'spiffe://example.org/a/../b',
    'spiffe://example.org/./a',
    'spiffe://example.org/a?b',
    'spiffe://example.org/a#b',
    'spiffe://user@example.org/a',
    'spiffe://example.org:443/a',
    'spiffe:///a',
  ])('rejects %s', (id) => {
    expect(parseSpiffeId(id)).toBeUndefined();
  });
});

describe('X509-SVID rules', () => {
  const tmp = tempDir();
  let pki: TestPki;
  beforeAll(() => {
    pki = testPki(tmp.dir);
  });

  it('accepts a leaf with exactly one SPIFFE URI SAN', () => {
    expect(svidFromPem(pki.leaf('ok', { san: 'URI:spiffe://dev.local/ns/demo/sa/client,DNS:client.local' }))).toMatchObject({
      id: 'spiffe://dev.local/ns/demo/sa/client',
      trustDomain: 'dev.local',
    });
  });

  it('rejects two URI SANs, no URI SAN, a non-SPIFFE URI, a CA, and certificates outside their validity', () => {
    expect(svidFromPem(pki.leaf('two', { san: 'URI:spiffe://dev.local/a,URI:spiffe://dev.local/b' }))).toBe('uri_san_count');
    expect(svidFromPem(pki.leaf('dns', { san: 'DNS:client.local' }))).toBe('uri_san_count');
    expect(svidFromPem(pki.leaf('https', { san: 'URI:https://dev.local/a' }))).toBe('not_spiffe');
    expect(svidFromPem(pki.leaf('ca', { san: 'URI:spiffe://dev.local/a', ca: true }))).toBe('is_ca');
    const pem = pki.leaf('time', { san: 'URI:spiffe://dev.local/a' });
    expect(svidFromPem(pem, Date.now() + 10 * 86400_000)).toBe('expired');
    expect(svidFromPem(pem, Date.now() - 86400_000)).toBe('not_yet_valid');
    expect(svidFromPem('not a pem')).toBe('not_a_certificate');
  });
});

describe('MtlsAuthenticator', () => {
  const tmp = tempDir();
  let pki: TestPki;
  const cfg: MtlsConfig = {
    trust_domains: [
      { name: 'dev.local', allowed_ids: ['spiffe://dev.local/ns/demo/*', 'spiffe://dev.local/batch'], service_accounts: { 'spiffe://dev.local/batch': 'svc-batch' } },
      { name: 'open.local' },
    ],
    trust_xfcc: false,
  };
  beforeAll(() => {
    pki = testPki(tmp.dir);
  });
  const withCert = (pem: string, principal?: string) => requestView({ certificate: encodeURIComponent(pem), ...(principal ? { principal } : {}) });

  it('takes the workload from the peer certificate Envoy forwards', async () => {
    const a = new MtlsAuthenticator(cfg);
    const pem = pki.leaf('client', { san: 'URI:spiffe://dev.local/ns/demo/sa/client' });
    expect(await a.authenticate(withCert(pem, 'spiffe://dev.local/ns/demo/sa/client'))).toMatchObject({
      kind: 'workload',
      method: 'mtls',
      id: 'spiffe://dev.local/ns/demo/sa/client',
      serviceAccount: 'spiffe://dev.local/ns/demo/sa/client',
      trustDomain: 'dev.local',
    });
    expect(await a.authenticate(requestView())).toBeUndefined();
  });

  it('maps SPIFFE IDs to service accounts and accepts a principal without certificate', async () => {
    const a = new MtlsAuthenticator(cfg);
    expect(await a.authenticate(requestView({ principal: 'spiffe://dev.local/batch' }))).toMatchObject({ serviceAccount: 'svc-batch' });
    expect(await a.authenticate(requestView({ principal: 'spiffe://open.local/anything' }))).toMatchObject({ id: 'spiffe://open.local/anything' });
  });

  it('answers at once (no promise): with the workload, or nothing without a peer identity; refuses by rejecting', () => {
    const a = new MtlsAuthenticator(cfg);
    const ok = a.authenticate(requestView({ principal: 'spiffe://dev.local/batch' }));
    expect(ok).not.toBeInstanceOf(Promise);
    expect(ok).toMatchObject({ serviceAccount: 'svc-batch' });
    expect(a.authenticate(requestView())).toBeUndefined();
    const refused = a.authenticate(requestView({ principal: 'CN=client' }));
    expect(refused).toBeInstanceOf(Promise);
    return expect(refused).rejects.toMatchObject({ code: 'svid_invalid' });
  });

  it('rejects unknown trust domains, IDs outside the allowlist, invalid SVIDs and mismatched principals', async () => {
    const a = new MtlsAuthenticator(cfg);
    expect(await code(a.authenticate(requestView({ principal: 'spiffe://evil.local/ns/demo/x' })))).toBe('workload_not_allowed');
    expect(await code(a.authenticate(requestView({ principal: 'spiffe://dev.local/ns/other/x' })))).toBe('workload_not_allowed');
    expect(await code(a.authenticate(requestView({ principal: 'CN=client' })))).toBe('svid_invalid');
    expect(await code(a.authenticate(withCert(pki.leaf('two2', { san: 'URI:spiffe://dev.local/ns/demo/a,URI:spiffe://dev.local/ns/demo/b' }))))).toBe('svid_invalid');
    const pem = pki.leaf('mismatch', { san: 'URI:spiffe://dev.local/ns/demo/a' });
    expect(await code(a.authenticate(withCert(pem, 'spiffe://dev.local/ns/demo/b')))).toBe('svid_invalid');
    expect(await code(a.authenticate(requestView({ certificate: '%E0%A4%A' })))).toBe('svid_invalid');
  });

  it('ignores a client-sent x-forwarded-client-cert unless configured to trust it', async () => {
    const forged = 'By=spiffe://dev.local/gw;URI=spiffe://dev.local/ns/demo/sa/admin';
    const untrusting = new MtlsAuthenticator(cfg);
    expect(await untrusting.authenticate(requestView({ headers: { 'x-forwarded-client-cert': forged } }))).toBeUndefined();
    const trusting = new MtlsAuthenticator({ ...cfg, trust_xfcc: true });
    expect(await trusting.authenticate(requestView({ headers: { 'x-forwarded-client-cert': forged } }))).toMatchObject({ id: 'spiffe://dev.local/ns/demo/sa/admin' });
    const pem = pki.leaf('xfcc', { san: 'URI:spiffe://dev.local/ns/demo/sa/xfcc' });
    const withCertEl = `URI=spiffe://dev.local/ns/demo/sa/first,By=x;Cert="${encodeURIComponent(pem)}";URI=spiffe://dev.local/ns/demo/sa/xfcc`;
    expect(await trusting.authenticate(requestView({ headers: { 'x-forwarded-client-cert': withCertEl } }))).toMatchObject({ id: 'spiffe://dev.local/ns/demo/sa/xfcc' });
  });

  it('parses the last XFCC element, with quoted values', () => {
    expect(lastXfccElement('By=a;URI=spiffe://x/1,By=b;Cert="a,b;c";URI=spiffe://x/2')).toEqual({ uri: 'spiffe://x/2', cert: 'a,b;c' });
  });
});
