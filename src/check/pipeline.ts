// check/: the Check flow - this pipeline, routes, decisions, the failed-authentication guard.
// The Check flow: guard -> authenticate -> canonicalize -> revocation -> policy -> OpenAPI validation -> internal token -> allow/deny.
// Pure of gRPC; the adapter in server/ translates in and out. Composition follows Authorino:
// per slot (subject, workload) the first credential found wins, and a present-but-invalid
// credential fails the request rather than falling through to a weaker method.
import type { MetricsSink } from '../telemetry/metrics.js';
import type { Authenticator, Credential, SubjectCredential, WorkloadCredential } from '../authn/authenticator.js';
import { refuseQueryCredentials } from '../authn/extract.js';
import type { Config } from '../config/schema.js';
import { randomUuid } from '../lib/uuid.js';
import type { RequestView } from '../envoy/request.js';
import type { StopSignal } from '../lib/stop.js';
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import type { GrpcBodies } from '../envoy/grpc-body.js';
import { policyInputBuilder, type PolicyInputBuilder, type PolicyInputDoc } from '../envoy/input.js';
import { canonicalize, type Identity } from '../identity/identity.js';
import type { TokenMinter } from '../identity/minter.js';
import type { DenyList } from '../identity/revocation/deny-list.js';
import { AuthnError, FORBIDDEN_CODES, RequestParseError } from '../lib/errors.js';
import type { PolicyAuthorizer } from '../policy/authorizer.js';
import { problemAnswer } from '../openapi/problem.js';
import { OpenApiStage, type StageMatch } from '../openapi/stage.js';
import type { Parsed } from '../openapi/validate.js';
import { childSpan, childSpanCall } from '../telemetry/tracing.js';
import { isPromise, rejected, type Maybe } from '../lib/maybe.js';
import type { Allow, Decision, PolicyEvaluation } from './decision.js';
import type { FailureGuard } from './failure-guard.js';
import { DEFAULT_ROUTE, type Route, type RouteTable } from './routes.js';
import type { Attributes } from '@opentelemetry/api';

// Span attributes made once, not per Check (they are built even when tracing is off).
const NO_ATTRIBUTES: Attributes = Object.freeze({});
/** No policy ran: nothing to add to the allowed decision. */
const NO_EXTRA: Partial<Allow> = Object.freeze({});
const NO_HEADERS: readonly string[] = Object.freeze([]);
// The stages run through childSpanCall with these and their arguments: no closure per Check.
const authenticateWith = (a: Authenticator, req: RequestView): Maybe<Credential | undefined> => a.authenticate(req);
const authorizeWith = (authorizer: PolicyAuthorizer, input: PolicyInputDoc): ReturnType<PolicyAuthorizer['authorize']> => authorizer.authorize(input);
const mintWith = (minter: TokenMinter, identity: Identity, audience: string): ReturnType<TokenMinter['tokenFor']> => minter.tokenFor(identity, audience);
const methodsLabels = new WeakMap<Authenticator, Attributes>();
function methodsAttributes(a: Authenticator): Attributes {
  let attrs = methodsLabels.get(a);
  if (!attrs) methodsLabels.set(a, (attrs = Object.freeze({ 'envoy_authz.methods': a.methods.join(',') })));
  return attrs;
}

/** What the pipeline takes from `authentication` (built by pipelineOptions). */
export interface PipelineOptions {
  /** Lower-case query parameter names that may carry a credential: a request with one is refused. */
  readonly forbiddenQueryParams: readonly string[];
  /** Lower-case names of the identity headers set for the upstream. */
  readonly upstreamHeaders: { readonly subject: string; readonly issuer: string; readonly client: string };
  /** Keep the caller's credential headers upstream (default: removed). */
  readonly forwardCredential: boolean;
  /** The WWW-Authenticate challenge scheme of a 401. */
  readonly challenge: string;
  /** The issuer of service-account identities (API keys, mTLS workloads without a user). */
  readonly serviceAccountIssuer: string;
}

export function pipelineOptions(a: Config['authentication']): PipelineOptions {
  return {
    forbiddenQueryParams: a.forbidden_query_params.map((p) => p.toLowerCase()),
    upstreamHeaders: { subject: a.upstream_headers.subject.toLowerCase(), issuer: a.upstream_headers.issuer.toLowerCase(), client: a.upstream_headers.client.toLowerCase() },
    forwardCredential: a.forward_credential,
    challenge: a.scheme === '' ? 'Bearer' : a.scheme,
    serviceAccountIssuer: a.service_account_issuer,
  };
}

