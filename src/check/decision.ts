// What the pipeline decided, before it is translated into Envoy's CheckResponse.
import type { Identity } from '../identity/identity.js';
import type { AuthnErrorCode, UnavailableErrorCode } from '../lib/errors.js';

export interface Allow {
  readonly allowed: true;
  readonly route: string;
  /** The canonical identity; undefined for anonymous calls to public routes. */
  readonly identity?: Identity;
  /** Set on the upstream request, replacing any client-sent value. */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Removed from the upstream request. */
  readonly removeHeaders: readonly string[];
}

export interface Deny {
  readonly allowed: false;
  readonly route: string;
  /** 401 for authentication failures, 403 for a known caller not allowed here, or the configured status when no decision could be made. */
  readonly status: number;
  /** For the log only; the client sees a uniform body. */
  readonly reason: AuthnErrorCode | UnavailableErrorCode;
  /** The challenge scheme for 401 answers. */
  readonly challenge?: string;
  /** Who was denied, when known (e.g. revoked or restricted credentials). */
  readonly identity?: Identity;
}

export type Decision = Allow | Deny;
