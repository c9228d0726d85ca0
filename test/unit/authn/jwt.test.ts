import { exportSPKI, importJWK, type CryptoKey } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { JwtVerifier, looksLikeJwt, signatureThread } from '../../../src/authn/jwt.js';
import { keysAreStatic, loadIssuerKeys } from '../../../src/authn/jwks.js';
import type { IssuerConfig } from '../../../src/config/schema.js';
import { AuthnError, UnavailableError } from '../../../src/lib/errors.js';
import { loopbackServer, sendJson } from '../../helpers/http.js';
import {
  AUDIENCE,
  ISSUER,
  es256WithHeader,
  hs256Token,
  jwks,
  makeKey,
  rawToken,
  signToken,
  standardClaims,
  type TestKey,
} from '../../helpers/keys.js';
import { tempDir } from '../../helpers/tmp.js';
import type { Maybe } from '../../../src/lib/maybe.js';
import { NO_METRICS } from '../../../src/telemetry/metrics.js';

const OTHER_ISSUER = 'https://other-issuer.test.invalid';

function issuer(over: Partial<IssuerConfig> & Pick<IssuerConfig, 'issuer'>): IssuerConfig {
  return { audiences: [AUDIENCE], algorithms: ['ES256'], clock_tolerance_s: 5, claims: { scopes: 'scope', roles: 'roles' }, ...over };
}

const fileJwks = (file: string): IssuerConfig['jwks'] => ({
  file,
  timeout_ms: 1000,
  cooldown_ms: 0,
  cache_max_age_ms: 60000,
  allow_insecure_http: false,
});

