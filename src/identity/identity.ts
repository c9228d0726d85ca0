// identity/: this canonical identity, the internal token (minter, signing keys), deny lists (revocation/).
// The canonical identity (NIST SP 800-228 2.7): whatever credentials arrived, every later stage
// (policy, token minting, rate limits, audit) sees this one structure.
//   user only      -> subject = the user, no workload (2.7.3)
//   workload only  -> subject = the workload's service account (2.7.2)
//   both           -> subject = the user, workload = the caller (2.7.4)
import type { AuthMethod, SubjectCredential, WorkloadCredential, WorkloadMethod } from '../authn/authenticator.js';

export interface Workload {
  readonly id: string;
  readonly method: WorkloadMethod;
  readonly keyId?: string;
  readonly trustDomain?: string;
}

export interface Identity {
  readonly subject: string;
  readonly issuer: string;
  readonly kind: 'user' | 'service_account';
  /** How the subject was authenticated. */
  readonly method: AuthMethod;
  readonly scopes: readonly string[];
  readonly roles: readonly string[];
  readonly workload?: Workload;
  /** The presented token's id, when it had one (revocation by jti). */
  readonly jti?: string;
  /** Epoch seconds: the earliest expiry of the credentials used. */
  readonly expiresAt?: number;
  readonly claims: Readonly<Record<string, unknown>>;
}

function workloadOf(w: WorkloadCredential): Workload {
  return {
    id: w.id,
    method: w.method,
    ...(w.keyId !== undefined ? { keyId: w.keyId } : {}),
    ...(w.trustDomain !== undefined ? { trustDomain: w.trustDomain } : {}),
  };
}

export function canonicalize(
  user: SubjectCredential | undefined,
  workload: WorkloadCredential | undefined,
  serviceAccountIssuer: string,
): Identity | undefined {
  if (user) {
    const expiresAt = workload?.expiresAt !== undefined ? Math.min(user.expiresAt, workload.expiresAt) : user.expiresAt;
    return {
      subject: user.subject,
      issuer: user.issuer,
      kind: 'user',
      method: user.method,
      scopes: user.scopes,
      roles: user.roles,
      ...(workload ? { workload: workloadOf(workload) } : {}),
      ...(user.jti !== undefined ? { jti: user.jti } : {}),
      expiresAt,
      claims: user.claims,
    };
  }
  if (workload) {
    return {
      subject: workload.serviceAccount,
      issuer: serviceAccountIssuer,
      kind: 'service_account',
      method: workload.method,
      scopes: workload.scopes,
      roles: [],
      workload: workloadOf(workload),
      ...(workload.expiresAt !== undefined ? { expiresAt: workload.expiresAt } : {}),
      claims: {},
    };
  }
  return undefined;
}
