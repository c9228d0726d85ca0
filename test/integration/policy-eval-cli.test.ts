// `policy.js eval` runs the service's own pipeline: the same authenticators, key stores, routes and
// policy as a start of the same config. Proven against the repository's policies and `opa test`
// (the API-key DELETE case), against OPA's own evaluation of the printed input, and against the
// CheckResponse the running service returns for the same CheckRequest.
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestApiKey, generateApiKey } from '../../src/authn/apikey-format.js';
import { protoMapper } from '../../src/envoy/proto-json.js';
import { envoyReflection } from '../../src/envoy/protos.js';
import type { CheckRequest } from '../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { evaluate } from '../../src/cli/eval/run.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { loopbackServer, sendJson } from '../helpers/http.js';
import { AUDIENCE, ISSUER, jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildRepoPolicies, opaBinary } from '../helpers/opa.js';
import { ROOT, configYaml, runScript, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

interface Report {
  authentication: string;
  route: string;
  allowed: boolean;
  reason: string;
  identity: { subject: string; kind: string; method: string; scopes: string[]; roles: string[]; workload?: { id: string; method: string } } | null;
  input: Record<string, unknown> | null;
  result: unknown;
  revision: string | null;
  check_response: Record<string, unknown> | null;
  notes: string[];
}

type Run = { code: number | null; stdout: string; stderr: string; report?: Report };

const evalCli = async (args: string[], stdin?: string): Promise<Run> => {
  const r = await runScript('src/cli/policy.ts', ['eval', ...args], stdin);
  const json = args.includes('json') && r.stdout.startsWith('{') ? (JSON.parse(r.stdout) as Report) : undefined;
  return { ...r, ...(json ? { report: json } : {}) };
};

const headersOf = (resp: Record<string, unknown> | null): Record<string, string> => {
  const ok = resp?.okResponse as { headers?: { header: { key: string; value: string } }[] } | undefined;
  return Object.fromEntries((ok?.headers ?? []).map((h) => [h.header.key, h.header.value]));
};

/** decision_id is a fresh UUID per Check: the only field two evaluations of one request may differ in. */
function withoutDecisionId(resp: Record<string, unknown> | null): Record<string, unknown> | null {
  const meta = resp?.dynamicMetadata as Record<string, unknown> | undefined;
  if (!resp || !meta) return resp;
  expect(meta.decision_id).toMatch(/^[0-9a-f-]{36}$/);
  return { ...resp, dynamicMetadata: Object.fromEntries(Object.entries(meta).filter(([k]) => k !== 'decision_id')) };
}

describe('policy.js eval', () => {
  const tmp = tempDir();
  let key: TestKey;
  let config: string;
  const readOnlyKey = generateApiKey('eak');
  const writerKey = generateApiKey('eak');

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    const expires = new Date(Date.now() + 86400_000).toISOString();
    tmp.write('apikeys.yaml', {
      keys: [
        { id: readOnlyKey.id, digest: digestApiKey(readOnlyKey.key), owner: 'svc', expires_at: expires, scopes: ['orders:write'] },
        { id: writerKey.id, digest: digestApiKey(writerKey.key), owner: 'svc-writer', expires_at: expires, scopes: ['orders:write', 'write'] },
      ],
    });
    buildRepoPolicies(join(tmp.dir, 'bundle.tar.gz'));
    config = tmp.write(
      'authz.yaml',
      configYaml({
        server: { address: '127.0.0.1:0' },
        authentication: { jwt: { issuers: [jwksFileIssuer()] }, api_keys: { file: 'apikeys.yaml' } },
        routes: [
          { name: 'health', match: { path_prefix: '/healthz' }, public: true },
          { name: 'api', match: { path_prefix: '/' } },
        ],
        policy: { bundle: { file: 'bundle.tar.gz' } },
      }),
    );
  });

  it('denies the API-key DELETE that `opa test` denies, with the identity the service builds for an API key', { timeout: 60_000 }, async () => {
    const r = await evalCli(['--config', config, '--api-key', readOnlyKey.key, '--method', 'DELETE', '--path', '/orders/1', '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    const rep = r.report!;
    expect(rep).toMatchObject({ authentication: 'credentials', route: 'api', allowed: false, reason: 'policy_denied', result: { allowed: false } });
    expect(rep.identity).toMatchObject({ subject: 'svc', kind: 'service_account', method: 'api_key', scopes: ['orders:write'], workload: { id: 'svc', method: 'api_key' } });
    expect(rep.input?.identity).toEqual(rep.identity);
    // The key itself never leaves in the report.
    expect(r.stdout).not.toContain(readOnlyKey.key);
    expect((rep.check_response?.deniedResponse as { status: { code: number } }).status.code).toBe(403);

    // OPA itself, on the printed input and the repository's policies, says the same.
    const opa = JSON.parse(
      execFileSync(opaBinary(), ['eval', '--format', 'json', '-d', join(ROOT, 'policies'), '--ignore', 'build', '-I', 'data.envoy.authz.allow'], { input: JSON.stringify(rep.input) }).toString(),
    ) as { result: { expressions: { value: unknown }[] }[] };
    expect(opa.result[0]!.expressions[0]!.value).toEqual(rep.result);

    // The same DELETE with a key that carries the write scope is allowed (exit 0).
    const w = await evalCli(['--config', config, '--api-key', writerKey.key, '--method', 'DELETE', '--path', '/orders/1', '--output', 'json']);
    expect(w.code).toBe(0);
    expect(w.report).toMatchObject({ allowed: true, reason: 'ok', identity: { subject: 'svc-writer', method: 'api_key' } });
  });

  it('verifies a JWT as the service does: roles from the token reach the policy, an expired token is a 401 without a policy run', { timeout: 60_000 }, async () => {
    const token = await signToken(key, { sub: 'alice', claims: { roles: ['buyer'] } });
    const r = await evalCli(['--config', config, '--token', token, '--path', '/orders/1', '--output', 'json']);
    expect(r.code).toBe(0);
    expect(r.report).toMatchObject({ allowed: true, identity: { subject: 'alice', kind: 'user', method: 'jwt', roles: ['buyer'] }, result: { allowed: true } });
    expect(headersOf(r.report!.check_response)['x-authz-roles']).toBe('buyer');
    expect(r.stdout).not.toContain(token);

    const expired = await signToken(key, { sub: 'alice', expIn: -120, iatAgo: 600, claims: { roles: ['buyer'] } });
    const e = await evalCli(['--config', config, '--token', expired, '--path', '/orders/1', '--output', 'json']);
    expect(e.code).toBe(1);
    expect(e.report).toMatchObject({ allowed: false, reason: 'token_expired', input: null, result: null });
    expect((e.report!.check_response?.status as { code: number }).code).toBe(16);
  });

  it('honours an explicit identity (authentication bypassed, and said so) in the short form read from stdin', { timeout: 60_000 }, async () => {
    const request = {
      method: 'DELETE',
      path: '/orders/1',
      // The identity of authz_test.rego's api_key(["orders:write"]).
      identity: { subject: 'svc', kind: 'service_account', method: 'api_key', roles: [], scopes: ['orders:write'], workload: { id: 'svc', method: 'api_key' } },
    };
    const r = await evalCli(['--config', config, '--request', '-', '--output', 'json'], JSON.stringify(request));
    expect(r.code).toBe(1);
    expect(r.report).toMatchObject({ authentication: 'given identity (authentication bypassed)', reason: 'policy_denied', identity: request.identity });

    const admin = await evalCli(['--config', config, '--request', '-'], JSON.stringify({ path: '/admin/users', identity: { subject: 'root', roles: ['admin'] } }));
    expect(admin.code).toBe(0);
    expect(admin.stdout).toMatch(/^verdict: +ALLOWED$/m);
    expect(admin.stdout).toMatch(/^authentication: given identity \(authentication bypassed\)$/m);
    expect(admin.stdout).toMatch(/^identity: +root \(user via jwt/m);

    // An identity the service cannot produce is a usage error, not a guess.
    const bad = await evalCli(['--config', config, '--request', '-'], JSON.stringify({ path: '/', identity: { subject: 'x', kind: 'user', method: 'api_key' } }));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/a user is authenticated by jwt or introspection/);
  });

  it('builds a policies folder as `make policies` does (same revision) and uses it instead of the configured bundle', { timeout: 90_000 }, async () => {
    mkdirSync(join(tmp.dir, 'policies', 'envoy'), { recursive: true });
    tmp.write('policies/envoy/teapot.rego', 'package envoy.authz\nimport rego.v1\ndefault allow := {"allowed": false, "http_status": 429, "body": "slow down"}\n');
    const r = await evalCli(['--config', config, '--policies', join(tmp.dir, 'policies'), '--path', '/healthz', '--output', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.report).toMatchObject({ route: 'health', identity: null, result: { allowed: false, http_status: 429, body: 'slow down' } });
    expect(r.report!.check_response).toMatchObject({ deniedResponse: { status: { code: 429 }, body: 'slow down' } });

    // A decision the service refuses (418 is no status of Envoy's enum) is no decision: exit 3, the
    // gRPC error Envoy would get, and the raw result that explains it.
    mkdirSync(join(tmp.dir, 'broken', 'envoy'), { recursive: true });
    tmp.write('broken/envoy/teapot.rego', 'package envoy.authz\nimport rego.v1\ndefault allow := {"allowed": false, "http_status": 418}\n');
    const broken = await evalCli(['--config', config, '--policies', join(tmp.dir, 'broken'), '--path', '/healthz', '--output', 'json']);
    expect(broken.code).toBe(3);
    expect(broken.report).toMatchObject({ route: 'error', reason: 'policy_error', result: { allowed: false, http_status: 418 }, check_response: null, grpc_error: { code: 'UNAVAILABLE' } });

    // The repository's folder gets the revision `make policies` gives its bundle.
    const repo = await evalCli(['--config', config, '--policies', join(ROOT, 'policies'), '--path', '/healthz', '--output', 'json']);
    expect(repo.code).toBe(0);
    const built = join(tmp.dir, 'made.tar.gz');
    expect((await runScript('src/cli/policy.ts', ['build', '--out', built, join(ROOT, 'policies')])).code).toBe(0);
    const manifest = JSON.parse(execFileSync('tar', ['xzf', built, '-O', '/.manifest']).toString()) as { revision: string };
    expect(repo.report!.revision).toBe(manifest.revision);
  });

  it('fetches a JWKS from the configured URL (cold, as the first Check of a start) and says when that took longer than a Check may', async () => {
    // Slower than check.deadline_ms (150 ms): a start's first Check would fail closed on it.
    const host = await loopbackServer((_req, res) => setTimeout(() => sendJson(res, jwks(key)), 300));
    const configFile = tmp.write(
      'url.yaml',
      configYaml({
        authentication: { jwt: { issuers: [{ issuer: ISSUER, audiences: [AUDIENCE], jwks: { url: `${host.url}/jwks`, allow_insecure_http: true } }] } },
        policy: { bundle: { file: 'bundle.tar.gz' } },
      }),
    );
    const token = await signToken(key, { sub: 'alice', claims: { roles: ['buyer'] } });
    const r = await evaluate({ configFile, request: { path: '/orders/1' }, credentials: { token, headers: {} } });
    expect(host.hits()).toBe(1);
    expect(r).toMatchObject({ allowed: true, identity: { subject: 'alice', method: 'jwt' } });
    expect(r.notes.join('\n')).toMatch(/more than check\.deadline_ms \(150\)/);
  });

  it('refuses bad usage with exit code 2 and one line', { timeout: 90_000 }, async () => {
    const cases: [string[], RegExp, string?][] = [
      [['--config', config, '--bogus'], /bogus/],
      [['--config', config, '--request', '-'], /no such field/, JSON.stringify({ attributes: { request: { http: { methd: 'GET' } } } })],
      [['--config', config, '--request', '-'], /not JSON/, '{'],
      [['--config', config, '--policies', 'x', '--bundle', 'y'], /not both/],
      [['--config', join(tmp.dir, 'missing.yaml')], /cannot read file/],
    ];
    for (const [args, message, stdin] of cases) {
      const r = await evalCli(args, stdin);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
  });

  describe('the printed CheckResponse is what the running service answers', () => {
    let svc: Awaited<ReturnType<typeof startInProcess>>;
    let client: AuthzClient;
    beforeAll(async () => {
      svc = await startInProcess(config);
      client = authzClient(svc.address);
    });
    afterAll(async () => {
      client?.close();
      await svc?.shutdown();
    });

    const request = (method: string, path: string, headers: Record<string, string>): CheckRequest => ({
      attributes: {
        source: { address: { socket_address: { address: '10.1.2.3', port_value: 40000 } } },
        request: {
          http: { id: '7', method, path, host: 'api.example.test', scheme: 'https', protocol: 'HTTP/2', headers: { ':method': method, ':path': path, ':authority': 'api.example.test', 'x-request-id': 'r-1', ...headers } },
        },
        context_extensions: { audience: 'orders' },
      },
    });

    it.each([
      ['a JWT GET (allowed, with the policy headers)', 'GET', '/orders/1', 'jwt'],
      ['the API-key DELETE (denied by the policy)', 'DELETE', '/orders/1', 'apikey'],
      ['no credential (401 before the policy)', 'GET', '/orders/1', 'none'],
      ['a public path (anonymous)', 'GET', '/healthz', 'none'],
    ])('%s', { timeout: 60_000 }, async (_name, method, path, cred) => {
      const headers: Record<string, string> =
        cred === 'jwt' ? { authorization: `Bearer ${await signToken(key, { sub: 'alice', claims: { roles: ['buyer'] } })}` } : cred === 'apikey' ? { 'x-api-key': readOnlyKey.key } : {};
      const req = request(method, path, headers);
      const r = await evalCli(['--config', config, '--request', tmp.write(`req-${cred}-${method}.json`, req), '--output', 'json']);
      expect(r.stderr).toBe('');
      const mapped = protoMapper(envoyReflection().lookupType('envoy.service.auth.v3.CheckResponse'))(await client.check(req));
      expect(withoutDecisionId(r.report!.check_response)).toEqual(withoutDecisionId(mapped));
    });
  });
});
