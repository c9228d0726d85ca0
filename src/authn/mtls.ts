// Workload identity from mutual TLS: the peer certificate Envoy forwards
// (attributes.source.certificate, URL-encoded PEM) or, without it, the principal Envoy took from
// that certificate. x-forwarded-client-cert is read only when configured for a trusted proxy hop.
import type { MtlsConfig } from '../config/schema.js';
import type { RequestView } from '../envoy/request.js';
import { AuthnError } from '../lib/errors.js';
import { rejected, type Maybe } from '../lib/maybe.js';
import type { Authenticator, WorkloadCredential } from './authenticator.js';
import { MAX_CERT_BYTES, MAX_XFCC_CHARS, lastXfccElement, parseSpiffeId, svidFromPem, type SpiffeId } from './spiffe.js';

export const XFCC_HEADER = 'x-forwarded-client-cert';

interface Domain {
  readonly exact: ReadonlySet<string> | undefined;
  readonly prefixes: readonly string[];
  readonly serviceAccounts: Readonly<Record<string, string>>;
}

function decodePem(encoded: string): string {
  if (encoded.length > MAX_CERT_BYTES * 3) throw new AuthnError('svid_invalid', 'peer certificate too large');
  try {
    return decodeURIComponent(encoded);
  } catch {
    throw new AuthnError('svid_invalid', 'peer certificate is not URL-encoded PEM');
  }
}

export class MtlsAuthenticator implements Authenticator {
  readonly methods = ['mtls'] as const;
  private readonly domains: ReadonlyMap<string, Domain>;

  constructor(
    private readonly cfg: MtlsConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.domains = new Map(
      cfg.trust_domains.map((d) => {
        const ids = d.allowed_ids ?? [];
        const exact = ids.filter((i) => !i.endsWith('/*'));
        const prefixes = ids.filter((i) => i.endsWith('/*')).map((i) => i.slice(0, -1));
        return [d.name, { exact: d.allowed_ids ? new Set(exact) : undefined, prefixes, serviceAccounts: d.service_accounts ?? {} }];
      }),
    );
  }

  private fromCertificate(pem: string): SpiffeId {
    const r = svidFromPem(pem, this.now());
    if (typeof r === 'string') throw new AuthnError('svid_invalid', `peer certificate is not a valid X509-SVID: ${r}`);
    return r;
  }

  private presented(req: RequestView): SpiffeId | undefined {
    if (this.cfg.trust_xfcc) {
      const xfcc = req.headers.get(XFCC_HEADER);
      if (xfcc !== undefined) {
        // Capped before parsing; too long is as untrusted as unreadable.
        if (xfcc.length > MAX_XFCC_CHARS) throw new AuthnError('svid_invalid', 'x-forwarded-client-cert too large');
        const el = lastXfccElement(xfcc);
        if (!el) throw new AuthnError('svid_invalid', 'x-forwarded-client-cert is malformed');
        if (el?.cert) return this.fromCertificate(decodePem(el.cert));
        const id = el?.uri !== undefined ? parseSpiffeId(el.uri) : undefined;
        if (!id) throw new AuthnError('svid_invalid', 'x-forwarded-client-cert has no SPIFFE URI');
        return id;
      }
    }
    const { certificate, principal } = req.source;
    if (certificate) {
      const id = this.fromCertificate(decodePem(certificate));
      if (principal && principal !== id.id) throw new AuthnError('svid_invalid', 'peer principal does not match its certificate');
      return id;
    }
    if (principal) {
      const id = parseSpiffeId(principal);
      if (!id) throw new AuthnError('svid_invalid', 'peer principal is not a SPIFFE ID');
      return id;
    }
    return undefined;
  }

  carries(req: RequestView): boolean {
    return (this.cfg.trust_xfcc && req.headers.has(XFCC_HEADER)) || !!req.source.certificate || !!req.source.principal;
  }

  /** Synchronous work: the credential at once, a refusal as a rejection (lib/maybe.ts). */
  authenticate(req: RequestView): Maybe<WorkloadCredential | undefined> {
    try {
      return this.identify(req);
    } catch (err) {
      return rejected(err);
    }
  }

  private identify(req: RequestView): WorkloadCredential | undefined {
    const id = this.presented(req);
    if (!id) return undefined;
    const domain = this.domains.get(id.trustDomain);
    const allowed = domain && (domain.exact === undefined || domain.exact.has(id.id) || domain.prefixes.some((p) => id.id.startsWith(p)));
    if (!domain || !allowed) throw new AuthnError('workload_not_allowed', 'SPIFFE ID not allowed');
    return {
      kind: 'workload',
      method: 'mtls',
      id: id.id,
      serviceAccount: domain.serviceAccounts[id.id] ?? id.id,
      trustDomain: id.trustDomain,
      scopes: [],
    };
  }
}