export interface PipelineDeps {
  readonly options: PipelineOptions;
  readonly routes: RouteTable;
  /** The authenticators of a route, in its configured order (compiled once at startup). */
  readonly authenticatorsFor: (route: Route) => readonly Authenticator[];
  /** Headers that carry caller credentials; removed upstream unless forward_credential. */
  readonly credentialHeaders: readonly string[];
  /** Headers always removed upstream (e.g. an untrusted x-forwarded-client-cert). */
  readonly untrustedHeaders: readonly string[];
  /** Recognizes a credential by its value (API keys), to refuse it in the query string. */
  readonly isCredential?: (value: string) => boolean;
  readonly denyList?: DenyList;
  readonly token?: { readonly minter: TokenMinter; readonly header: string; readonly scheme: string };
  /** Credential-stuffing protection; absent: off. */
  readonly failureGuard?: FailureGuard;
  /** Stage timings; absent: not measured. */
  readonly metrics?: MetricsSink;
  /** The policy stage; absent: authentication alone decides. */
  readonly policy?: {
    readonly authorizer: PolicyAuthorizer;
    readonly dryRun: boolean;
    readonly skipBodyParse?: boolean;
    readonly stripCredentialHeaders?: boolean;
    readonly grpcBodies?: GrpcBodies;
  };
  /** OpenAPI validation after the policy (REC-API-14); absent: none. */
  readonly openapi?: OpenApiStage;
}

/**
 * What the policy saw and answered; the input as a value only if someone reads it (decision logs),
 * parsed from its JSON then. A class: one shape and one shared getter for every evaluation.
 */
class Evaluation implements PolicyEvaluation {
  constructor(
    private readonly doc: PolicyInputDoc,
    readonly result: unknown,
    readonly evalNs: number,
  ) {}

  get input(): Readonly<Record<string, unknown>> {
    return this.doc.value();
  }
}

export class CheckPipeline {
  private readonly forbiddenQuery: ReadonlySet<string>;
  private readonly identityHeaders: { subject: string; issuer: string; client: string };
  private readonly stripHeaders: readonly string[];
  private readonly challenge: string;
  private readonly toInput: PolicyInputBuilder | undefined;

  constructor(private readonly deps: PipelineDeps) {
    // The descriptor walk of the policy input is compiled here, at startup, never per request.
    this.toInput = deps.policy
      ? policyInputBuilder({
          skipBodyParse: deps.policy.skipBodyParse ?? false,
          ...(deps.policy.stripCredentialHeaders ? { stripHeaders: deps.credentialHeaders } : {}),
          ...(deps.policy.grpcBodies ? { grpcBodies: deps.policy.grpcBodies } : {}),
        })
      : undefined;
    const o = deps.options;
    this.forbiddenQuery = new Set(o.forbiddenQueryParams);
    this.identityHeaders = o.upstreamHeaders;
    // Identity headers are ours alone: a client-sent copy is always removed (or overwritten).
    this.stripHeaders = [
      this.identityHeaders.subject,
      this.identityHeaders.issuer,
      this.identityHeaders.client,
      ...deps.untrustedHeaders,
      ...(o.forwardCredential ? [] : deps.credentialHeaders),
    ];
    this.challenge = o.challenge;
  }

  /** Builds (and drops) the policy input of `req`: the start-up warm-up (server/warm-up.ts). */
  warmUp(req: CheckRequest__Output): void {
    this.toInput?.(req, undefined);
  }

  /**
   * Decides one request: the decision itself when no stage had to wait (a cached token, the compiled
   * policy, a cached minted token: no promise per Check), else a promise of it. Fails only by
   * rejecting (never a synchronous throw), with UnavailableError or an unexpected error: the caller
   * fails closed.
   * `signal` aborted (the call was reset or ran out of time): rejects with its reason at the next
   * stage boundary, so no credential is checked, no policy evaluated and no token minted after it.
   */
  check(req: RequestView, signal?: StopSignal): Maybe<Decision> {
    try {
      return this.decide(req, signal);
    } catch (err) {
      return rejected(err);
    }
  }

