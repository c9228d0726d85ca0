// API key authentication: the key names a workload (its owner, a service account). Malformed keys
// are rejected before any lookup; digests are compared in constant time; the key's restrictions
// (hosts, paths, methods, source CIDRs) are enforced on every request (V-274556).
import { contains } from '../lib/cidr.js';
import type { RequestView } from '../envoy/request.js';
import { AuthnError } from '../lib/errors.js';
import { isPromise, rejected, type Maybe } from '../lib/maybe.js';
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

  /**
   * The credential at once when the key's entry is in memory (a key file, a cached Redis entry),
   * else once the store answers. A refusal is always a rejection.
   */
  authenticate(req: RequestView): Maybe<WorkloadCredential | undefined> {
    const raw = req.headers.get(this.opts.header);
    if (raw === undefined) return undefined;
    try {
      const key = raw.trim();
      if (key.length > MAX_API_KEY_LENGTH) throw new AuthnError('token_too_large', 'API key too long');
      const parsed = parseApiKey(key, this.opts.prefix);
      if (!parsed) throw new AuthnError('credential_malformed', 'API key malformed or checksum wrong');
      return this.lookup(req, key, parsed.id, 0);
    } catch (err) {
      return rejected(err);
    }
  }

  /** The stores from `from` on, in order: the first that has the id answers. */
  private lookup(req: RequestView, key: string, id: string, from: number): Maybe<WorkloadCredential> {
    for (let i = from; i < this.stores.length; i++) {
      const rec = this.stores[i]!.get(id);
      if (isPromise(rec)) return rec.then((r) => (r ? this.verified(req, key, r) : this.lookup(req, key, id, i + 1)));
      if (rec) return this.verified(req, key, rec);
    }
    return this.verified(req, key, undefined);
  }

  /** Throws the refusal (the callers turn it into a rejection). */
  private verified(req: RequestView, key: string, rec: ApiKeyRecord | undefined): WorkloadCredential {
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
