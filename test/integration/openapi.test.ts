// The OpenAPI stage through the real gRPC server, with a real OPA wasm policy: authenticate, then
// authorize, then validate (REC-API-14); the policy sees input.operation; problem+json answers;
// report mode per route; the inventory on the admin listener and the metrics; a spec that does not
// load stops --check-config with file, pointer and problem.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckResponse__Output } from '../../src/gen/envoy/service/auth/v3/CheckResponse.js';
import { send } from '../helpers/client.js';
import { authzClient, type AuthzClient } from '../helpers/grpc.js';
import { jwks, makeKey, signToken, type TestKey, jwksFileIssuer } from '../helpers/keys.js';
import { buildBundle } from '../helpers/opa.js';
import { checkRequest } from '../helpers/requests.js';
import { configYaml, runService, startInProcess } from '../helpers/service.js';
import { tempDir } from '../helpers/tmp.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'openapi');
const ADMIN_TOKEN = 'openapi-inventory-admin-token';
const PET = '7d3f8a52-1c1e-4a53-9f7e-2b0c3c1d9e10';

// Allows authenticated callers, except: role "blocked"; operations tagged admin for non-admins.
// The operation's id goes upstream so the test can see what the policy saw.
const REGO = `package envoy.authz
import rego.v1

default allow := {"allowed": false}

allow := {"allowed": true, "headers": {"x-operation": op_id}} if {
	input.identity != null
	not "blocked" in input.identity.roles
	not admin_only
}

admin_only if {
	"admin" in input.operation.tags
	not "admin" in input.identity.roles
}

op_id := id if {
	id := input.operation.operation_id
} else := "none"
`;

type Reply = CheckResponse__Output;
const header = (r: Reply, name: string): string | undefined =>
  [...(r.ok_response?.headers ?? []), ...(r.denied_response?.headers ?? [])].find((h) => h.header?.key === name)?.header?.value;