  private decide(req: RequestView, signal: StopSignal | undefined): Maybe<Decision> {
    signal?.throwIfAborted();
    // A path we cannot read as Envoy and the upstream would matches no route safely.
    if (req.pathInvalid) return { allowed: false, route: DEFAULT_ROUTE.name, status: 400, reason: 'path_invalid' };
    const route = this.deps.routes.match(req);
    try {
      if (this.deps.denyList?.sourceBlocked(req.source.address)) throw new AuthnError('source_blocked', 'source address blocked');
      refuseQueryCredentials(req, this.forbiddenQuery, this.deps.isCredential);
      if (this.deps.failureGuard?.blocked(req)) throw new AuthnError('too_many_failures', 'too many failed authentications');
    } catch (err) {
      return this.refused(err, route, undefined);
    }
    let authn: Maybe<Identity | undefined>;
    try {
      authn = this.authenticate(req, route, signal);
    } catch (err) {
      authn = rejected(err);
    }
    if (isPromise(authn)) {
      return authn.then(
        (identity) => this.authenticated(req, route, identity, signal),
        (err: unknown) => this.authenticationFailed(req, route, err),
      );
    }
    return this.authenticated(req, route, authn, signal);
  }

  /** A credential that failed counts towards the failure guard; then it is refused as any other. */
  private async authenticationFailed(req: RequestView, route: Route, err: unknown): Promise<Decision> {
    const guard = this.deps.failureGuard;
    if (guard && err instanceof AuthnError) await guard.record(req);
    return this.refused(err, route, undefined);
  }

  /** Authentication is done: the identity is checked (present where needed, not revoked), then authorized. */
  private authenticated(req: RequestView, route: Route, identity: Identity | undefined, signal: StopSignal | undefined): Maybe<Decision> {
    let d: Maybe<Decision>;
    try {
      if (identity === undefined && !route.public) throw new AuthnError('credential_missing', 'no credential');
      const revoked = identity && this.deps.denyList?.revoked(identity);
      if (revoked) throw new AuthnError('credential_revoked', `revoked by ${revoked}`);
      d = this.authorize(req, route, identity, signal);
    } catch (err) {
      return this.refused(err, route, identity);
    }
    return isPromise(d) ? d.catch((err: unknown) => this.refused(err, route, identity)) : d;
  }

  /** An AuthnError becomes the refusal it stands for; any other error is thrown on (no decision). */
  private refused(err: unknown, route: Route, identity: Identity | undefined): Decision {
    if (!(err instanceof AuthnError)) throw err;
    if (err.code === 'too_many_failures') {
      return { allowed: false, route: route.name, status: 429, reason: err.code, retryAfterSeconds: this.deps.failureGuard?.retryAfterSeconds ?? 60 };
    }
    const forbidden = FORBIDDEN_CODES.has(err.code);
    // Built whole (absent fields undefined), as every decision here: one shape, no spreads per Check.
    return { allowed: false, route: route.name, status: forbidden ? 403 : 401, reason: err.code, challenge: forbidden ? undefined : this.challenge, identity };
  }

  /**
   * Each authenticator of the route in turn; the first credential per slot wins. Stays synchronous
   * while every answer is at once (a cached token); from the first that waits, goes on in `authenticateRest`.
   */
  private authenticate(req: RequestView, route: Route, signal: StopSignal | undefined): Maybe<Identity | undefined> {
    const list = this.deps.authenticatorsFor(route);
    let user: SubjectCredential | undefined;
    let workload: WorkloadCredential | undefined;
    for (let i = 0; i < list.length; i++) {
      signal?.throwIfAborted();
      const c = this.attempt(list[i]!, req);
      if (isPromise(c)) return this.authenticateRest(req, list, i, c, user, workload, signal);
      if (c?.kind === 'subject') user ??= c;
      else if (c?.kind === 'workload') workload ??= c;
    }
    signal?.throwIfAborted();
    return canonicalize(user, workload, this.deps.options.serviceAccountIssuer);
  }

