// API key authentication: the key names a workload (its owner, a service account). Malformed keys
// are rejected before any lookup; digests are compared in constant time; the key's restrictions
// (hosts, paths, methods, source CIDRs) are enforced on every request (V-274556).
import { contains } from '../lib/cidr.js';
import type { RequestView } from '../envoy/request.js';
import { AuthnError } from '../lib/errors.js';
import type { Authenticator, WorkloadCredential } from './authenticator.js';
import { MAX_API_KEY_LENGTH, digestApiKey, digestsEqual, parseApiKey } from './apikey-format.js';
import type { ApiKeyRecord, ApiKeyStore } from './apikey-store.js';

export interface ApiKeyOptions {
  /** Lower-case header name. */
  readonly header: string;
  readonly prefix: string;
  readonly hmacSecret?: Uint8Array;
  readonly now?: () => number;
}

// Compared against when the id is unknown, so both paths cost one digest and one comparison.
const DUMMY_DIGEST = `sha256:${'0'.repeat(64)}`;

function allowed(rec: ApiKeyRecord, req: RequestView): boolean {
  if (rec.methods && !rec.methods.has(req.method)) return false;
  if (rec.hosts && !rec.hosts.has(req.host)) return false;
  if (rec.paths && !rec.paths.some((p) => p === '' || req.path === p || req.path.startsWith(`${p}/`))) return false;
  if (rec.sources) {
    const addr = req.source.address;
    if (addr === undefined || !contains(rec.sources, addr)) return false;
  }
  return true;
}

export class ApiKeyAuthenticator implements Authenticator {
  readonly methods = ['api_key'] as const;
  private readonly now: () => number;

  constructor(
    private readonly opts: ApiKeyOptions,
    private readonly stores: readonly ApiKeyStore[],
  ) {
    this.now = opts.now ?? Date.now;
  }

  carries(req: RequestView): boolean {
    return req.headers.has(this.opts.header);
  }

  async authenticate(req: RequestView): Promise<WorkloadCredential | undefined> {
    const raw = req.headers.get(this.opts.header);
    if (raw === undefined) return undefined;
    const key = raw.trim();
    if (key.length > MAX_API_KEY_LENGTH) throw new AuthnError('token_too_large', 'API key too long');
    const parsed = parseApiKey(key, this.opts.prefix);
    if (!parsed) throw new AuthnError('credential_malformed', 'API key malformed or checksum wrong');

    let rec: ApiKeyRecord | undefined;
    for (const s of this.stores) {
      rec = await s.get(parsed.id);
      if (rec) break;
    }
    const presented = digestApiKey(key, rec?.digest.startsWith('hmac-') ? this.opts.hmacSecret : undefined);
    const match = digestsEqual(presented, rec?.digest ?? DUMMY_DIGEST);
    if (!rec || !match) throw new AuthnError('api_key_invalid', 'unknown API key');
    if (rec.disabled) throw new AuthnError('credential_revoked', 'API key disabled');
    if (rec.expiresAt * 1000 <= this.now()) throw new AuthnError('token_expired', 'API key expired');
    if (!allowed(rec, req)) throw new AuthnError('credential_restricted', 'API key not allowed for this request');
    return {
      kind: 'workload',
      method: 'api_key',
      id: rec.owner,
      serviceAccount: rec.owner,
      keyId: rec.id,
      scopes: rec.scopes,
      expiresAt: rec.expiresAt,
    };
  }
}
