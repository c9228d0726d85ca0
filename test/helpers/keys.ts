// Test keys and tokens. Malformed tokens are assembled by hand so each rejection path is reached
// for the reason under test and not an earlier one.
import { KeyObject, createHmac, createSign, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload, type CryptoKey } from 'jose';

export interface TestKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256', kid: string = randomUUID()): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk };
}

export function jwks(...keys: TestKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

export interface TokenOptions {
  iss?: string;
  aud?: string | string[];
  sub?: string;
  /** Seconds from now; null omits exp. */
  expIn?: number | null;
  nbfIn?: number;
  iatAgo?: number;
  header?: Record<string, unknown>;
  claims?: JWTPayload;
}

export const ISSUER = 'https://issuer.test.invalid';
export const AUDIENCE = 'api://orders';

export async function signToken(key: TestKey, o: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    iss: o.iss ?? ISSUER,
    aud: o.aud ?? AUDIENCE,
    sub: o.sub ?? 'user-1',
    iat: now - (o.iatAgo ?? 0),
    ...(o.expIn === null ? {} : { exp: now + (o.expIn ?? 300) }),
    ...(o.nbfIn !== undefined ? { nbf: now + o.nbfIn } : {}),
    ...o.claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT', ...o.header }).sign(key.privateKey);
}

const b64u = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A token with an arbitrary header and payload and the given signature bytes (unsigned if omitted). */
export function rawToken(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${b64u(header)}.${b64u(payload)}.${signature}`;
}

export function standardClaims(o: { iss?: string; aud?: string; sub?: string } = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { iss: o.iss ?? ISSUER, aud: o.aud ?? AUDIENCE, sub: o.sub ?? 'user-1', iat: now, exp: now + 300 };
}

/** HS256 over header.payload with `secret` as the HMAC key (e.g. the issuer's public key PEM). */
export function hs256Token(header: Record<string, unknown>, payload: Record<string, unknown>, secret: string | Buffer): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** ES256 signature over an arbitrary header (for headers SignJWT refuses, such as unknown crit). */
export function es256WithHeader(key: TestKey, header: Record<string, unknown>, payload: Record<string, unknown>): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  const sig = createSign('sha256').update(input).sign({ key: KeyObject.from(key.privateKey), dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** The test issuer (ISSUER, AUDIENCE) with its keys in `jwks.json` beside the config: the usual authentication.jwt.issuers entry. */
export function jwksFileIssuer(): { issuer: string; audiences: string[]; jwks: { file: string } } {
  return { issuer: ISSUER, audiences: [AUDIENCE], jwks: { file: 'jwks.json' } };
}