/** A failure is always a rejected promise, never a value or a synchronous throw (lib/maybe.ts). */
async function expectCode(p: Maybe<unknown>, code: string): Promise<void> {
  expect(p).toBeInstanceOf(Promise);
  const err: unknown = await Promise.resolve(p).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected rejection with ${code}`).toBeInstanceOf(AuthnError);
  expect((err as AuthnError).code).toBe(code);
}

describe('signatureThread', () => {
  it('checks signatures on the event loop at one CPU or less per process, else on the thread pool', () => {
    expect([1, 0.5, 2, 1.5].map(signatureThread)).toEqual(['event_loop', 'event_loop', 'thread_pool', 'thread_pool']);
  });
});

describe('looksLikeJwt', () => {
  it('is JWS (two dots) or JWE (four) after a JSON header, and nothing else', () => {
    for (const t of ['eyJa.b.c', 'eyJa..', 'eyJa.b.c.d.e', 'eyJ....']) expect(looksLikeJwt(t), t).toBe(true);
    for (const t of ['', 'eyJ', 'eyJa.b', 'eyJa.b.c.d', 'eyJa.b.c.d.e.f', 'abc.def.ghi', 'eyj.a.b', '.eyJ.a']) expect(looksLikeJwt(t), t).toBe(false);
  });
});

// Both places a signature can be checked (jwt.ts, SignatureThread) give the same answers.
describe.each(['thread_pool', 'event_loop'] as const)('JwtVerifier, signatures on the %s', (signatures) => {
  const tmp = tempDir();
  let keyA: TestKey;
  let keyB: TestKey;
  let rsa: TestKey;
  let verifier: JwtVerifier;
  let keyHost: Awaited<ReturnType<typeof loopbackServer>>;

  beforeAll(async () => {
    keyA = await makeKey('ES256');
    keyB = await makeKey('ES256');
    rsa = await makeKey('RS256');
    // Serves a JWKS that would "verify" attacker tokens, to prove it is never fetched.
    keyHost = await loopbackServer((_req, res) => sendJson(res, jwks(keyB)));
    tmp.write('a.json', jwks(keyA));
    tmp.write('b.json', jwks(keyB));
    tmp.write('rsa.json', jwks(rsa));
    verifier = await JwtVerifier.create({ file: 'test.yaml', dir: tmp.dir }, [
      issuer({ issuer: ISSUER, jwks: fileJwks('a.json') }),
      issuer({ issuer: OTHER_ISSUER, jwks: fileJwks('b.json') }),
      issuer({ issuer: 'https://rsa.test.invalid', algorithms: ['RS256'], jwks: fileJwks('rsa.json') }),
      issuer({ issuer: 'https://typed.test.invalid', jwks: fileJwks('a.json'), required_typ: 'at+jwt', max_token_age_s: 60 }),
    ], { signatures });
  });

  it('accepts a valid token and returns subject and issuer', async () => {
    const p = await verifier.verify(await signToken(keyA, { claims: { jti: 'j1', scope: 'read write', roles: ['admin'] } }));
    expect(p).toMatchObject({ kind: 'subject', method: 'jwt', subject: 'user-1', issuer: ISSUER, jti: 'j1', scopes: ['read', 'write'], roles: ['admin'] });
    expect(p.expiresAt).toBeGreaterThan(Date.now() / 1000);
  });

  it('accepts an audience list that contains a configured audience', async () => {
    await expect(verifier.verify(await signToken(keyA, { aud: ['x', AUDIENCE] }))).resolves.toMatchObject({ subject: 'user-1' });
  });

  it.each(['none', 'None', 'NONE', 'nOnE'])('rejects alg %s', async (alg) => {
    await expectCode(verifier.verify(rawToken({ alg, typ: 'JWT' }, standardClaims(), 'AAAA')), 'alg_forbidden');
  });

  it('rejects an unsecured token with an empty signature', async () => {
    await expectCode(verifier.verify(rawToken({ alg: 'none' }, standardClaims())), 'credential_malformed');
  });

  it('rejects HS256 signed with the issuer\'s public key (algorithm confusion)', async () => {
    const pem = await exportSPKI(await importJWK(rsa.publicJwk, 'RS256', { extractable: true }) as CryptoKey);
    const token = hs256Token({ alg: 'HS256', kid: rsa.kid }, standardClaims({ iss: 'https://rsa.test.invalid' }), pem);
    await expectCode(verifier.verify(token), 'alg_forbidden');
  });

  it('rejects an unknown kid', async () => {
    const stranger = await makeKey('ES256', 'unknown-kid');
    await expectCode(verifier.verify(await signToken(stranger)), 'key_not_found');
  });

  it.each(['jku', 'x5u', 'jwk'])('rejects a %s header and fetches nothing', async (h) => {
    const value = h === 'jwk' ? keyB.publicJwk : `${keyHost.url}/jwks.json`;
    const token = await signToken(keyB, { header: { [h]: value } });
    await expectCode(verifier.verify(token), 'header_forbidden');
    expect(keyHost.hits()).toBe(0);
  });

  it('rejects an unknown crit header', async () => {
    const token = es256WithHeader(keyA, { alg: 'ES256', kid: keyA.kid, crit: ['urn:x-unknown'], 'urn:x-unknown': true }, standardClaims());
    await expectCode(verifier.verify(token), 'crit_unsupported');
  });

  it('rejects an expired token (beyond the clock tolerance)', async () => {
    await expectCode(verifier.verify(await signToken(keyA, { expIn: -10, iatAgo: 100 })), 'token_expired');
  });

  it('accepts a token expired within the clock tolerance', async () => {
    await expect(verifier.verify(await signToken(keyA, { expIn: -2 }))).resolves.toBeDefined();
  });

  it('rejects nbf in the future', async () => {
    await expectCode(verifier.verify(await signToken(keyA, { nbfIn: 120 })), 'token_not_yet_valid');
  });

  it('rejects a token without exp', async () => {
    await expectCode(verifier.verify(await signToken(keyA, { expIn: null })), 'claim_invalid');
  });

  it('rejects a token without sub', async () => {
    const t = es256WithHeader(keyA, { alg: 'ES256', kid: keyA.kid }, { ...standardClaims(), sub: undefined });
    await expectCode(verifier.verify(t), 'claim_invalid');
  });

  it('rejects a wrong audience', async () => {
    await expectCode(verifier.verify(await signToken(keyA, { aud: 'api://someone-else' })), 'claim_invalid');
  });

  it('rejects an untrusted issuer', async () => {
    await expectCode(verifier.verify(await signToken(keyA, { iss: 'https://evil.test.invalid' })), 'issuer_unknown');
  });

  it('rejects a token claiming one issuer but signed with another issuer\'s key', async () => {
    await expectCode(verifier.verify(await signToken(keyB, { iss: ISSUER })), 'key_not_found');
    // Same kid as issuer A's key, but B's private key: the signature must fail.
    const forged = await signToken({ ...keyB, kid: keyA.kid }, { iss: ISSUER });
    await expectCode(verifier.verify(forged), 'signature_invalid');
  });

  it('rejects a JWE', async () => {
    await expectCode(verifier.verify('eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d'), 'token_not_jws');
  });

  it('rejects garbage that only looks like a JWT', async () => {
    await expectCode(verifier.verify('a.b.c'), 'credential_malformed');
    await expectCode(verifier.verify('only-one-part'), 'credential_malformed');
  });

  it('enforces required typ and max token age', async () => {
    const iss = 'https://typed.test.invalid';
    await expect(verifier.verify(await signToken(keyA, { iss, header: { typ: 'at+jwt' } }))).resolves.toBeDefined();
    await expectCode(verifier.verify(await signToken(keyA, { iss, header: { typ: 'JWT' } })), 'claim_invalid');
    await expectCode(verifier.verify(await signToken(keyA, { iss, header: { typ: 'at+jwt' }, iatAgo: 600, expIn: 300 })), 'token_too_old');
  });

  it('rejects a tampered payload', async () => {
    const [h, , s] = (await signToken(keyA)).split('.');
    const p = Buffer.from(JSON.stringify({ ...standardClaims(), sub: 'admin' })).toString('base64url');
    await expectCode(verifier.verify(`${h}.${p}.${s}`), 'signature_invalid');
  });
});

describe('JwtVerifier with HS256', () => {
  const tmp = tempDir();

  it('verifies with a secret of at least 32 bytes', async () => {
    const secret = 'x'.repeat(32);
    tmp.write('hs.secret', `${secret}\n`);
    const v = await JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, algorithms: ['HS256'], secret_file: 'hs.secret' })]);
    await expect(v.verify(hs256Token({ alg: 'HS256' }, standardClaims(), secret))).resolves.toMatchObject({ subject: 'user-1' });
    await expectCode(v.verify(hs256Token({ alg: 'HS256' }, standardClaims(), 'y'.repeat(32))), 'signature_invalid');
  });

  it('refuses a short secret at startup, naming the key', async () => {
    tmp.write('short.secret', 'x'.repeat(31));
    await expect(
      JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, algorithms: ['HS256'], secret_file: 'short.secret' })]),
    ).rejects.toMatchObject({ code: 'config_invalid', problems: [{ keyPath: '/authentication/jwt/issuers/0/secret_file' }] });
  });

  it('refuses a world-readable secret file', async () => {
    tmp.write('open.secret', 'x'.repeat(64), 0o644);
    await expect(
      JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, algorithms: ['HS256'], secret_file: 'open.secret' })]),
    ).rejects.toMatchObject({ code: 'config_invalid' });
  });
});

describe.each(['thread_pool', 'event_loop'] as const)('JwtVerifier with a remote JWKS, signatures on the %s', (signatures) => {
  it('fetches the JWKS once, verifies, and fails closed when the endpoint is down', async () => {
    const key = await makeKey('ES256');
    let up = true;
    const host = await loopbackServer((_req, res) => (up ? sendJson(res, jwks(key)) : sendJson(res, { error: 'down' }, 503)));
    const remote = (url: string): IssuerConfig['jwks'] => ({ url, timeout_ms: 500, cooldown_ms: 0, cache_max_age_ms: 60000, allow_insecure_http: true });
    const v = await JwtVerifier.create({ file: 't.yaml', dir: '/' }, [issuer({ issuer: ISSUER, jwks: remote(`${host.url}/jwks`) })], { signatures });
    await v.verify(await signToken(key));
    await v.verify(await signToken(key));
    expect(host.hits()).toBe(1);

    // An unknown kid forces a refetch; the endpoint failing means "unknown", never "allow".
    up = false;
    const err = await Promise.resolve(v.verify(await signToken(await makeKey('ES256')))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnavailableError);
    expect((err as UnavailableError).code).toBe('jwks_unavailable');
  });

  it('reports a timeout as unavailable', async () => {
    const key = await makeKey('ES256');
    const host = await loopbackServer(() => undefined); // never answers
    const v = await JwtVerifier.create({ file: 't.yaml', dir: '/' }, [
      issuer({ issuer: ISSUER, jwks: { url: `${host.url}/jwks`, timeout_ms: 100, cooldown_ms: 0, cache_max_age_ms: 60000, allow_insecure_http: true } }),
    ], { signatures });
    await expect(v.verify(await signToken(key))).rejects.toMatchObject({ code: 'jwks_unavailable' });
  });
});

describe('JwtVerifier local JWKS file checks', () => {
  const tmp = tempDir();
  it('refuses a JWKS file that contains private keys', async () => {
    const key = await makeKey('ES256');
    const { exportJWK } = await import('jose');
    tmp.write('priv.json', { keys: [{ ...(await exportJWK(key.privateKey)), kid: key.kid }] });
    await expect(
      JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, jwks: fileJwks('priv.json') })]),
    ).rejects.toMatchObject({ code: 'config_invalid', problems: [{ keyPath: '/authentication/jwt/issuers/0/jwks/file' }] });
  });
});

describe('verified-token cache', () => {
  it('stops honouring a cached token once its signing key leaves the JWKS', async () => {
    const a = await makeKey('ES256');
    const b = await makeKey('ES256');
    let served = jwks(a);
    const host = await loopbackServer((_req, res) => sendJson(res, served));
    const v = await JwtVerifier.create({ file: 't.yaml', dir: '/' }, [
      issuer({ issuer: ISSUER, jwks: { url: `${host.url}/jwks`, timeout_ms: 500, cooldown_ms: 0, cache_max_age_ms: 1000, allow_insecure_http: true } }),
    ]);
    const token = await signToken(a);
    await v.verify(token);
    // From the cache, once the key is confirmed still in the set (a promise: a remote set can change);
    // the set is still fresh, nothing fetched.
    const hit = v.verify(token);
    expect(hit).toBeInstanceOf(Promise);
    await expect(hit).resolves.toMatchObject({ subject: 'user-1' });
    expect(host.hits()).toBe(1);

    served = jwks(b); // key A rotated out
    await new Promise((r) => setTimeout(r, 1100));
    await expectCode(v.verify(token), 'key_not_found');
  });

  it('skips the key lookup on a cache hit only for key sets that cannot change (a local JWKS, a secret)', async () => {
    const tmp = tempDir();
    const k = await makeKey('ES256');
    tmp.write('k.json', jwks(k));
    const at = '/authentication/jwt/issuers/0';
    const local = await loadIssuerKeys({ file: 't.yaml', dir: tmp.dir }, at, issuer({ issuer: ISSUER, jwks: fileJwks('k.json') }));
    const remote = await loadIssuerKeys({ file: 't.yaml', dir: '/' }, at, issuer({ issuer: ISSUER, jwks: { url: 'http://127.0.0.1:1/jwks', timeout_ms: 500, cooldown_ms: 0, cache_max_age_ms: 1000, allow_insecure_http: true } }));
    expect([keysAreStatic(local), keysAreStatic(remote), keysAreStatic(new Uint8Array(32))]).toEqual([true, false, true]);
  });

  it('answers a cache hit at once (no promise) where the keys cannot change, and counts the lookup', async () => {
    const tmp = tempDir();
    const k = await makeKey('ES256');
    tmp.write('k.json', jwks(k));
    const lookups: boolean[] = [];
    const metrics = { ...NO_METRICS, cacheLookup: (_cache: string, hit: boolean) => void lookups.push(hit) };
    const v = await JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, jwks: fileJwks('k.json') })], { metrics });
    const token = await signToken(k);
    const first = v.verify(token);
    expect(first).toBeInstanceOf(Promise);
    const verified = await first;
    const hit = v.verify(token);
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toBe(verified);
    expect(lookups).toEqual([false, true]);
    // A token not in the cache still waits, and a bad one still rejects.
    expect(v.verify(await signToken(k, { claims: { jti: 'other' } }))).toBeInstanceOf(Promise);
    await expectCode(v.verify(`${token}x`), 'signature_invalid');
  });

  it('is off with cache_max_entries 0, and never serves a different token', async () => {
    const tmp = tempDir();
    const k = await makeKey('ES256');
    tmp.write('k.json', jwks(k));
    const v = await JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, jwks: fileJwks('k.json') })], { cacheMaxEntries: 0 });
    const token = await signToken(k);
    await v.verify(token);
    const [h, , s] = token.split('.');
    const p = Buffer.from(JSON.stringify({ ...standardClaims(), sub: 'admin' })).toString('base64url');
    await expectCode(v.verify(`${h}.${p}.${s}`), 'signature_invalid');
    const cached = await JwtVerifier.create({ file: 't.yaml', dir: tmp.dir }, [issuer({ issuer: ISSUER, jwks: fileJwks('k.json') })]);
    await cached.verify(token);
    await expectCode(cached.verify(`${h}.${p}.${s}`), 'signature_invalid');
  });
});
