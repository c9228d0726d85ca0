// The policy stage through the real gRPC server with real OPA wasm bundles: every decision
// field of opa-envoy-plugin's format, the error cases, signed bundles, and hot reload under load.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigError, ConfigProblem } from '../../src/lib/errors.js';
import type { CheckResponse__Output } from '../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import { send } from '../helpers/client.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildBundle, buildRepoPolicies } from '../helpers/opa.js';
import { loopbackServer } from '../helpers/http.js';
import { checkRequest } from '../helpers/requests.js';
import { ROOT, configYaml, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const TABLE_REGO = `package envoy.authz
import rego.v1

allow := data.cases[input.parsed_path[0]]

subject := input.identity.subject if input.identity != null
else := "anonymous"

allow := {"allowed": true, "headers": {"x-method": input.attributes.request.http.method, "x-subject": subject, "x-q": input.parsed_query.q[0]}} if input.parsed_path[0] == "echo"

allow := {"allowed": true} if input.parsed_path[0] == "conflict"
allow := {"allowed": false} if input.parsed_path[0] == "conflict"
`;

const CASES: Record<string, unknown> = {
  bool_true: true,
  bool_false: false,
  obj_allow: {
    allowed: true,
    headers: { 'x-a': '1', 'x-b': ['2', '3'] },
    response_headers_to_add: { 'x-r': 'r' },
    request_headers_to_remove: ['x-drop'],
    query_parameters_to_set: { q: 'v', m: ['1', '2'] },
    query_parameters_to_remove: ['secret'],
    dynamic_metadata: { tier: 'gold', n: 3, nested: { ok: true } },
  },
  headers_list: { allowed: true, headers: [{ 'x-a': '1' }, { 'x-a': '2' }] },
  deny_custom: { allowed: false, http_status: 429, body: 'slow down', headers: { 'retry-after': '5' } },
  deny_default: { allowed: false },
  deny_body_only: { allowed: false, body: 'nope' },
  missing_allowed: { headers: {} },
  allowed_not_bool: { allowed: 'yes' },
  bad_status: { allowed: false, http_status: 999 },
  bad_headers: { allowed: true, headers: 'x' },
  bad_header_value: { allowed: true, headers: { a: 1 } },
  bad_body: { allowed: false, body: 5 },
  bad_remove: { allowed: true, request_headers_to_remove: 'x' },
  not_object: 'string',
};

type Pairs = [string | undefined, string | undefined][];
const hv = (list: { header?: { key?: string; value?: string } }[] | undefined): Pairs => (list ?? []).map((h) => [h.header?.key, h.header?.value]);
const errOf = (p: Promise<unknown>): Promise<ServiceError> =>
  p.then(
    () => {
      throw new Error('expected a gRPC error');
    },
    (e: unknown) => e as ServiceError,
  );

describe('policy decisions through the server', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;
  const at = (path: string, headers: Record<string, string> = {}): Promise<CheckResponse__Output> => client.check(checkRequest({ path, headers }));

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildBundle(tmp.dir, 'table', { rego: TABLE_REGO, data: { cases: CASES }, revision: 'table-1' });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          authentication: { jwt: { issuers: [jwksFileIssuer()] } },
          routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }],
          policy: { bundle: { file: 'table.tar.gz' } },
        }),
      ),
    );
    client = authzClient(svc.address);
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  it('boolean true allows, false denies with the uniform 403', async () => {
    expect((await at('/bool_true')).status?.code).toBe(0);
    const d = await at('/bool_false');
    expect(d.denied_response?.status?.code).toBe('Forbidden');
    expect(d.denied_response?.body).toBe('{"error":"forbidden","message":"Access denied."}');
  });

  it('maps every field of an allowing object decision', async () => {
    const r = await at('/obj_allow');
    expect(r.status?.code).toBe(0);
    const ok = r.ok_response!;
    expect(hv(ok.headers)).toEqual(expect.arrayContaining([['x-a', '1'], ['x-b', '2'], ['x-b', '3']]));
    expect(hv(ok.response_headers_to_add)).toEqual([['x-r', 'r']]);
    expect(ok.headers_to_remove).toContain('x-drop');
    expect(ok.query_parameters_to_set?.map((q) => [q.key, q.value]).sort()).toEqual([['m', '1'], ['m', '2'], ['q', 'v']]);
    expect(ok.query_parameters_to_remove).toEqual(['secret']);
    const meta = r.dynamic_metadata?.fields ?? {};
    expect(meta.tier?.stringValue).toBe('gold');
    expect(meta.n?.numberValue).toBe(3);
    expect(meta.nested?.structValue?.fields?.ok?.boolValue).toBe(true);
    expect(meta.policy_revision?.stringValue).toBe('table-1');
  });

  it('accepts headers as a list of objects', async () => {
    expect(hv((await at('/headers_list')).ok_response?.headers).filter(([k]) => k === 'x-a')).toEqual([['x-a', '1'], ['x-a', '2']]);
  });

  it('uses a denying policy\'s own status, headers and body', async () => {
    const d = (await at('/deny_custom')).denied_response!;
    expect(d.status?.code).toBe('TooManyRequests');
    expect(d.body).toBe('slow down');
    expect(hv(d.headers)).toEqual([['retry-after', '5']]);
    expect((await at('/deny_default')).denied_response?.body).toBe('{"error":"forbidden","message":"Access denied."}');
    const b = (await at('/deny_body_only')).denied_response!;
    expect([b.status?.code, b.body]).toEqual(['Forbidden', 'nope']);
  });

  it('gives the policy the opa-envoy-plugin input and input.identity', async () => {
    const anon = await at('/echo?q=hello');
    expect(hv(anon.ok_response?.headers)).toEqual(expect.arrayContaining([['x-method', 'GET'], ['x-subject', 'anonymous'], ['x-q', 'hello']]));
    const token = await signToken(key, { sub: 'alice' });
    const user = await at('/echo?q=1', { authorization: `Bearer ${token}` });
    expect(hv(user.ok_response?.headers)).toContainEqual(['x-subject', 'alice']);
  });

  it.each(['missing_allowed', 'allowed_not_bool', 'bad_status', 'bad_headers', 'bad_header_value', 'bad_body', 'bad_remove', 'not_object', 'undefined_case', 'conflict'])(
    'fails closed on %s',
    async (name) => {
      const err = await errOf(at(`/${name}`));
      expect(err.code).toBe(status.UNAVAILABLE);
      expect(err.details).toBe('authorization decision unavailable');
    },
  );

  it('logs the policy revision with every decision', () => {
    expect(svc.logs.lines().some((l) => l.event === 'check' && l.policy_revision === 'table-1')).toBe(true);
  });
});

