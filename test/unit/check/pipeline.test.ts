import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Maybe } from '../../../src/lib/maybe.js';
import { Stop } from '../../../src/lib/stop.js';
import type { AuthMethod, Authenticator, Credential, SubjectCredential, WorkloadCredential } from '../../../src/authn/authenticator.js';
import { CheckPipeline, pipelineOptions, type PipelineDeps } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { parseConfig } from '../../../src/config/loader.js';
import type { RequestView } from '../../../src/envoy/request.js';
import { MemoryDenyList } from '../../../src/identity/revocation/memory.js';
import { AuthnError, UnavailableError } from '../../../src/lib/errors.js';
import { requestView } from '../../helpers/requests.js';
import { readFileSync } from 'node:fs';
import { parseBundle } from '../../../src/policy/bundle.js';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { PolicyAuthorizer } from '../../../src/policy/authorizer.js';
import { buildBundle } from '../../helpers/opa.js';
import { tempDir } from '../../helpers/tmp.js';

const user: SubjectCredential = {
  kind: 'subject',
  method: 'jwt',
  subject: 'u1',
  issuer: 'https://i',
  expiresAt: 9e9,
  jti: 'jti-1',
  scopes: ['read'],
  roles: [],
  claims: {},
};
const workload: WorkloadCredential = { kind: 'workload', method: 'api_key', id: 'svc-a', serviceAccount: 'svc-a', keyId: 'KEY000000001', scopes: ['batch'] };

/** Stands in for a credential verifier: the pipeline's own logic is what is under test here. */
/**
 * How verifiers answer a credential they know: 'at once' (a cached token: the pipeline then makes
 * no promise) or 'a promise' (a first verification). The pipeline's tests run both ways.
 */
type Answers = 'at once' | 'a promise';
let answers: Answers = 'a promise';

class FixedAuthenticator implements Authenticator {
  readonly methods: readonly AuthMethod[] = ['jwt'];
  calls = 0;
  constructor(
    private readonly outcome: (req: RequestView) => Maybe<Credential | undefined>,
    private readonly mode?: Answers,
  ) {}
  authenticate(req: RequestView): Maybe<Credential | undefined> {
    this.calls += 1;
    const r = this.outcome(req);
    return (this.mode ?? answers) === 'a promise' ? Promise.resolve(r) : r;
  }
}

function pipeline(yaml: string, auth: Authenticator[], extra: Partial<PipelineDeps> = {}): CheckPipeline {
  const cfg = parseConfig('t.yaml', yaml);
  return new CheckPipeline({
    options: pipelineOptions(cfg.authentication),
    routes: new RouteTable(cfg.routes),
    authenticatorsFor: () => auth,
    credentialHeaders: ['authorization', 'x-api-key'],
    untrustedHeaders: ['x-forwarded-client-cert'],
    ...extra,
  });
}

const withCred = (req: RequestView): Credential | undefined => (req.headers.has('authorization') ? user : undefined);
const withKey = (req: RequestView): Credential | undefined => (req.headers.has('x-api-key') ? workload : undefined);
const fail = (code: ConstructorParameters<typeof AuthnError>[0]) => new FixedAuthenticator(() => Promise.reject(new AuthnError(code, 'x')));

