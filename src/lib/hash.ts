// Cache keys for credentials: a SHA-256 of the credential, so no cache ever holds one in clear.
import crypto from 'node:crypto';

// crypto.hash (Node >= 20.12) hashes in one call, without a Hash object per credential.
const oneShot = (crypto as { hash?: (alg: string, data: string, encoding: 'base64url') => string }).hash;

export const tokenHash = (token: string): string => (oneShot ? oneShot('sha256', token, 'base64url') : crypto.createHash('sha256').update(token).digest('base64url'));
