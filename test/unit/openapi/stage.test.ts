// The OpenAPI stage on real-world-shaped documents (test/fixtures/openapi): 3.0 and 3.1, $refs
// across files, path templates with several parameters, query/header/cookie styles, oneOf bodies,
// formats, JSON / form / multipart bodies; and the load errors that name file, pointer and problem.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import type { RequestView } from '../../../src/envoy/request.js';
import { toRequestView } from '../../../src/envoy/request.js';
import { ConfigError } from '../../../src/lib/errors.js';
import { InventoryLedger } from '../../../src/openapi/inventory.js';
import { problemAnswer } from '../../../src/openapi/problem.js';
import { buildOpenApi, OpenApiStage } from '../../../src/openapi/stage.js';
import type { Refusal } from '../../../src/openapi/validate.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';
import { checkRequest } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';

const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'openapi');

async function stage(specs: Record<string, unknown>[], extra: Record<string, unknown> = {}, dir = FIXTURES, ledger?: InventoryLedger) {
  const logs = capture();
  const yaml = JSON.stringify({ openapi: { specs, ...extra } });
  const loaded = { file: join(dir, 'authz.yaml'), dir, config: parseConfig('authz.yaml', yaml) };
  const s = await buildOpenApi(loaded, loaded.config.openapi!, { log: createLogger('info', logs.stream), dryRun: false, ...(ledger ? { ledger } : {}) });
  return { s, logs };
}

interface Req {
  method?: string;
  path: string;
  host?: string;
  headers?: Record<string, string>;
  body?: string;
}

function view(r: Req): RequestView {
  const c = checkRequest({ method: r.method ?? 'GET', path: r.path, ...(r.host ? { host: r.host } : {}), headers: r.headers ?? {} });
  const http = c.attributes!.request!.http!;
  if (r.body !== undefined) {
    http.body = r.body;
    http.headers = { ...http.headers, 'content-length': String(Buffer.byteLength(r.body)) };
  }
  return toRequestView(c);
}

/** The refusal enforce mode answers (undefined: valid). */
function checked(s: OpenApiStage, r: Req): Refusal | undefined {
  const req = view(r);
  const m = s.match(req, undefined);
  if (!m) throw new Error('not covered');
  return s.check(req, m);
}

const PET = '7d3f8a52-1c1e-4a53-9f7e-2b0c3c1d9e10';
const json = { 'content-type': 'application/json' };
const tenant = { 'x-tenant': 'acme' };