const REV_REGO = (rev: string): string => `package envoy.authz
import rego.v1
allow := {"allowed": true, "headers": {"x-rev": "${rev}"}, "dynamic_metadata": {"rev": "${rev}"}}
`;

describe('hot reload', () => {
  const tmp = tempDir();
  const ADMIN = 'policy-admin-token-0123456789';

  it('swaps bundles under a steady stream of calls: none fails, none sees a mixed state, a corrupt bundle is refused', async () => {
    const a = buildBundle(tmp.dir, 'rev-a', { rego: REV_REGO('A'), revision: 'A' });
    const b = buildBundle(tmp.dir, 'rev-b', { rego: REV_REGO('B'), revision: 'B' });
    copyFileSync(a, join(tmp.dir, 'active.tar.gz'));
    const svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }],
          policy: { bundle: { file: 'active.tar.gz', poll_interval_ms: 100 } },
          admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN).digest('hex') }] },
        }),
      ),
    );
    const client = authzClient(svc.address);
    const reload = () => send(`http://${svc.adminAddress}/v1/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
    try {
      let stop = false;
      const seen = new Set<string>();
      const worker = async (): Promise<number> => {
        let n = 0;
        while (!stop) {
          const r = await client.check(checkRequest({ path: '/x' }));
          const header = hv(r.ok_response?.headers).find(([k]) => k === 'x-rev')?.[1];
          const meta = r.dynamic_metadata?.fields?.rev?.stringValue;
          const revision = r.dynamic_metadata?.fields?.policy_revision?.stringValue;
          // One bundle answered the whole call: header, metadata and revision agree.
          expect(header).toBeDefined();
          expect([header, meta]).toEqual([revision, revision]);
          seen.add(header!);
          n += 1;
        }
        return n;
      };
      const workers = Array.from({ length: 8 }, worker);
      for (let i = 0; i < 6; i++) {
        copyFileSync(i % 2 === 0 ? b : a, join(tmp.dir, 'active.tar.gz'));
        expect((await reload()).status).toBe(200);
        await new Promise((r) => setTimeout(r, 40));
      }
      writeFileSync(join(tmp.dir, 'active.tar.gz'), 'this is not a bundle');
      const bad = await reload();
      expect(bad.status).toBe(422);
      await new Promise((r) => setTimeout(r, 300)); // the file poller sees it too, and refuses it too
      stop = true;
      const counts = await Promise.all(workers);
      expect(counts.reduce((x, y) => x + y, 0)).toBeGreaterThan(50);
      expect(seen).toEqual(new Set(['A', 'B']));
      const last = await client.check(checkRequest({ path: '/x' }));
      expect(last.dynamic_metadata?.fields?.policy_revision?.stringValue).toBe('A');
      expect(svc.logs.lines().some((l) => l.event === 'bundle_rejected')).toBe(true);
      const ready = JSON.parse((await send(`http://${svc.adminAddress}/readyz`)).body) as { components: { policy: string } };
      expect(ready.components.policy).toBe('active A (last update rejected)');
      expect(svc.logs.lines()).toContainEqual(expect.objectContaining({ event: 'admin', action: 'policy_reload', actor: 'ops', result: 'rejected' }));
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});