  private async authenticateRest(
    req: RequestView,
    list: readonly Authenticator[],
    at: number,
    pending: Promise<Credential | undefined>,
    user: SubjectCredential | undefined,
    workload: WorkloadCredential | undefined,
    signal: StopSignal | undefined,
  ): Promise<Identity | undefined> {
    for (let i = at; i < list.length; i++) {
      if (i > at) signal?.throwIfAborted();
      const c = i === at ? await pending : await this.attempt(list[i]!, req);
      if (c?.kind === 'subject') user ??= c;
      else if (c?.kind === 'workload') workload ??= c;
    }
    signal?.throwIfAborted();
    return canonicalize(user, workload, this.deps.options.serviceAccountIssuer);
  }

  /** One authenticator: traced (and timed) only where the request carries its kind of credential. */
  private attempt(a: Authenticator, req: RequestView): Maybe<Credential | undefined> {
    return a.carries?.(req) === false ? a.authenticate(req) : childSpanCall('authenticate', methodsAttributes(a), authenticateWith, a, req, undefined, this.deps.metrics);
  }

  /** Authentication passed: the policy (when configured for the route) decides, then the answer is built. */
  private authorize(req: RequestView, route: Route, identity: Identity | undefined, signal: StopSignal | undefined): Maybe<Decision> {
    const p = this.deps.policy;
    const mode = route.policy ?? (p?.dryRun ? 'dry_run' : 'enforce');
    // The operation is found before the policy runs (the policy sees it); it is validated after.
    const api = this.deps.openapi?.match(req, route.openapi);
    if (!p || !this.toInput || mode === 'skip') return this.validated(req, route, identity, NO_EXTRA, signal, api);
    const decisionId = randomUuid();
    let input: PolicyInputDoc;
    try {
      input = this.toInput(req.raw, identity, OpenApiStage.operation(api) || undefined);
    } catch (err) {
      if (!(err instanceof RequestParseError)) throw err;
      // opa-envoy-plugin answers a request it cannot read with 400 before any policy runs.
      if (mode === 'dry_run') return this.validated(req, route, identity, { dryRunDenied: true, wouldStatus: 400, decisionId }, signal, api);
      return { allowed: false, route: route.name, status: 400, reason: 'request_parse_error', parseError: err.message, ...(identity ? { identity } : {}) };
    }
    signal?.throwIfAborted();
    const started = performance.now();
    // The compiled policy answers synchronously: no promise between the input and the decision.
    const { decision, revision, result } = childSpanCall('policy.evaluate', NO_ATTRIBUTES, authorizeWith, p.authorizer, input, undefined, this.deps.metrics);
    const evaluation = new Evaluation(input, result, Math.round((performance.now() - started) * 1e6));
    if (decision.allowed) return this.validated(req, route, identity, { policy: decision, policyRevision: revision, decisionId, evaluation }, signal, api, input);
    if (mode === 'dry_run') return this.validated(req, route, identity, { policyRevision: revision, dryRunDenied: true, wouldStatus: decision.httpStatus ?? 403, decisionId, evaluation }, signal, api, input);
    return {
      allowed: false,
      route: route.name,
      status: decision.httpStatus ?? 403,
      reason: 'policy_denied',
      identity,
      policy: decision,
      policyRevision: revision,
      additions: route.additions,
      decisionId,
      evaluation,
    };
  }

  /** Authorized: the OpenAPI stage (when the request is covered) validates, then the answer is built. */
  private validated(
    req: RequestView,
    route: Route,
    identity: Identity | undefined,
    extra: Partial<Allow>,
    signal: StopSignal | undefined,
    api: StageMatch | undefined,
    input?: PolicyInputDoc,
  ): Maybe<Decision> {
    const stage = this.deps.openapi;
    if (stage && api) {
      signal?.throwIfAborted();
      // The query and body as the policy input parsed them, when it did (no second parse).
      const parsed: Parsed | undefined = input ? { query: input.parsedQuery, ...(input.body ? { body: input.body } : {}) } : undefined;
      const refusal = childSpan('openapi.validate', NO_ATTRIBUTES, () => stage.check(req, api, parsed), this.deps.metrics);
      if (refusal) {
        return {
          allowed: false,
          route: route.name,
          status: refusal.status,
          reason: `openapi_${refusal.reason}`,
          problem: problemAnswer(refusal),
          ...(identity ? { identity } : {}),
          ...(extra.policyRevision !== undefined ? { policyRevision: extra.policyRevision } : {}),
          ...(extra.decisionId !== undefined ? { decisionId: extra.decisionId } : {}),
          ...(extra.evaluation !== undefined ? { evaluation: extra.evaluation } : {}),
        };
      }
    }
    return this.allow(req, route, identity, extra, signal);
  }