describe('OpenAPI 3.0 (petstore-30.yaml, $refs into common-30.yaml)', async () => {
  const { s } = await stage([{ name: 'pets', file: 'petstore-30.yaml' }]);

  it('accepts requests that match their operation', () => {
    expect(checked(s, { path: '/pets?limit=10&tags=a&tags=b&status=available,sold', headers: tenant })).toBeUndefined();
    expect(checked(s, { path: `/pets/${PET}` })).toBeUndefined();
    expect(checked(s, { path: '/users/42/orders/ord-0042', headers: { cookie: 'theme=dark; session=abcdefgh12' } })).toBeUndefined();
    expect(checked(s, { path: '/files/report.pdf' })).toBeUndefined();
    expect(checked(s, { path: '/search?filter[color]=red&filter[minPrice]=2.5&q=%7B%22term%22%3A%22cat%22%7D' })).toBeUndefined();
  });

  it('checks query parameters by type, format, bounds, enum, array items and style', () => {
    expect(checked(s, { path: '/pets?limit=0', headers: tenant })).toMatchObject({ status: 400, reason: 'invalid_parameter', violations: [{ in: 'query', name: 'limit', problem: 'must be >= 1' }] });
    expect(checked(s, { path: '/pets?limit=abc', headers: tenant })?.violations[0]).toMatchObject({ in: 'query', name: 'limit', problem: 'must be integer' });
    expect(checked(s, { path: '/pets?limit=4294967296', headers: tenant })?.violations[0]).toMatchObject({ name: 'limit' });
    expect(checked(s, { path: '/pets?status=available,lost', headers: tenant })?.violations[0]).toMatchObject({ in: 'query', name: 'status', pointer: '/1' });
    expect(checked(s, { path: '/pets?tags=a&tags=b&tags=c&tags=d&tags=e&tags=f', headers: tenant })?.violations[0]).toMatchObject({ name: 'tags', problem: 'must NOT have more than 5 items' });
  });

  it('requires required parameters and checks header patterns', () => {
    expect(checked(s, { path: '/pets' })).toMatchObject({ status: 400, violations: [{ in: 'header', name: 'x-tenant', problem: 'is required' }] });
    expect(checked(s, { path: '/pets', headers: { 'x-tenant': 'ACME!' } })?.violations[0]).toMatchObject({ in: 'header', name: 'x-tenant' });
  });

  it('refuses undocumented query parameters (unknown_query_params: refuse)', () => {
    expect(checked(s, { path: '/pets?limit=5&debug=1', headers: tenant })).toMatchObject({ status: 400, violations: [{ in: 'query', name: 'debug', problem: 'is not a documented parameter' }] });
    // Names of Object.prototype members are parameters like any other, never "already there".
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(checked(s, { path: `/pets?limit=5&${name}=1`, headers: tenant }), name).toMatchObject({ status: 400, violations: [{ in: 'query', problem: 'is not a documented parameter' }] });
    }
  });

  it('matches templates with several parameters, including two in one segment', () => {
    expect(checked(s, { path: '/users/0/orders/ord-0042' })?.violations[0]).toMatchObject({ in: 'path', name: 'userId' });
    expect(checked(s, { path: '/users/7/orders/x-1' })?.violations[0]).toMatchObject({ in: 'path', name: 'orderId' });
    expect(checked(s, { path: '/files/report.doc' })?.violations[0]).toMatchObject({ in: 'path', name: 'ext' });
    expect(checked(s, { path: '/pets/not-a-uuid' })?.violations[0]).toMatchObject({ in: 'path', name: 'petId', problem: 'must match format "uuid"' });
    expect(checked(s, { path: '/users/1/orders/ord-0001', headers: { cookie: 'session=short' } })?.violations[0]).toMatchObject({ in: 'cookie', name: 'session' });
  });

  it('reads deepObject and JSON-content query parameters', () => {
    expect(checked(s, { path: '/search?filter[minPrice]=0' })?.violations[0]).toMatchObject({ in: 'query', name: 'filter', pointer: '/minPrice' });
    expect(checked(s, { path: '/search?filter[size]=9' })?.violations[0]).toMatchObject({ name: 'filter' });
    expect(checked(s, { path: '/search?q=%7B%7D' })?.violations[0]).toEqual({ in: 'query', name: 'q', pointer: '/term', problem: 'is required' });
    expect(checked(s, { path: '/search?q=notjson' })).toMatchObject({ status: 400, violations: [{ in: 'query', name: 'q', problem: 'is not valid JSON' }] });
  });

  it('answers 404 for an undocumented path and 405 with Allow for an undocumented method', () => {
    expect(checked(s, { path: '/owners' })).toMatchObject({ status: 404, reason: 'undocumented' });
    expect(checked(s, { method: 'PUT', path: `/pets/${PET}` })).toMatchObject({ status: 405, reason: 'method_not_allowed', allow: ['DELETE', 'GET'] });
    expect(checked(s, { method: 'HEAD', path: `/pets/${PET}` })).toBeUndefined();
  });

  it('validates JSON bodies: $ref across files, additionalProperties false, nullable, readOnly, recursion, formats', () => {
    const post = (body: unknown, headers: Record<string, string> = json) => checked(s, { method: 'POST', path: '/pets', headers, body: JSON.stringify(body) });
    // id is readOnly: required in responses only.
    expect(post({ name: 'Rex', kind: 'dog', birthday: null, owner: { email: 'a@example.test', friends: [{ email: 'b@example.test' }] } })).toBeUndefined();
    expect(post({ name: 'Rex', kind: 'cow' })?.violations[0]).toMatchObject({ in: 'body', pointer: '/kind' });
    expect(post({ name: 'Rex', kind: 'dog', color: 'red' })?.violations[0]).toMatchObject({ in: 'body', pointer: '/color', problem: 'is not a documented property' });
    expect(post({ kind: 'dog' })?.violations[0]).toMatchObject({ pointer: '/name', problem: 'is required' });
    expect(post({ name: 'Rex', kind: 'dog', owner: { email: 'a@example.test', friends: [{ email: 'not-an-email' }] } })?.violations[0]).toMatchObject({ pointer: '/owner/friends/0/email' });
    expect(post({ name: 'Rex', kind: 'dog', birthday: '2020-13-45' })?.violations[0]).toMatchObject({ pointer: '/birthday' });
  });

  it('validates form bodies field by field, coercing strings to the schema types', () => {
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    expect(checked(s, { method: 'POST', path: '/pets', headers: form, body: 'name=Rex&age=3&tags=a&tags=b' })).toBeUndefined();
    expect(checked(s, { method: 'POST', path: '/pets', headers: form, body: 'name=Rex&age=-1' })?.violations[0]).toMatchObject({ in: 'body', pointer: '/age' });
    expect(checked(s, { method: 'POST', path: '/pets', headers: form, body: 'age=1' })?.violations[0]).toMatchObject({ pointer: '/name', problem: 'is required' });
  });

  it('validates multipart fields, JSON parts included', () => {
    const boundary = 'XyZ';
    const part = (name: string, value: string, type?: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n${type ? `Content-Type: ${type}\r\n` : ''}\r\n${value}\r\n`;
    const body = (meta: string) => `${part('caption', 'hello')}${part('meta', meta, 'application/json')}${part('file', 'BYTES', 'image/png')}--${boundary}--\r\n`;
    const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` };
    expect(checked(s, { method: 'POST', path: `/pets/${PET}/photo`, headers, body: body('{"width":10}') })).toBeUndefined();
    expect(checked(s, { method: 'POST', path: `/pets/${PET}/photo`, headers, body: body('{"width":0}') })?.violations[0]).toMatchObject({ in: 'body', pointer: '/meta/width' });
  });

  it('requires the body, refuses other media types (415) and unreadable JSON (400)', () => {
    expect(checked(s, { method: 'POST', path: '/pets', headers: json })).toMatchObject({ status: 400, reason: 'body_required' });
    expect(checked(s, { method: 'POST', path: '/pets', headers: { 'content-type': 'text/plain' }, body: 'x' })).toMatchObject({ status: 415, reason: 'unsupported_media_type' });
    expect(checked(s, { method: 'POST', path: '/pets', headers: json, body: '{"name":' })).toMatchObject({ status: 400, reason: 'invalid_body' });
  });

  it('refuses a body Envoy cut (413) unless truncated_body is headers_only', async () => {
    const partial = { ...json, 'x-envoy-auth-partial-body': 'true' };
    expect(checked(s, { method: 'POST', path: '/pets', headers: partial, body: '{"name":"R' })).toMatchObject({ status: 413, reason: 'body_truncated' });
    const { s: lenient } = await stage([{ name: 'pets', file: 'petstore-30.yaml' }], { truncated_body: 'headers_only' });
    expect(checked(lenient, { method: 'POST', path: '/pets', headers: partial, body: '{"name":"R' })).toBeUndefined();
  });

  it('gives the policy the operation: id, template, tags, security, x- extensions', () => {
    const m = s.match(view({ method: 'POST', path: '/pets' }), undefined);
    expect(OpenApiStage.operation(m)).toEqual({
      spec: 'pets',
      operation_id: 'createPet',
      method: 'POST',
      path_template: '/pets',
      tags: ['pets'],
      security: [{ oauth: ['pets:write'] }],
      extensions: { 'x-owner': 'team-pets' },
      deprecated: false,
    });
    // The document's security applies where the operation has none.
    expect(OpenApiStage.operation(s.match(view({ path: `/pets/${PET}` }), undefined))?.security).toEqual([{ oauth: ['pets:read'] }]);
    expect(OpenApiStage.operation(s.match(view({ path: '/nope' }), undefined))).toBeUndefined();
  });
});

