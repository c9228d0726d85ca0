// The development issuer behind `make run` / `make token`: an ES256 key pair generated locally on
// first use (private key 0600, never committed), its public JWKS read by the local stack's config.
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export const DEV_ISSUER = 'urn:envoy-authz:dev-issuer';
export const DEV_AUDIENCE = 'demo-api';
const ALG = 'ES256';

const privatePath = (dir: string): string => join(dir, 'private.jwk.json');
export const devJwksPath = (dir: string): string => join(dir, 'jwks.json');

/** Creates the key pair unless it exists. Returns true when it was created now. */
export async function ensureDevIssuer(dir: string): Promise<boolean> {
  try {
    await readFile(privatePath(dir));
    return false;
  } catch {
    // not there yet: create below
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
  const pub = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(pub);
  const priv: JWK = { ...(await exportJWK(privateKey)), kid, alg: ALG, use: 'sig' };
  await writeFile(privatePath(dir), `${JSON.stringify(priv)}\n`, { mode: 0o600, flag: 'wx' });
  await writeFile(devJwksPath(dir), `${JSON.stringify({ keys: [{ ...pub, kid, alg: ALG, use: 'sig' }] }, null, 2)}\n`, { mode: 0o644 });
  return true;
}

const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** `600`, `90s`, `10m`, `2h`, `1d` -> seconds (a positive integer, at most 30 days). */
export function parseTtl(text: string): number {
  const m = /^([0-9]{1,7})([smhd]?)$/.exec(text.trim());
  const seconds = m ? Number(m[1]) * (UNIT_SECONDS[m[2] || 's'] ?? 1) : NaN;
  if (!(Number.isInteger(seconds) && seconds > 0 && seconds <= 30 * 86400)) throw new Error(`--ttl ${text}: use seconds or 90s, 10m, 2h, 1d (at most 30d)`);
  return seconds;
}

export interface DevTokenOptions {
  subject?: string;
  audience?: string;
  ttlSeconds?: number;
  scope?: string;
  roles?: readonly string[];
}

export async function mintDevToken(dir: string, opts: DevTokenOptions = {}): Promise<string> {
  const jwk = JSON.parse(await readFile(privatePath(dir), 'utf8')) as JWK;
  const key = await importJWK(jwk, ALG);
  // The demo user is a buyer who may read orders (see policies/data.json); --roles and --scope replace that.
  const jwt = new SignJWT({ scope: opts.scope ?? 'orders:read', roles: [...(opts.roles ?? ['buyer'])] })
    .setProtectedHeader({ alg: ALG, kid: jwk.kid ?? '', typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(opts.audience ?? DEV_AUDIENCE)
    .setSubject(opts.subject ?? 'dev-user')
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime(`${opts.ttlSeconds ?? 3600}s`);
  return jwt.sign(key);
}