describe('signed bundles', () => {
  const tmp = tempDir();

  it('accepts a good signature and refuses unsigned and tampered bundles', async () => {
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(tmp.dir, 'sign.pem')]);
    execFileSync('openssl', ['pkey', '-in', join(tmp.dir, 'sign.pem'), '-pubout', '-out', join(tmp.dir, 'sign.pub')]);
    const signed = buildBundle(tmp.dir, 'signed', { rego: REV_REGO('S'), data: { x: 1 }, revision: 'S', signingKey: { file: join(tmp.dir, 'sign.pem'), alg: 'ES256' } });
    buildBundle(tmp.dir, 'unsigned', { rego: REV_REGO('U'), revision: 'U' });

    // Tamper: change data.json inside the signed bundle and repack it.
    const work = join(tmp.dir, 'tamper');
    execFileSync('mkdir', ['-p', work]);
    execFileSync('tar', ['xzf', signed, '-C', work]);
    writeFileSync(join(work, 'data.json'), JSON.stringify({ x: 2 }));
    // Repacked with the names opa writes ("/data.json"): "./data.json" would not be the signed file at all.
    execFileSync('tar', ['-czPf', join(tmp.dir, 'tampered.tar.gz'), '-C', work, '--transform', 's,^\\./,/,', '.']);

    const config = (file: string): string =>
      tmp.write(
        `${file}.yaml`,
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }],
          policy: { bundle: { file }, verification: { key_file: 'sign.pub', algorithm: 'ES256' } },
        }),
      );
    const good = await startInProcess(config('signed.tar.gz'));
    const c = authzClient(good.address);
    expect((await c.check(checkRequest())).dynamic_metadata?.fields?.policy_revision?.stringValue).toBe('S');
    c.close();
    await good.shutdown();

    const refusal = async (file: string): Promise<ConfigProblem | undefined> =>
      startInProcess(config(file)).then(
        () => undefined,
        (e: unknown) => (e as ConfigError).problems[0],
      );
    const unsigned = await refusal('unsigned.tar.gz');
    expect(unsigned?.keyPath).toBe('/policy/bundle/file');
    expect(unsigned?.problem).toContain('not signed');
    expect((await refusal('tampered.tar.gz'))?.problem).toContain('data.json does not match');
  });
});

