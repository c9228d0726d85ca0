// authn/: one file per credential kind (bearer: jwt + jwks, introspection; apikey + its store and
// format; mtls + spiffe/XFCC), each an Authenticator; registry.ts builds them from the config.
// The one interface every credential kind implements. Two kinds of result: a subject (an end
// user or service account proven by a token) and a workload (the calling software, proven by
// mTLS or an API key). The pipeline combines them into one canonical identity.
import type { RequestView } from '../envoy/request.js';
import type { Maybe } from '../lib/maybe.js';

export type SubjectMethod = 'jwt' | 'introspection';
export type WorkloadMethod = 'api_key' | 'mtls';
export type AuthMethod = SubjectMethod | WorkloadMethod;
export const AUTH_METHODS: readonly AuthMethod[] = ['jwt', 'introspection', 'api_key', 'mtls'];

export interface SubjectCredential {
  readonly kind: 'subject';
  readonly method: SubjectMethod;
  readonly subject: string;
  readonly issuer: string;
  /** Epoch seconds after which the credential is no longer valid. */
  readonly expiresAt: number;
  readonly jti?: string;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface WorkloadCredential {
  readonly kind: 'workload';
  readonly method: WorkloadMethod;
  /** SPIFFE ID, or the owner of the API key. */
  readonly id: string;
  /** The service account that stands for this workload when no user is present (SP 800-228 2.7.2). */
  readonly serviceAccount: string;
  readonly keyId?: string;
  readonly trustDomain?: string;
  readonly scopes: readonly string[];
  readonly expiresAt?: number;
}

export type Credential = SubjectCredential | WorkloadCredential;

export interface Authenticator {
  readonly methods: readonly AuthMethod[];
  /**
   * Resolves to undefined when the request carries no credential of this kind.
   * Rejects with AuthnError when a credential is present but invalid (never a fall-through),
   * and with UnavailableError when it cannot be checked right now.
   * A result known at once (a cached token) may be returned as it is; a failure is always a
   * rejection, never a synchronous throw (lib/maybe.ts).
   */
  authenticate(request: RequestView): Maybe<Credential | undefined>;
  /**
   * Whether the request carries a credential of this kind, without checking it (a header or
   * certificate is there). Only then does the pipeline trace the attempt; absent: always traced.
   */
  carries?(request: RequestView): boolean;
}

/** Scopes from a claim that is a space-delimited string (RFC 8693 `scope`) or an array (`scp`). */
export function claimList(value: unknown): string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}