describe('OpenAPI 3.1 (shop-31.yaml, $refs into catalog-31.yaml)', async () => {
  const { s } = await stage([{ name: 'shop', file: 'shop-31.yaml', path_prefix: '/api', hosts: ['shop.example.test'] }]);
  const order = { items: [{ sku: 'ABC-123', quantity: 2 }], payment: { method: 'card', last4: '4242' }, placedAt: '2026-11-30T10:00:00Z', coupon: null, location: [1.5, 2] };
  const post = (body: unknown) => checked(s, { method: 'POST', path: '/api/orders', host: 'shop.example.test', headers: json, body: JSON.stringify(body) });

  it('covers only its hosts and path prefix', () => {
    expect(s.match(view({ path: '/api/orders', host: 'other.example.test' }), undefined)).toBeUndefined();
    expect(s.match(view({ path: '/orders', host: 'shop.example.test' }), undefined)).toBeUndefined();
    expect(s.match(view({ path: '/apiorders', host: 'shop.example.test' }), undefined)).toBeUndefined();
  });

  it('validates oneOf bodies, type arrays with null, const, prefixItems and 2020-12 keywords', () => {
    expect(post(order)).toBeUndefined();
    expect(post({ ...order, payment: { method: 'bank', iban: 'DE89370400440532013000' } })).toBeUndefined();
    expect(post({ ...order, payment: { method: 'card', iban: 'DE89370400440532013000' } })?.violations[0]).toMatchObject({ in: 'body', pointer: expect.stringMatching(/^\/payment/) as unknown });
    expect(post({ ...order, coupon: 'bad' })?.violations[0]).toMatchObject({ pointer: '/coupon' });
    expect(post({ ...order, location: [1, 2, 3] })?.violations[0]).toMatchObject({ pointer: '/location' });
    expect(post({ ...order, placedAt: 'yesterday' })?.violations[0]).toMatchObject({ pointer: '/placedAt', problem: 'must match format "date-time"' });
    expect(post({ ...order, items: [{ sku: 'ABC-123', quantity: 2, price: 1 }] })?.violations[0]).toMatchObject({ pointer: '/items/0/price' });
  });

  it('validates +json media types and 3.1 exclusiveMinimum with several path parameters', () => {
    const patch = (line: string, body: unknown) =>
      checked(s, { method: 'PATCH', path: `/api/orders/${PET}/items/${line}`, host: 'shop.example.test', headers: { 'content-type': 'application/merge-patch+json' }, body: JSON.stringify(body) });
    expect(patch('3', { quantity: null })).toBeUndefined();
    expect(patch('3', { quantity: 0 })?.violations[0]).toMatchObject({ pointer: '/quantity' });
    expect(patch('1000', { quantity: 1 })?.violations[0]).toMatchObject({ in: 'path', name: 'line' });
  });
});

