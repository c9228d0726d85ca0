// Cache keys for credentials: a SHA-256 of the credential, so no cache ever holds one in clear.
import { createHash } from 'node:crypto';

export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('base64url');