  /** Allowed: the minted token (at once when cached), then the answer. */
  private allow(req: RequestView, route: Route, identity: Identity | undefined, extra: Partial<Allow>, signal: StopSignal | undefined): Maybe<Allow> {
    signal?.throwIfAborted();
    const t = this.deps.token;
    if (!identity || !t) return this.allowed(route, identity, extra, undefined);
    const audience = t.minter.audienceFor(req.contextExtensions, route.audience);
    const token = childSpanCall('token.mint', this.audienceAttributes(audience), mintWith, t.minter, identity, audience, this.deps.metrics);
    return isPromise(token) ? token.then((minted) => this.allowed(route, identity, extra, minted)) : this.allowed(route, identity, extra, token);
  }

  /**
   * Our removals when the policy sets no header: they depend only on which of our headers are set
   * (`keys`: none, the identity's, the identity's and the token's), so each list is made once.
   */
  private removals(upstreamHeaders: Readonly<Record<string, string>>, keys: 0 | 1 | 2): readonly string[] {
    return (this.removalsFor[keys] ??= Object.freeze(this.stripHeaders.filter((h) => !Object.hasOwn(upstreamHeaders, h))));
  }

  private readonly removalsFor: (readonly string[] | undefined)[] = [];

  /** The token.mint span's attributes: the last audience's kept (audiences come from config, few). */
  private audienceAttributes(audience: string): Attributes {
    if (this.lastAudience?.['envoy_authz.audience'] !== audience) this.lastAudience = Object.freeze({ 'envoy_authz.audience': audience });
    return this.lastAudience;
  }

  private lastAudience: Attributes | undefined;

  private allowed(route: Route, identity: Identity | undefined, extra: Partial<Allow>, token: string | undefined): Allow {
    const upstreamHeaders: Record<string, string> = {};
    if (identity) {
      upstreamHeaders[this.identityHeaders.subject] = identity.subject;
      upstreamHeaders[this.identityHeaders.issuer] = identity.issuer;
      // The caller for per-client limits: the workload, else the subject itself.
      upstreamHeaders[this.identityHeaders.client] = identity.workload?.id ?? identity.subject;
      const t = this.deps.token;
      if (t && token !== undefined) upstreamHeaders[t.header] = t.scheme === '' ? token : `${t.scheme} ${token}`;
    }
    // What the policy sets is never overridden: none of our headers on a name it sets, and none of
    // our removals of it (Envoy applies removals after additions).
    const policyHeaders = extra.policy?.headers;
    const policySets = policyHeaders && policyHeaders.length > 0 ? new Set(policyHeaders.map(([k]) => k.toLowerCase())) : undefined;
    if (policySets) for (const k of Object.keys(upstreamHeaders)) if (policySets.has(k)) delete upstreamHeaders[k];
    // Nor do we remove a header we set (e.g. authorization carrying the minted token).
    const ours = !route.additions ? NO_HEADERS : policySets ? this.stripHeaders.filter((h) => !Object.hasOwn(upstreamHeaders, h) && !policySets.has(h)) : this.removals(upstreamHeaders, identity ? (token !== undefined && this.deps.token ? 2 : 1) : 0);
    const policyRemoves = extra.policy?.requestHeadersToRemove;
    const removeHeaders = policyRemoves && policyRemoves.length > 0 ? [...ours.filter((h) => !policyRemoves.some((r) => r.toLowerCase() === h)), ...policyRemoves] : ours;
    // One shape for every allowed decision (absent fields undefined), not a spread of `extra`:
    // spread objects of varying shapes were a large part of what each Check promoted to the old generation.
    return {
      allowed: true,
      route: route.name,
      identity,
      upstreamHeaders,
      removeHeaders,
      additions: route.additions,
      policy: extra.policy,
      policyRevision: extra.policyRevision,
      dryRunDenied: extra.dryRunDenied,
      wouldStatus: extra.wouldStatus,
      evaluation: extra.evaluation,
      decisionId: extra.decisionId,
    };
  }
}