describe('problem+json answers', () => {
  it('name the parameter or pointer and the rule, never the value', async () => {
    const { s } = await stage([{ name: 'pets', file: 'petstore-30.yaml' }]);
    const secret = 'SECRET-VALUE-123';
    const answers = [
      checked(s, { path: `/pets?limit=${secret}`, headers: tenant }),
      checked(s, { path: `/pets/${secret}` }),
      checked(s, { method: 'POST', path: '/pets', headers: json, body: JSON.stringify({ name: 'x', kind: secret }) }),
      checked(s, { path: `/pets?debug=${secret}`, headers: tenant }),
      checked(s, { path: `/pets?%3Cscript%3E=1`, headers: tenant }),
      checked(s, { method: 'POST', path: '/pets', headers: json, body: JSON.stringify({ name: 'x', kind: 'cat', ['<script>']: 1 }) }),
    ].map((r) => problemAnswer(r!));
    for (const a of answers) {
      expect(a.status).toBe(400);
      expect(a.body).not.toContain(secret);
      expect(a.body).not.toContain('<script>');
      expect(JSON.parse(a.body)).toMatchObject({ type: 'about:blank', title: 'Bad Request', status: 400 });
    }
    expect((JSON.parse(answers[0]!.body) as { errors: unknown }).errors).toEqual([{ in: 'query', name: 'limit', problem: 'must be integer' }]);
    expect((JSON.parse(answers[4]!.body) as { errors: unknown }).errors).toEqual([{ in: 'query', name: '(name not shown)', problem: 'is not a documented parameter' }]);
    expect((JSON.parse(answers[5]!.body) as { errors: unknown }).errors).toEqual([{ in: 'body', pointer: '/(name not shown)', problem: 'is not a documented property' }]);
    expect(problemAnswer({ status: 405, reason: 'method_not_allowed', violations: [], allow: ['DELETE', 'GET'] }).headers).toEqual([['allow', 'DELETE, GET']]);
  });
});