describe('dry run and decision cache', () => {
  const tmp = tempDir();
  const ADMIN = 'cache-admin-token-0123456789';

  it('a dry-run route logs the denial but allows; cached decisions follow only the declared keys and die with the revision', async () => {
    buildBundle(tmp.dir, 'table', { rego: TABLE_REGO, data: { cases: CASES }, revision: 'c-1' });
    const svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: [
            { name: 'trial', match: { path_prefix: '/bool_false' }, public: true, policy: 'dry_run' },
            { name: 'all', match: { path_prefix: '/' }, public: true },
          ],
          policy: { bundle: { file: 'table.tar.gz' }, decision_cache: { key: ['parsed_path'] } },
          admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN).digest('hex') }] },
        }),
      ),
    );
    const client = authzClient(svc.address);
    try {
      expect((await client.check(checkRequest({ path: '/bool_false' }))).status?.code).toBe(0);
      expect(svc.logs.lines()).toContainEqual(expect.objectContaining({ event: 'check', route: 'trial', allowed: true, reason: 'dry_run_denied' }));

      const method = async (m: string): Promise<string | undefined> =>
        hv((await client.check(checkRequest({ method: m, path: '/echo?q=1' }))).ok_response?.headers).find(([k]) => k === 'x-method')?.[1];
      expect(await method('GET')).toBe('GET');
      expect(await method('POST')).toBe('GET'); // method is not a declared key: the cached decision answers
      const reload = await send(`http://${svc.adminAddress}/v1/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      expect(reload.status).toBe(200);
      expect(await method('POST')).toBe('POST'); // a new activation emptied the cache
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});

describe('bundle over HTTP', () => {
  const tmp = tempDir();

  it('downloads the bundle, polls with If-None-Match, and activates a changed one', async () => {
    const a = readFileSync(buildBundle(tmp.dir, 'http-a', { rego: REV_REGO('HA'), revision: 'HA' }));
    const b = readFileSync(buildBundle(tmp.dir, 'http-b', { rego: REV_REGO('HB'), revision: 'HB' }));
    let current = a;
    let notModified = 0;
    const server = await loopbackServer((req, res) => {
      const etag = `"${createHash('sha256').update(current).digest('hex').slice(0, 16)}"`;
      if (req.headers['if-none-match'] === etag) {
        notModified += 1;
        res.writeHead(304).end();
        return;
      }
      res.writeHead(200, { etag, 'content-type': 'application/gzip' }).end(current);
    });
    const svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          routes: [{ name: 'all', match: { path_prefix: '/' }, public: true }],
          policy: { bundle: { url: `${server.url}/bundle.tar.gz`, poll_interval_ms: 100, allow_insecure_http: true } },
        }),
      ),
    );
    const client = authzClient(svc.address);
    const revision = async (): Promise<string | undefined> => (await client.check(checkRequest())).dynamic_metadata?.fields?.policy_revision?.stringValue;
    try {
      expect(await revision()).toBe('HA');
      await expect.poll(() => notModified, { timeout: 3000, interval: 50 }).toBeGreaterThan(0);
      current = b;
      const until = Date.now() + 3000;
      while ((await revision()) !== 'HB' && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      expect(await revision()).toBe('HB');
    } finally {
      client.close();
      await svc.shutdown();
    }
  });
});

describe('policy CLI', () => {
  const tmp = tempDir();

  it('evaluates a short-form request against a bundle and prints the Envoy answer', { timeout: 90_000 }, () => {
    const bundle = buildRepoPolicies(join(tmp.dir, 'repo.tar.gz'));
    type Answer = { allowed: boolean; check_response: { okResponse?: CheckResponse__Output['ok_response']; deniedResponse?: { body?: string } } };
    // policy.js eval exits 1 on a denial: read its output whatever the code (docs/policy-authoring.md, "The loop").
    const run = (req: unknown): Answer =>
      JSON.parse(
        spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src', 'cli', 'policy.ts'), 'eval', '--bundle', bundle, '--output', 'json', '--request', tmp.write(`r${Math.random()}.json`, req)], {
          cwd: ROOT,
        }).stdout.toString(),
      ) as Answer;
    const ok = run({ method: 'GET', path: '/orders/1', identity: { subject: 'alice', roles: ['buyer'] } });
    expect(ok.allowed).toBe(true);
    expect(hv(ok.check_response.okResponse?.headers)).toContainEqual(['x-authz-roles', 'buyer']);
    const admin = run({ method: 'GET', path: '/admin', identity: { subject: 'bob', roles: ['buyer'] } });
    expect(admin.allowed).toBe(false);
    expect(admin.check_response.deniedResponse?.body).toContain('Administrators only');
  });
});
