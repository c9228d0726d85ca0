// Finding the bearer credential in a request. Size is capped here, before any parsing.
import { AuthnError } from '../lib/errors.js';
import type { RequestView } from '../envoy/request.js';
import { startsWithAsciiNoCase } from '../lib/case.js';

export interface BearerSource {
  /** Lower-case header name. */
  readonly header: string;
  /** Scheme before the token, e.g. `Bearer`; '' means the whole header value is the token. */
  readonly scheme: string;
  readonly maxTokenBytes: number;
}

// RFC 6750 b64token, which also covers the three dot-separated base64url parts of a JWS.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The token from the configured header, undefined when the header is absent. */
export function extractBearer(req: RequestView, src: BearerSource): string | undefined {
  const raw = req.headers.get(src.header);
  if (raw === undefined) return undefined;
  // Cap before anything else looks at the value: scheme + one space + the largest token.
  if (raw.length > src.maxTokenBytes + src.scheme.length + 1) {
    throw new AuthnError('token_too_large', `credential header longer than ${src.maxTokenBytes} bytes`);
  }
  let token = raw.trim();
  if (src.scheme !== '') {
    const sp = token.indexOf(' ');
    // The scheme in any ASCII case (RFC 9110 11.1), compared in place.
    if (sp !== src.scheme.length || !startsWithAsciiNoCase(token, src.scheme)) {
      throw new AuthnError('credential_malformed', `credential header does not use the ${src.scheme} scheme`);
    }
    token = token.slice(sp + 1).trimStart();
  }
  if (token.length === 0) throw new AuthnError('credential_malformed', 'empty token');
  if (!B64TOKEN.test(token)) throw new AuthnError('credential_malformed', 'token has characters outside b64token');
  return token;
}

/**
 * Rejects requests that carry a credential in the URL (URLs end up in logs, histories and Referer
 * headers): a forbidden parameter name, or any value that `isCredential` recognizes (e.g. an API key).
 */
export function refuseQueryCredentials(req: RequestView, forbidden: ReadonlySet<string>, isCredential?: (value: string) => boolean): void {
  if (req.query === '') return;
  for (const name of req.queryNames) {
    if (forbidden.has(name)) throw new AuthnError('credential_in_query', `credential in query parameter ${name}`);
  }
  if (isCredential) {
    for (const [, value] of new URLSearchParams(req.query)) {
      if (isCredential(value)) throw new AuthnError('credential_in_query', 'credential value in the query string');
    }
  }
}