describe.each(['at once', 'a promise'] as const)('CheckPipeline, verifiers answering %s', (mode) => {
  beforeEach(() => {
    answers = mode;
  });
  afterEach(() => {
    answers = 'a promise';
  });

  it('decides without a promise exactly when every stage answered at once', () => {
    const p = pipeline('', [new FixedAuthenticator(withCred), new FixedAuthenticator(withKey)]);
    for (const headers of [{ authorization: 'Bearer t' }, { 'x-api-key': 'k' }, {}] as Record<string, string>[]) {
      const d = p.check(requestView({ headers }));
      expect(d instanceof Promise).toBe(mode === 'a promise');
    }
  });

  it('fails only by rejecting, never by a synchronous throw', async () => {
    const broken = new FixedAuthenticator(() => {
      throw new UnavailableError('internal', 'broke');
    });
    const d = pipeline('', [broken]).check(requestView({ headers: { authorization: 'Bearer t' } }));
    expect(d).toBeInstanceOf(Promise);
    await expect(d).rejects.toMatchObject({ code: 'internal' });
  });

  it('goes on after the first authenticator that waits, with the same identity', async () => {
    const other: Answers = mode === 'at once' ? 'a promise' : 'at once';
    const req = requestView({ headers: { authorization: 'Bearer t', 'x-api-key': 'k' } });
    for (const [a, b] of [[mode, other], [other, mode]] as const) {
      const first = new FixedAuthenticator(withCred, a);
      const second = new FixedAuthenticator(withKey, b);
      const d = await pipeline('', [first, second]).check(req);
      expect(d.identity).toMatchObject({ subject: 'u1', kind: 'user', workload: { id: 'svc-a', method: 'api_key' } });
      expect([first.calls, second.calls]).toEqual([1, 1]);
    }
  });

  it('checks no credential once the call is stopped: rejects with its reason, never a synchronous throw', async () => {
    const a = new FixedAuthenticator(withCred);
    const stop = new Stop();
    const reason = new UnavailableError('cancelled', 'the caller cancelled the call');
    stop.abort(reason);
    const d = pipeline('', [a]).check(requestView({ headers: { authorization: 'Bearer t' } }), stop);
    expect(d).toBeInstanceOf(Promise);
    await expect(d).rejects.toBe(reason);
    expect(a.calls).toBe(0);
  });

  it('allows a verified user, sets identity headers and removes credentials and untrusted headers', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred)]).check(requestView({ headers: { authorization: 'Bearer t' } }));
    expect(d).toMatchObject({ allowed: true, route: 'default', upstreamHeaders: { 'x-auth-subject': 'u1', 'x-auth-issuer': 'https://i' } });
    expect(d.identity).toMatchObject({ subject: 'u1', kind: 'user', method: 'jwt' });
    expect(d.allowed && d.removeHeaders).toEqual(['x-forwarded-client-cert', 'authorization', 'x-api-key']);
  });

  it('removes an untrusted header whatever its name (one named like an Object.prototype member too), the same on every call', async () => {
    const p = pipeline('', [new FixedAuthenticator(withCred)], { untrustedHeaders: ['constructor', 'x-forwarded-client-cert'] });
    const lists = [];
    for (let i = 0; i < 3; i++) {
      const d = await p.check(requestView({ headers: { authorization: 'Bearer t' } }));
      expect(d.allowed && d.removeHeaders).toEqual(['constructor', 'x-forwarded-client-cert', 'authorization', 'x-api-key']);
      lists.push(d.allowed && d.removeHeaders);
    }
    // Made once and shared: frozen, so no reader can change another call's answer.
    expect(Object.isFrozen(lists[0])).toBe(true);
  });

  it('forwards credentials only when configured, but never untrusted headers', async () => {
    const d = await pipeline('authentication: {forward_credential: true}', [new FixedAuthenticator(withCred)]).check(
      requestView({ headers: { authorization: 'Bearer t' } }),
    );
    expect(d.allowed && d.removeHeaders).toEqual(['x-forwarded-client-cert']);
  });

  it('turns a workload alone into its service account (SP 800-228 2.7.2)', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred), new FixedAuthenticator(withKey)]).check(requestView({ headers: { 'x-api-key': 'k' } }));
    expect(d.identity).toMatchObject({ subject: 'svc-a', kind: 'service_account', issuer: 'urn:envoy-authz:service-accounts', method: 'api_key', workload: { id: 'svc-a', keyId: 'KEY000000001' } });
  });

  it('keeps the user as subject and the workload as caller when both are present (2.7.4)', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred), new FixedAuthenticator(withKey)]).check(
      requestView({ headers: { authorization: 'Bearer t', 'x-api-key': 'k' } }),
    );
    expect(d.identity).toMatchObject({ subject: 'u1', kind: 'user', workload: { id: 'svc-a', method: 'api_key' } });
  });

  it('denies 401 without a credential', async () => {
    const d = await pipeline('', [new FixedAuthenticator(withCred)]).check(requestView());
    expect(d).toMatchObject({ allowed: false, status: 401, reason: 'credential_missing', challenge: 'Bearer' });
  });

  it('denies 401 with the verifier\'s reason for an invalid credential', async () => {
    expect(await pipeline('', [fail('token_expired')]).check(requestView({ headers: { authorization: 'Bearer t' } }))).toMatchObject({
      allowed: false,
      status: 401,
      reason: 'token_expired',
    });
  });

  it('denies 403 without a challenge for a restricted credential', async () => {
    const d = await pipeline('', [fail('credential_restricted')]).check(requestView({ headers: { 'x-api-key': 'k' } }));
    expect(d).toMatchObject({ allowed: false, status: 403, reason: 'credential_restricted' });
    expect(d.allowed || d.challenge).toBeUndefined();
  });

  it('lets anonymous callers through public routes and strips spoofed identity headers', async () => {
    const p = pipeline('routes: [{name: pub, match: {path_prefix: /pub}, public: true}]', [new FixedAuthenticator(withCred)]);
    const d = await p.check(requestView({ path: '/pub/x', headers: { 'x-auth-subject': 'admin' } }));
    expect(d).toMatchObject({ allowed: true, route: 'pub', upstreamHeaders: {} });
    expect(d.allowed && d.removeHeaders).toContain('x-auth-subject');
    expect(d.identity).toBeUndefined();
  });

  it('still rejects an invalid credential on a public route (no silent downgrade)', async () => {
    const p = pipeline('routes: [{name: pub, match: {path_prefix: /pub}, public: true}]', [fail('signature_invalid')]);
    expect(await p.check(requestView({ path: '/pub/x', headers: { authorization: 'Bearer t' } }))).toMatchObject({ allowed: false, status: 401 });
  });

  it('refuses credentials in the query before authenticating', async () => {
    const a = new FixedAuthenticator(withCred);
    const d = await pipeline('', [a]).check(requestView({ path: '/x?access_token=abc', headers: { authorization: 'Bearer t' } }));
    expect(d).toMatchObject({ allowed: false, status: 401, reason: 'credential_in_query' });
    expect(a.calls).toBe(0);
  });

  it('does not fall through to the next authenticator after a failure', async () => {
    const good = new FixedAuthenticator(withCred);
    const d = await pipeline('', [fail('signature_invalid'), good]).check(requestView({ headers: { authorization: 'Bearer t' } }));
    expect(d.allowed).toBe(false);
    expect(good.calls).toBe(0);
  });

  it('propagates infrastructure failures so the caller fails closed', async () => {
    const down = new FixedAuthenticator(() => Promise.reject(new UnavailableError('jwks_unavailable', 'x')));
    await expect(pipeline('', [down]).check(requestView({ headers: { authorization: 'Bearer t' } }))).rejects.toMatchObject({
      code: 'jwks_unavailable',
    });
  });

  it('denies revoked jti, subject and API key id, and blocked sources', async () => {
    const deny = new MemoryDenyList();
    const p = pipeline('', [new FixedAuthenticator(withCred), new FixedAuthenticator(withKey)], { denyList: deny });
    const both = requestView({ headers: { authorization: 'Bearer t', 'x-api-key': 'k' } });
    expect((await p.check(both)).allowed).toBe(true);
    for (const [kind, value] of [['jti', 'jti-1'], ['subject', 'u1'], ['api_key', 'KEY000000001']] as const) {
      await deny.add({ kind, value, createdAt: 0 });
      expect(await p.check(both)).toMatchObject({ allowed: false, status: 401, reason: 'credential_revoked' });
      await deny.remove(kind, value);
      expect((await p.check(both)).allowed).toBe(true);
    }
    await deny.add({ kind: 'cidr', value: '127.0.0.0/8', createdAt: 0 });
    expect(await p.check(both)).toMatchObject({ allowed: false, status: 403, reason: 'source_blocked' });
    await deny.add({ kind: 'jti', value: 'expired-entry', createdAt: 0, expiresAt: 1 });
    expect(deny.list().map((e) => e.value)).toEqual(['127.0.0.0/8']);
  });
});

