import { describe, expect, it } from 'vitest';
import type { Authenticator, Principal } from '../../../src/authn/authenticator.js';
import { CheckPipeline } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { parseConfig } from '../../../src/config/loader.js';
import type { RequestView } from '../../../src/envoy/request.js';
import { AuthnError, UnavailableError } from '../../../src/lib/errors.js';
import { requestView } from '../../helpers/requests.js';

const principal: Principal = { method: 'jwt', subject: 'u1', issuer: 'https://i', expiresAt: 9e9, claims: {} };

/** Stands in for a credential verifier: the pipeline's own logic is what is under test here. */
class FixedAuthenticator implements Authenticator {
  readonly method = 'jwt';
  calls = 0;
  constructor(private readonly outcome: (req: RequestView) => Promise<Principal | undefined>) {}
  authenticate(req: RequestView): Promise<Principal | undefined> {
    this.calls += 1;
    return this.outcome(req);
  }
}

function pipeline(yaml: string, auth: Authenticator[]): CheckPipeline {
  const cfg = parseConfig('t.yaml', yaml);
  return new CheckPipeline({ authentication: cfg.authentication }, new RouteTable(cfg.routes), auth);
}

const withCred = (req: RequestView): Promise<Principal | undefined> => Promise.resolve(req.headers.has('authorization') ? principal : undefined);

describe('CheckPipeline', () => {
  it('allows a verified caller, sets identity headers and removes the credential', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred)]).check(requestView({ headers: { authorization: 'Bearer t' } }));
    expect(d).toMatchObject({ allowed: true, route: 'default', upstreamHeaders: { 'x-auth-subject': 'u1', 'x-auth-issuer': 'https://i' } });
    expect(d.allowed && d.removeHeaders).toEqual(['authorization']);
  });

  it('forwards the credential only when configured', async () => {
    const d = await pipeline('authentication: {forward_credential: true}', [new FixedAuthenticator(withCred)]).check(
      requestView({ headers: { authorization: 'Bearer t' } }),
    );
    expect(d.allowed && d.removeHeaders).toEqual([]);
  });

  it('denies 401 without a credential', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred)]).check(requestView());
    expect(d).toMatchObject({ allowed: false, status: 401, reason: 'credential_missing', challenge: 'Bearer' });
  });

  it('denies 401 with the verifier\'s reason for an invalid credential', async () => {
    const bad = new FixedAuthenticator(() => Promise.reject(new AuthnError('token_expired', 'x')));
    expect(await pipeline('', [bad]).check(requestView({ headers: { authorization: 'Bearer t' } }))).toMatchObject({
      allowed: false,
      status: 401,
      reason: 'token_expired',
    });
  });

  it('lets anonymous callers through public routes and strips spoofed identity headers', async () => {
    const p = pipeline('routes: [{name: pub, match: {path_prefix: /pub}, public: true}]', [new FixedAuthenticator(withCred)]);
    const d = await p.check(requestView({ path: '/pub/x', headers: { 'x-auth-subject': 'admin' } }));
    expect(d).toMatchObject({ allowed: true, route: 'pub', upstreamHeaders: {} });
    expect(d.allowed && d.removeHeaders).toEqual(['x-auth-subject', 'x-auth-issuer', 'authorization']);
  });

  it('still rejects an invalid credential on a public route (no silent downgrade)', async () => {
    const bad = new FixedAuthenticator(() => Promise.reject(new AuthnError('signature_invalid', 'x')));
    const p = pipeline('routes: [{name: pub, match: {path_prefix: /pub}, public: true}]', [bad]);
    expect(await p.check(requestView({ path: '/pub/x', headers: { authorization: 'Bearer t' } }))).toMatchObject({ allowed: false, status: 401 });
  });

  it('refuses credentials in the query before authenticating', async () => {
    const a = new FixedAuthenticator(withCred);
    const d = await pipeline('', [a]).check(requestView({ path: '/x?access_token=abc', headers: { authorization: 'Bearer t' } }));
    expect(d).toMatchObject({ allowed: false, status: 401, reason: 'credential_in_query' });
    expect(a.calls).toBe(0);
  });

  it('does not fall through to the next authenticator after a failure', async () => {
    const bad = new FixedAuthenticator(() => Promise.reject(new AuthnError('signature_invalid', 'x')));
    const good = new FixedAuthenticator(withCred);
    const d = await pipeline('', [bad, good]).check(requestView({ headers: { authorization: 'Bearer t' } }));
    expect(d.allowed).toBe(false);
    expect(good.calls).toBe(0);
  });

  it('propagates infrastructure failures so the caller fails closed', async () => {
    const down = new FixedAuthenticator(() => Promise.reject(new UnavailableError('jwks_unavailable', 'x')));
    await expect(pipeline('', [down]).check(requestView({ headers: { authorization: 'Bearer t' } }))).rejects.toMatchObject({
      code: 'jwks_unavailable',
    });
  });
});
