// What the pipeline decided, before it is translated into Envoy's CheckResponse.
import type { Identity } from '../identity/identity.js';
import type { PolicyDecision } from '../policy/decision.js';
import type { AuthnErrorCode, UnavailableErrorCode } from '../lib/errors.js';
import type { ProblemAnswer } from '../openapi/problem.js';
import type { RefusalReason } from '../openapi/validate.js';

/** What the policy saw and answered, for the decision log (set when a policy ran). */
export interface PolicyEvaluation {
  readonly input: Readonly<Record<string, unknown>>;
  /** The raw value of the decision rule. */
  readonly result: unknown;
  /** Time spent in the policy (evaluation or decision-cache lookup), in nanoseconds. */
  readonly evalNs: number;
}

export interface Allow {
  readonly allowed: true;
  readonly route: string;
  /** The canonical identity; undefined for anonymous calls to public routes. */
  readonly identity?: Identity;
  /** Set on the upstream request, replacing any client-sent value. */
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  /** Removed from the upstream request. */
  readonly removeHeaders: readonly string[];
  /** What an allowing policy added (headers, response headers, query changes, metadata). */
  readonly policy?: PolicyDecision;
  /** The bundle revision that decided, when a policy ran. */
  readonly policyRevision?: string;
  /** True when a dry-run policy would have denied. */
  readonly dryRunDenied?: boolean;
  /** With dryRunDenied: the status the denial would have had. */
  readonly wouldStatus?: number;
  readonly evaluation?: PolicyEvaluation;
  /** Our additions on top of the policy's answer (route `additions`); undefined: on. */
  readonly additions?: boolean;
  /** Names the decision in dynamic metadata and in the audit record, as opa-envoy-plugin's decision_id; set when a policy ran. */
  readonly decisionId?: string;
}

export interface Deny {
  readonly allowed: false;
  readonly route: string;
  /** 401 for authentication failures, 403 for a known caller not allowed here, 400 for a path that cannot be normalized, or the configured status when no decision could be made. */
  readonly status: number;
  /** For the log only; the client sees a uniform body. */
  readonly reason: AuthnErrorCode | UnavailableErrorCode | 'policy_denied' | 'path_invalid' | 'request_parse_error' | `openapi_${RefusalReason}`;
  /** The challenge scheme for 401 answers. */
  readonly challenge?: string;
  /** Who was denied, when known (e.g. revoked or restricted credentials). */
  readonly identity?: Identity;
  /** A denying policy's own answer (status is in `status`); absent: the uniform body. */
  readonly policy?: PolicyDecision;
  readonly policyRevision?: string;
  /** For 429 answers. */
  readonly retryAfterSeconds?: number;
  /** Our additions on top of a denying policy's answer (route `additions`); undefined: on. */
  readonly additions?: boolean;
  readonly decisionId?: string;
  readonly evaluation?: PolicyEvaluation;
  /** request_parse_error: what could not be read, answered as opa-envoy-plugin answers it (400, the message as body). */
  readonly parseError?: string;
  /** An OpenAPI refusal (after authentication and authorization): its problem+json answer. */
  readonly problem?: ProblemAnswer;
}

export type Decision = Allow | Deny;