describe('deny list expiry', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ignores expired entries at once, and sweeps them out of memory on the next sweep', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let now = 1_000_000_000;
    const deny = new MemoryDenyList(() => now);
    await deny.start();
    await deny.add({ kind: 'jti', value: 'short', createdAt: 0, expiresAt: now / 1000 + 10 });
    await deny.add({ kind: 'cidr', value: '10.0.0.0/8', createdAt: 0, expiresAt: now / 1000 + 10 });
    await deny.add({ kind: 'subject', value: 'forever', createdAt: 0 });
    expect(deny.sourceBlocked('10.1.2.3')).toBe(true);
    now += 11_000;
    expect(deny.sourceBlocked('10.1.2.3')).toBe(false); // ignored once expired, before any sweep
    expect(deny.list().map((e) => e.value)).toEqual(['forever']);
    expect(deny.stored).toBe(3); // still held: only the sweep removes them
    vi.advanceTimersByTime(60_000);
    expect(deny.stored).toBe(1);
    await deny.close();
  });
});

describe('CheckPipeline with a policy: our additions beside its answer (routes[].additions)', () => {
  const tmp = tempDir();
  const REGO = `package envoy.authz
import rego.v1
default allow := false
allow := {"allowed": true, "headers": {"Authorization": "Bearer from-policy", "x-auth-subject": "policy-subject"}} if input.parsed_path[0] == "sets"
allow := true if input.parsed_path[0] == "bare"
`;
  let authorizer: PolicyAuthorizer;
  const yaml = (additions: boolean): string => `routes: [{name: r, match: {path_prefix: /}, public: true, additions: ${additions}}]`;
  const run = async (additions: boolean, path: string, headers: Record<string, string> = {}) =>
    pipeline(yaml(additions), [new FixedAuthenticator(withCred)], { policy: { authorizer, dryRun: false } }).check(requestView({ path, headers }));

  it('builds the engine from a real bundle', async () => {
    const engine = new PolicyEngine({ decisionPath: 'envoy/authz/allow', initialPages: 16, maxPages: 64 });
    await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, 'p', { rego: REGO, revision: 'p-1' }))));
    authorizer = new PolicyAuthorizer(engine);
  });

  it('never sets or removes a header the policy sets, and removes the rest of ours only with additions', async () => {
    const on = await run(true, '/sets', { authorization: 'Bearer t' });
    expect(on.allowed).toBe(true);
    if (!on.allowed) return;
    expect(on.upstreamHeaders).not.toHaveProperty('x-auth-subject'); // the policy's wins
    expect(on.upstreamHeaders['x-auth-issuer']).toBe('https://i');
    expect(on.removeHeaders).not.toContain('authorization');
    expect(on.removeHeaders).not.toContain('x-auth-subject');
    expect(on.removeHeaders).toEqual(['x-forwarded-client-cert', 'x-api-key']);
    const off = await run(false, '/bare');
    expect(off.allowed && off.removeHeaders).toEqual([]);
    const offOn = await run(true, '/bare');
    expect(offOn.allowed && offOn.removeHeaders).toContain('authorization');
  });

  it('answers a request the plugin cannot parse with 400 request_parse_error before the policy runs', async () => {
    const d = await run(false, '/sets?a=%zz');
    expect(d).toMatchObject({ allowed: false, status: 400, reason: 'request_parse_error' });
  });
});
