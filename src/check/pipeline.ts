// The Check flow: route -> guard -> authenticate -> allow/deny. Pure of gRPC; the adapter in
// server/ translates in and out. Composition follows Authorino: identity = first success wins,
// and a present-but-invalid credential fails the request rather than falling through.
import type { Authenticator, Principal } from '../authn/authenticator.js';
import { refuseQueryCredentials } from '../authn/extract.js';
import type { Config } from '../config/schema.js';
import type { RequestView } from '../envoy/request.js';
import { AuthnError } from '../lib/errors.js';
import type { Allow, Decision } from './decision.js';
import type { RouteTable } from './routes.js';

export interface PipelineOptions {
  readonly authentication: Config['authentication'];
}

export class CheckPipeline {
  private readonly forbiddenQuery: ReadonlySet<string>;
  private readonly identityHeaders: Config['authentication']['upstream_headers'];
  private readonly credentialHeader: string;
  private readonly forwardCredential: boolean;
  private readonly challenge: string;

  constructor(
    opts: PipelineOptions,
    private readonly routes: RouteTable,
    private readonly authenticators: readonly Authenticator[],
  ) {
    const a = opts.authentication;
    this.forbiddenQuery = new Set(a.forbidden_query_params.map((p) => p.toLowerCase()));
    this.identityHeaders = { subject: a.upstream_headers.subject.toLowerCase(), issuer: a.upstream_headers.issuer.toLowerCase() };
    this.credentialHeader = a.header.toLowerCase();
    this.forwardCredential = a.forward_credential;
    this.challenge = a.scheme === '' ? 'Bearer' : a.scheme;
  }

  /** Decides one request. Rejects only with UnavailableError (or an unexpected error): the caller fails closed. */
  async check(req: RequestView): Promise<Decision> {
    const route = this.routes.match(req);
    try {
      refuseQueryCredentials(req, this.forbiddenQuery);
      const principal = await this.authenticate(req);
      if (principal === undefined && !route.public) throw new AuthnError('credential_missing', 'no credential');
      return this.allow(route.name, principal);
    } catch (err) {
      if (err instanceof AuthnError) {
        return { allowed: false, route: route.name, status: 401, reason: err.code, challenge: this.challenge };
      }
      throw err;
    }
  }

  private async authenticate(req: RequestView): Promise<Principal | undefined> {
    for (const a of this.authenticators) {
      const p = await a.authenticate(req);
      if (p !== undefined) return p;
    }
    return undefined;
  }

  private allow(route: string, principal: Principal | undefined): Allow {
    const h = this.identityHeaders;
    const upstreamHeaders: Record<string, string> = {};
    if (principal) {
      upstreamHeaders[h.subject] = principal.subject;
      upstreamHeaders[h.issuer] = principal.issuer;
    }
    // Identity headers are ours alone: a client-sent copy is removed even when we set none.
    const removeHeaders = [h.subject, h.issuer].filter((name) => !(name in upstreamHeaders));
    if (!this.forwardCredential) removeHeaders.push(this.credentialHeader);
    return { allowed: true, route, ...(principal ? { principal } : {}), upstreamHeaders, removeHeaders };
  }
}
