// What the pipeline decided, before it is translated into Envoy's CheckResponse.
import type { Principal } from '../authn/authenticator.js';
import type { AuthnErrorCode, UnavailableErrorCode } from '../lib/errors.js';

export interface Allow {
  readonly allowed: true;
  readonly route: string;
  readonly principal?: Principal;
  /** Set on the upstream request, replacing any client-sent value. */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Removed from the upstream request. */
  readonly removeHeaders: readonly string[];
}

export interface Deny {
  readonly allowed: false;
  readonly route: string;
  /** 401 for authentication failures; the configured status when the decision could not be made. */
  readonly status: number;
  /** For the log only; the client sees a uniform body. */
  readonly reason: AuthnErrorCode | UnavailableErrorCode;
  /** The challenge scheme for 401 answers. */
  readonly challenge?: string;
}

export type Decision = Allow | Deny;