describe('OpenAPI validation through the server', () => {
  const tmp = tempDir();
  let key: TestKey;
  let svc: Awaited<ReturnType<typeof startInProcess>>;
  let client: AuthzClient;
  let admin: string;

  beforeAll(async () => {
    key = await makeKey();
    tmp.write('jwks.json', jwks(key));
    buildBundle(tmp.dir, 'ops', { rego: REGO, revision: 'ops-1' });
    svc = await startInProcess(
      tmp.write(
        'authz.yaml',
        configYaml({
          server: { address: '127.0.0.1:0' },
          admin: { address: '127.0.0.1:0', tokens: [{ name: 'ops', sha256: createHash('sha256').update(ADMIN_TOKEN).digest('hex') }] },
          authentication: { jwt: { issuers: [jwksFileIssuer()] } },
          routes: [{ name: 'search-report', match: { path_prefix: '/search' }, openapi: 'report' }],
          policy: { bundle: { file: 'ops.tar.gz' } },
          openapi: { specs: [{ name: 'pets', file: join(FIXTURES, 'petstore-30.yaml') }] },
        }),
      ),
    );
    client = authzClient(svc.address);
    admin = `http://${svc.adminAddress}`;
  });
  afterAll(async () => {
    client?.close();
    await svc?.shutdown();
  });

  const token = (roles: string[] = []): Promise<string> => signToken(key, { sub: `u-${roles.join('-') || 'plain'}`, claims: { roles } });
  const call = async (o: { method?: string; path: string; roles?: string[] | null; headers?: Record<string, string>; body?: string }): Promise<Reply> => {
    const auth: Record<string, string> = o.roles === null ? {} : { authorization: `Bearer ${await token(o.roles ?? [])}` };
    const req = checkRequest({ method: o.method ?? 'GET', path: o.path, headers: { 'x-tenant': 'acme', ...auth, ...o.headers } });
    if (o.body !== undefined) {
      const http = req.attributes!.request!.http!;
      http.body = o.body;
      http.headers = { ...http.headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(o.body)) };
    }
    return client.check(req);
  };

  it('authenticates, then authorizes, then validates: no validation answer before both passed', async () => {
    // The same invalid request: 401 without a credential, 403 when the policy refuses, 400 only after both.
    expect((await call({ path: '/pets?limit=0', roles: null })).denied_response?.status?.code).toBe('Unauthorized');
    const refused = await call({ path: '/pets?limit=0', roles: ['blocked'] });
    expect(refused.denied_response?.status?.code).toBe('Forbidden');
    expect(refused.denied_response?.body).not.toContain('limit');
    const invalid = await call({ path: '/pets?limit=0' });
    expect(invalid.denied_response?.status?.code).toBe('BadRequest');
    expect(header(invalid, 'content-type')).toBe('application/problem+json');
    expect(JSON.parse(invalid.denied_response!.body!)).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'A parameter does not match the API description.',
      errors: [{ in: 'query', name: 'limit', problem: 'must be >= 1' }],
    });
  });

  it('gives the policy input.operation: it reads the operation id and the tags', async () => {
    const ok = await call({ path: '/pets?limit=5' });
    expect(ok.status?.code).toBe(0);
    expect(header(ok, 'x-operation')).toBe('listPets');
    // deletePet is tagged admin in the spec: the policy refuses non-admins.
    expect((await call({ method: 'DELETE', path: `/pets/${PET}` })).denied_response?.status?.code).toBe('Forbidden');
    expect(header(await call({ method: 'DELETE', path: `/pets/${PET}`, roles: ['admin'] }), 'x-operation')).toBe('deletePet');
  });

  it('answers 404 for undocumented paths and 405 with Allow for undocumented methods', async () => {
    const missing = await call({ path: '/owners/1' });
    expect(missing.denied_response?.status?.code).toBe('NotFound');
    expect(JSON.parse(missing.denied_response!.body!)).toMatchObject({ status: 404, title: 'Not Found' });
    const method = await call({ method: 'PATCH', path: `/pets/${PET}` });
    expect(method.denied_response?.status?.code).toBe('MethodNotAllowed');
    expect(header(method, 'allow')).toBe('DELETE, GET');
  });

  it('validates JSON bodies sent with the Check', async () => {
    expect((await call({ method: 'POST', path: '/pets', body: JSON.stringify({ name: 'Rex', kind: 'dog' }) })).status?.code).toBe(0);
    const bad = await call({ method: 'POST', path: '/pets', body: JSON.stringify({ name: 'Rex', kind: 'dog', admin: true }) });
    expect(JSON.parse(bad.denied_response!.body!)).toMatchObject({ status: 400, errors: [{ in: 'body', pointer: '/admin', problem: 'is not a documented property' }] });
  });

  it('a route in report mode lets the invalid request through and logs it', async () => {
    const r = await call({ path: '/search?filter[minPrice]=-1' });
    expect(r.status?.code).toBe(0);
    expect(svc.logs.lines().find((l) => l.event === 'openapi_report')).toMatchObject({ spec: 'pets', operation: 'search', reason: 'invalid_parameter' });
  });

  it('audits refusals with the failing parameter, never the value', () => {
    const rec = svc.logs.lines().find((l) => l.event === 'check' && l.reason === 'openapi_invalid_parameter');
    expect(rec).toMatchObject({ status: 400, openapi_errors: [{ in: 'query', name: 'limit', problem: 'must be >= 1' }] });
  });

  it('lists the inventory on the admin listener (admin token, audited) and exports metrics', async () => {
    expect((await send(`${admin}/v1/openapi/operations`)).status).toBe(401);
    const r = await send(`${admin}/v1/openapi/operations`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(r.status).toBe(200);
    const inv = JSON.parse(r.body) as { specs: { name: string; operations: { operation_id: string; calls: number; refused: Record<string, number> }[]; undocumented: unknown[] }[] };
    const pets = inv.specs[0]!;
    expect(pets.name).toBe('pets');
    const list = pets.operations.find((o) => o.operation_id === 'listPets')!;
    expect(list.calls).toBeGreaterThanOrEqual(2);
    expect(list.refused).toEqual({ invalid_parameter: 1 });
    expect(pets.operations.find((o) => o.operation_id === 'getUserOrder')).toMatchObject({ calls: 0 });
    expect(pets.undocumented).toEqual(expect.arrayContaining([{ method: 'GET', path: '/owners/{id}', calls: 1 }, { method: 'PATCH', path: '/pets/{id}', calls: 1 }]));
    expect(svc.logs.lines().some((l) => l.event === 'admin' && l.action === 'openapi_operations' && l.actor === 'ops')).toBe(true);
    const metrics = (await send(`${admin}/metrics`)).body;
    expect(metrics).toMatch(/envoy_authz_openapi_requests_total\{[^}]*operation="listPets"[^}]*outcome="refused"[^}]*\} 1/);
    expect(metrics).toMatch(/envoy_authz_openapi_undocumented_requests_total\{[^}]*path="\/owners\/\{id\}"/);
  });
});

describe('a spec that does not load', () => {
  it('stops --check-config (exit 2), naming the config key, the spec file, the JSON pointer and the problem', async () => {
    const tmp = tempDir();
    const cfg = tmp.write('authz.yaml', configYaml({ openapi: { specs: [{ name: 'broken', file: join(FIXTURES, 'broken-30.yaml') }] } }));
    const r = await runService(['--config', cfg, '--check-config']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`/openapi/specs/0/file: ${join(FIXTURES, 'broken-30.yaml')}: /paths/~1things/post/requestBody/content/application~1json/schema/properties/n/type:`);
  });
});
