// The one interface every credential kind implements (JWT now; API keys, mTLS, introspection later).
import type { JWTPayload } from 'jose';
import type { RequestView } from '../envoy/request.js';

export type AuthMethod = 'jwt';

/** Who a verified credential says the caller is. */
export interface Principal {
  readonly method: AuthMethod;
  readonly subject: string;
  readonly issuer: string;
  /** Epoch seconds after which the credential is no longer valid. */
  readonly expiresAt: number;
  readonly claims: Readonly<JWTPayload>;
}

export interface Authenticator {
  readonly method: AuthMethod;
  /**
   * Resolves to undefined when the request carries no credential of this kind.
   * Rejects with AuthnError when a credential is present but invalid (never a fall-through),
   * and with UnavailableError when it cannot be checked right now.
   */
  authenticate(request: RequestView): Promise<Principal | undefined>;
}
