// `Authorization: Bearer <token>`: one extraction, then JWT-shaped tokens go to the JWT verifier
// and opaque ones to introspection. Which of the two a route accepts is its configuration.
import type { RequestView } from '../envoy/request.js';
import { AuthnError } from '../lib/errors.js';
import { rejected, type Maybe } from '../lib/maybe.js';
import type { Authenticator, SubjectCredential, SubjectMethod } from './authenticator.js';
import { extractBearer, type BearerSource } from './extract.js';
import type { Introspector } from './introspection.js';
import { looksLikeJwt, type JwtVerifier } from './jwt.js';

export class BearerAuthenticator implements Authenticator {
  readonly methods: readonly SubjectMethod[];

  constructor(
    private readonly source: BearerSource,
    private readonly jwt: JwtVerifier | undefined,
    private readonly introspector: Introspector | undefined,
  ) {
    this.methods = [...(jwt ? (['jwt'] as const) : []), ...(introspector ? (['introspection'] as const) : [])];
  }

  carries(request: RequestView): boolean {
    return request.headers.has(this.source.header);
  }

  /** A cached JWT comes back at once (no promise); everything else, failures included, later. */
  authenticate(request: RequestView): Maybe<SubjectCredential | undefined> {
    let token: string | undefined;
    try {
      token = extractBearer(request, this.source);
    } catch (err) {
      return rejected(err);
    }
    if (token === undefined) return undefined;
    if (token.length > this.source.maxTokenBytes) return Promise.reject(new AuthnError('token_too_large', 'token too large'));
    if (looksLikeJwt(token) || !this.introspector) {
      if (!this.jwt) return Promise.reject(new AuthnError('credential_malformed', 'JWTs are not accepted here'));
      return this.jwt.verify(token);
    }
    return this.introspector.verify(token);
  }
}
