import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../../src/identity/identity.js';
import { TokenMinter, minterOptions } from '../../../src/identity/minter.js';
import { SigningKeys } from '../../../src/identity/signing-keys.js';
import type { TokenConfig } from '../../../src/config/schema.js';
import { ROOT } from '../../helpers/service.js';
import { tempDir } from '../../helpers/tmp.js';

function signingKey(out: string, alg = 'ES256'): void {
  execFileSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'keys.ts'), 'signing-key', '--out', out, '--alg', alg], { cwd: ROOT, stdio: 'ignore' });
}

const user: Identity = {
  subject: 'alice',
  issuer: 'https://idp.test',
  kind: 'user',
  method: 'jwt',
  scopes: ['orders:read'],
  roles: ['buyer'],
  workload: { id: 'spiffe://dev.local/ns/demo/sa/web', method: 'mtls' },
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
  claims: {},
};

function tokenCfg(keys: TokenConfig['signing_keys'], over: Partial<TokenConfig> = {}): TokenConfig {
  return {
    issuer: 'urn:envoy-authz',
    lifetime_s: 300,
    default_audience: 'orders',
    audience_context_key: 'audience',
    header: 'authorization',
    scheme: 'Bearer',
    signing_keys: keys,
    cache_max_entries: 100,
    refresh_before_s: 60,
    ...over,
  };
}

describe('token server', () => {
  const tmp = tempDir();
  signingKey(join(tmp.dir, 'k1.jwk'));
  signingKey(join(tmp.dir, 'k2.jwk'), 'EdDSA');
  const loaded = { file: 'c.yaml', dir: tmp.dir };

  it('mints a short-lived, audience-restricted token with sub, scopes, jti and the workload as act', async () => {
    const keys = await SigningKeys.load(loaded, [{ file: 'k1.jwk' }]);
    const minter = new TokenMinter(minterOptions(tokenCfg([{ file: 'k1.jwk' }])), keys);
    const token = await minter.tokenFor(user, 'orders');
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(keys.jwks()), { issuer: 'urn:envoy-authz', audience: 'orders', algorithms: ['ES256'] });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({ sub: 'alice', scope: 'orders:read', roles: ['buyer'], act: { sub: 'spiffe://dev.local/ns/demo/sa/web' }, sub_type: 'user', idp: 'https://idp.test' });
    expect(payload.exp! - payload.iat!).toBe(300);
    expect(typeof payload.jti).toBe('string');
    expect(keys.jwks().keys.every((k) => k.d === undefined)).toBe(true);
  });

  it('caches per identity and audience, and refreshes before expiry', async () => {
    let now = Date.now();
    const keys = await SigningKeys.load(loaded, [{ file: 'k1.jwk' }]);
    const minter = new TokenMinter(minterOptions(tokenCfg([{ file: 'k1.jwk' }])), keys, () => now);
    const minted = minter.tokenFor(user, 'orders');
    expect(minted).toBeInstanceOf(Promise); // signed now
    const a = await minted;
    expect(minter.tokenFor(user, 'orders')).toBe(a); // from the cache, at once (no promise)
    expect(await minter.tokenFor(user, 'billing')).not.toBe(a);
    expect(await minter.tokenFor({ ...user, subject: 'bob' }, 'orders')).not.toBe(a);
    now += 250_000; // 50 s left, under refresh_before_s
    const refreshed = minter.tokenFor(user, 'orders');
    expect(refreshed).toBeInstanceOf(Promise);
    expect(await refreshed).not.toBe(a);
    minter.forget('alice');
  });

  it('never outlives the credential it stands for', async () => {
    const keys = await SigningKeys.load(loaded, [{ file: 'k1.jwk' }]);
    const minter = new TokenMinter(minterOptions(tokenCfg([{ file: 'k1.jwk' }])), keys);
    const soon = Math.floor(Date.now() / 1000) + 30;
    const { payload } = await jwtVerify(await minter.tokenFor({ ...user, expiresAt: soon }, 'orders'), createLocalJWKSet(keys.jwks()));
    expect(payload.exp).toBe(soon);
  });

  it('picks the audience from context_extensions, then the route, then the default', async () => {
    const keys = await SigningKeys.load(loaded, [{ file: 'k1.jwk' }]);
    const minter = new TokenMinter(minterOptions(tokenCfg([{ file: 'k1.jwk' }])), keys);
    expect(minter.audienceFor({ audience: 'from-envoy' }, 'from-route')).toBe('from-envoy');
    expect(minter.audienceFor({}, 'from-route')).toBe('from-route');
    expect(minter.audienceFor({}, undefined)).toBe('orders');
  });

  it('rotates with overlap: the new key is published before it signs, old tokens verify until they expire', async () => {
    let now = Date.now();
    const activation = new Date(now + 60_000).toISOString();
    const cfgKeys = [{ file: 'k1.jwk' }, { file: 'k2.jwk', activate_at: activation }];
    const keys = await SigningKeys.load(loaded, cfgKeys);
    const minter = new TokenMinter(minterOptions(tokenCfg(cfgKeys, { refresh_before_s: 0 })), keys, () => now);
    const [k1, k2] = keys.jwks().keys;

    const before = await minter.tokenFor(user, 'orders');
    expect(decodeProtectedHeader(before).kid).toBe(k1!.kid);
    expect(keys.jwks().keys.map((k) => k.kid)).toEqual([k1!.kid, k2!.kid]); // published ahead

    now += 61_000;
    const after = await minter.tokenFor({ ...user, subject: 'carol' }, 'orders');
    expect(decodeProtectedHeader(after).kid).toBe(k2!.kid);
    expect(decodeProtectedHeader(after).alg).toBe('EdDSA');

    const jwks = createLocalJWKSet(keys.jwks());
    const at = new Date(now);
    await expect(jwtVerify(before, jwks, { currentDate: at })).resolves.toBeDefined();
    await expect(jwtVerify(after, jwks, { currentDate: at })).resolves.toBeDefined();
    await expect(jwtVerify(before, jwks, { currentDate: new Date(now + 300_000) })).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
  });

  it('refuses world-readable, public, duplicate or never-active keys, naming the key', async () => {
    tmp.write('open.jwk', JSON.stringify(JSON.parse((await import('node:fs')).readFileSync(join(tmp.dir, 'k1.jwk'), 'utf8'))), 0o644);
    await expect(SigningKeys.load(loaded, [{ file: 'open.jwk' }])).rejects.toMatchObject({ problems: [{ keyPath: '/token/signing_keys/0/file' }] });
    tmp.write('public.jwk', JSON.stringify({ ...JSON.parse((await import('node:fs')).readFileSync(join(tmp.dir, 'k1.jwk'), 'utf8')), d: undefined }));
    await expect(SigningKeys.load(loaded, [{ file: 'public.jwk' }])).rejects.toMatchObject({ problems: [{ problem: 'not a private key (no d)' }] });
    await expect(SigningKeys.load(loaded, [{ file: 'k1.jwk' }, { file: 'k1.jwk' }])).rejects.toMatchObject({ problems: [{ keyPath: '/token/signing_keys/1/file' }] });
    await expect(SigningKeys.load(loaded, [{ file: 'k1.jwk', activate_at: '2999-01-01T00:00:00Z' }])).rejects.toMatchObject({ problems: [{ keyPath: '/token/signing_keys' }] });
  });
});
