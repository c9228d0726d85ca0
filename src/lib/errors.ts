// lib/: small shared helpers, one home each - errors, deadlines, CIDR, host:port, JWK, hashes,
// RFC 3339, Redis connections.
// One base class with a string `code`; callers and tests branch on `code`, never on messages.
// Messages are for the audit log only: nothing here is ever sent to a client.

/** Why a credential was rejected. Every one of these becomes the same 401 for the client. */
export type AuthnErrorCode =
  | 'credential_missing'
  | 'credential_malformed'
  | 'credential_in_query'
  | 'token_too_large'
  | 'token_not_jws'
  | 'alg_forbidden'
  | 'header_forbidden'
  | 'crit_unsupported'
  | 'issuer_unknown'
  | 'key_not_found'
  | 'signature_invalid'
  | 'token_expired'
  | 'token_not_yet_valid'
  | 'token_too_old'
  | 'token_inactive'
  | 'api_key_invalid'
  | 'claim_invalid'
  | 'svid_invalid'
  | 'workload_not_allowed'
  | 'credential_revoked'
  // The two below are authorization failures of a valid credential: 403, not 401.
  | 'credential_restricted'
  | 'source_blocked'
  // Too many failed authentications from this address or for this identity: 429.
  | 'too_many_failures';

/** AuthnError codes answered with 403 (the caller is known but not allowed here), not 401. */
export const FORBIDDEN_CODES: ReadonlySet<AuthnErrorCode> = new Set(['credential_restricted', 'source_blocked']);

/** A dependency or the service itself failed: the answer is "unknown", so we fail closed. */
export type UnavailableErrorCode =
  | 'deadline_exceeded'
  /** The caller reset the call: its work stops, and nothing is decided or spent for it. */
  | 'cancelled'
  | 'jwks_unavailable'
  | 'introspection_unavailable'
  | 'store_unavailable'
  | 'policy_error'
  | 'internal';

export type ErrorCode = AuthnErrorCode | UnavailableErrorCode | 'config_invalid' | 'request_parse_error';

export abstract class AuthzError extends Error {
  abstract readonly code: ErrorCode;
}

export class AuthnError extends AuthzError {
  override readonly name = 'AuthnError';
  constructor(
    readonly code: AuthnErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class UnavailableError extends AuthzError {
  override readonly name = 'UnavailableError';
  constructor(
    readonly code: UnavailableErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The request cannot be read as opa-envoy-plugin reads it (bad escape, malformed JSON or form body):
 *  answered 400, as the plugin answers it. The message names the problem, never the input. */
export class RequestParseError extends AuthzError {
  override readonly name = 'RequestParseError';
  readonly code = 'request_parse_error';
}

export interface ConfigProblem {
  /** JSON-pointer-like key path, e.g. `/authentication/jwt/issuers/0/audiences`; `/` is the whole file. */
  keyPath: string;
  problem: string;
}

/** A configuration file that cannot be used: names the file and, per problem, the key path. */
export class ConfigError extends AuthzError {
  override readonly name = 'ConfigError';
  readonly code = 'config_invalid';
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(problems.map((p) => `${file}: ${p.keyPath}: ${p.problem}`).join('\n'));
  }
}

/** The message of whatever was thrown, for logs only: an Error's message; a thrown object's string
 *  `message` (opa-wasm throws `{ message }` objects, and strings); else the JSON of a plain object,
 *  so that no log line reads "[object Object]". */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err !== null && typeof err === 'object') {
    const message = (err as { message?: unknown }).message;
    if (typeof message === 'string') return message;
    try {
      const json = JSON.stringify(err);
      if (json !== undefined && json !== '{}') return json;
    } catch {
      // a cycle or a BigInt: fall through to the string form
    }
  }
  return String(err);
}
