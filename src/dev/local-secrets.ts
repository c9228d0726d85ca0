// Secrets of the local stack, generated on first use into .dev/ (never committed): a demo API key
// (its digest in apikeys.yaml, the key itself in demo-apikey, 0600), the token server's signing
// key, and an admin API token (its digest in admin-tokens.yaml, the token in admin-token, 0600).
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';
import { stringify } from 'yaml';
import { digestApiKey, generateApiKey } from '../authn/apikey-format.js';

const exists = (p: string): Promise<boolean> =>
  readFile(p).then(
    () => true,
    () => false,
  );

/** The demo API key of the local stack, created with its digest entry on first use. */
export async function ensureDevApiKey(devDir: string): Promise<string> {
  const keyFile = join(devDir, 'demo-apikey');
  if (await exists(keyFile)) return (await readFile(keyFile, 'utf8')).trim();
  await mkdir(devDir, { recursive: true, mode: 0o700 });
  const { key, id } = generateApiKey('eak');
  const entry = {
    id,
    digest: digestApiKey(key),
    owner: 'svc-demo-batch',
    expires_at: new Date(Date.now() + 365 * 86400_000).toISOString(),
    scopes: ['orders:read'],
  };
  await writeFile(join(devDir, 'apikeys.yaml'), stringify({ keys: [entry] }), { mode: 0o644 });
  await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
  return key;
}

/** The local token server's ES256 signing key (a private JWK, 0600). */
export async function ensureDevSigningKey(devDir: string): Promise<void> {
  const file = join(devDir, 'token-signing.jwk');
  if (await exists(file)) return;
  await mkdir(devDir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const kid = await calculateJwkThumbprint(await exportJWK(publicKey));
  await writeFile(file, `${JSON.stringify({ ...(await exportJWK(privateKey)), kid, alg: 'ES256', use: 'sig' })}\n`, { mode: 0o600 });
}

/** The local stack's admin API token (for /v1/revocations, /v1/policy/reload), created on first use. */
export async function ensureDevAdminToken(devDir: string): Promise<string> {
  const tokenFile = join(devDir, 'admin-token');
  if (await exists(tokenFile)) return (await readFile(tokenFile, 'utf8')).trim();
  await mkdir(devDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  const entry = { name: 'local-dev', sha256: createHash('sha256').update(token).digest('hex') };
  await writeFile(join(devDir, 'admin-tokens.yaml'), stringify([entry]), { mode: 0o644 });
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  return token;
}