describe('modes and inventory', () => {
  it('report mode allows, logs and counts; a route can override the spec mode', async () => {
    const { s, logs } = await stage([{ name: 'pets', file: 'petstore-30.yaml', mode: 'report' }]);
    const req = view({ path: '/pets?limit=0', headers: tenant });
    expect(s.check(req, s.match(req, undefined)!)).toBeUndefined();
    expect(logs.lines().find((l) => l.event === 'openapi_report')).toMatchObject({ spec: 'pets', operation: 'listPets', reason: 'invalid_parameter', errors: [{ in: 'query', name: 'limit' }] });
    expect(s.check(req, s.match(req, 'enforce')!)).toMatchObject({ status: 400 });
    expect(s.match(req, 'off')).toBeUndefined();
    const list = s.operations().specs[0]!.operations.find((o) => o.operation_id === 'listPets')!;
    expect(list).toMatchObject({ calls: 2, valid: 0, refused: { invalid_parameter: 1 }, reported: { invalid_parameter: 1 } });
  });

  it('keeps the counts since start across a config reload (one ledger per process)', async () => {
    const ledger = new InventoryLedger();
    const first = (await stage([{ name: 'pets', file: 'petstore-30.yaml' }], {}, FIXTURES, ledger)).s;
    checked(first, { path: '/pets?limit=0', headers: tenant });
    checked(first, { path: '/nowhere' });
    const reloaded = (await stage([{ name: 'pets', file: 'petstore-30.yaml', mode: 'report' }], {}, FIXTURES, ledger)).s;
    checked(reloaded, { path: '/pets?limit=0', headers: tenant });
    const snap = reloaded.operations();
    expect(snap.since).toBe(ledger.since.toISOString());
    expect(snap.specs[0]!.operations.find((o) => o.operation_id === 'listPets')).toMatchObject({ calls: 2, refused: { invalid_parameter: 1 }, reported: { invalid_parameter: 1 } });
    expect(snap.specs[0]!.undocumented).toEqual([{ method: 'GET', path: '/nowhere', calls: 1 }]);
  });

  it('counts undocumented calls under bounded, normalized labels', async () => {
    const { s } = await stage([{ name: 'pets', file: 'petstore-30.yaml' }], { undocumented_max_labels: 2 });
    for (const p of ['/owners/12345', '/owners/67890', '/admin/debug/vars/x/y', '/a', '/b']) checked(s, { path: p });
    checked(s, { method: 'BREW', path: '/coffee' });
    expect(s.operations().specs[0]!.undocumented).toEqual([
      { method: 'GET', path: '/owners/{id}', calls: 2 },
      { method: 'GET', path: '/admin/debug/vars/...', calls: 1 },
      { method: 'GET', path: 'other', calls: 2 },
      { method: 'OTHER', path: 'other', calls: 1 },
    ]);
  });
});

describe('patterns run in linear time (RE2)', () => {
  const tmp = tempDir();
  const spec = (pattern: string): string =>
    `openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /x:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {type: string, pattern: ${JSON.stringify(pattern)}}}\n      responses: {"200": {description: ok}}\n`;

  it('a catastrophic-backtracking pattern answers a hostile value at once', async () => {
    tmp.write('evil.yaml', spec('^([a-z]+)*$'));
    const { s } = await stage([{ name: 'e', file: 'evil.yaml' }], {}, tmp.dir);
    const started = performance.now();
    expect(checked(s, { path: `/x?q=${'a'.repeat(5000)}!` })).toMatchObject({ status: 400 });
    expect(checked(s, { path: `/x?q=${'a'.repeat(50)}` })).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(500); // backtracking: 2^5000 steps
  });

  it('a pattern RE2 cannot run (lookahead) fails the load, naming it', async () => {
    tmp.write('look.yaml', spec('^(?=a)a+$'));
    const err = await stage([{ name: 'l', file: 'look.yaml' }], {}, tmp.dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems[0]!.problem).toMatch(/look\.yaml/);
  });
});

describe('load errors name the file, the JSON pointer and the problem', () => {
  const problemOf = async (specs: Record<string, unknown>[], dir = FIXTURES): Promise<string> => {
    const err = await stage(specs, {}, dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const e = err as ConfigError;
    expect(e.file).toBe(join(dir, 'authz.yaml'));
    expect(e.problems).toHaveLength(1);
    return `${e.problems[0]!.keyPath} ${e.problems[0]!.problem}`;
  };

  it('an invalid schema keyword', async () => {
    const p = await problemOf([{ name: 'b', file: 'broken-30.yaml' }]);
    expect(p).toContain('/openapi/specs/0/file');
    expect(p).toContain(join(FIXTURES, 'broken-30.yaml'));
    expect(p).toContain('/paths/~1things/post/requestBody/content/application~1json/schema/properties/n/type');
    expect(p).toMatch(/must be equal to one of the allowed values/);
  });

  it('a $ref to a missing file, a missing file, an unsupported version, a pattern Ajv cannot compile', async () => {
    expect(await problemOf([{ name: 'm', file: 'missing-ref-30.yaml' }])).toMatch(/nowhere\.yaml/);
    expect(await problemOf([{ name: 'n', file: 'none.yaml' }])).toMatch(/none\.yaml: \/: cannot read file \(ENOENT\)/);
    const tmp = tempDir();
    tmp.write('swagger.yaml', 'swagger: "2.0"\ninfo: {title: t, version: "1"}\npaths: {}\n');
    expect(await problemOf([{ name: 's', file: 'swagger.yaml' }], tmp.dir)).toMatch(/\/openapi: unsupported version/);
    tmp.write('regex.yaml', 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /x:\n    get:\n      parameters:\n        - {name: q, in: query, schema: {type: string, pattern: "(["}}\n      responses: {"200": {description: ok}}\n');
    expect(await problemOf([{ name: 'r', file: 'regex.yaml' }], tmp.dir)).toMatch(/\/paths\/~1x\/get\/parameters: .*pattern|Invalid regular expression/);
  });
});
