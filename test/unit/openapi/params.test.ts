// Parameter serializations read back (OpenAPI 3.x style/explode tables), path templates for the
// router, inventory labels, and documents over http(s) with their references.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { ConfigError } from '../../../src/lib/errors.js';
import { pathLabel } from '../../../src/openapi/inventory.js';
import { cookieValue, headerValue, parseCookies, pathValue, queryValue, ParamSyntaxError, type ParamSpec } from '../../../src/openapi/params.js';
import { routerPath } from '../../../src/openapi/router.js';
import { buildOpenApi, OpenApiStage } from '../../../src/openapi/stage.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { loopbackServer } from '../../helpers/http.js';
import { requestView } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';

const p = (o: Partial<ParamSpec>): ParamSpec => ({ name: 'id', in: 'path', style: 'simple', explode: false, shape: 'primitive', json: false, keys: [], ...o });

describe('path parameters (simple, label, matrix)', () => {
  it('reads the OpenAPI style examples back', () => {
    expect(pathValue(p({}), '5')).toBe('5');
    expect(pathValue(p({ shape: 'array' }), '3,4,5')).toEqual(['3', '4', '5']);
    expect(pathValue(p({ shape: 'object' }), 'role,admin,firstName,Alex')).toEqual({ role: 'admin', firstName: 'Alex' });
    expect(pathValue(p({ shape: 'object', explode: true }), 'role=admin,firstName=Alex')).toEqual({ role: 'admin', firstName: 'Alex' });
    expect(pathValue(p({ style: 'label' }), '.5')).toBe('5');
    expect(pathValue(p({ style: 'label', shape: 'array' }), '.3,4,5')).toEqual(['3', '4', '5']);
    expect(pathValue(p({ style: 'label', shape: 'array', explode: true }), '.3.4.5')).toEqual(['3', '4', '5']);
    expect(pathValue(p({ style: 'matrix' }), ';id=5')).toBe('5');
    expect(pathValue(p({ style: 'matrix', shape: 'array' }), ';id=3,4,5')).toEqual(['3', '4', '5']);
    expect(pathValue(p({ style: 'matrix', shape: 'array', explode: true }), ';id=3;id=4;id=5')).toEqual(['3', '4', '5']);
    expect(pathValue(p({ style: 'matrix', shape: 'object', explode: true }), ';role=admin;firstName=Alex')).toEqual({ role: 'admin', firstName: 'Alex' });
  });

  it('refuses what is not in the declared style, naming the parameter', () => {
    expect(() => pathValue(p({ style: 'label' }), '5')).toThrow(ParamSyntaxError);
    expect(() => pathValue(p({ style: 'matrix' }), ';other=5')).toThrow(/matrix style/);
    expect(() => pathValue(p({ json: true }), '{')).toThrow(/not valid JSON/);
  });
});

describe('query, header and cookie parameters', () => {
  const q = (o: Partial<ParamSpec>): ParamSpec => p({ in: 'query', style: 'form', explode: true, ...o });

  it('form, spaceDelimited, pipeDelimited, deepObject, and exploded objects by their keys', () => {
    expect(queryValue(q({ shape: 'array' }), { id: ['3', '4'] })).toEqual({ value: ['3', '4'], used: ['id'] });
    expect(queryValue(q({ shape: 'array', explode: false }), { id: ['3,4,5'] }).value).toEqual(['3', '4', '5']);
    expect(queryValue(q({ shape: 'array', style: 'spaceDelimited', explode: false }), { id: ['3 4 5'] }).value).toEqual(['3', '4', '5']);
    expect(queryValue(q({ shape: 'array', style: 'pipeDelimited', explode: false }), { id: ['3|4|5'] }).value).toEqual(['3', '4', '5']);
    expect(queryValue(q({ shape: 'object', style: 'deepObject' }), { 'id[role]': ['admin'], 'id[name]': ['Alex'], other: ['x'] })).toEqual({
      value: { role: 'admin', name: 'Alex' },
      used: ['id[role]', 'id[name]'],
    });
    expect(queryValue(q({ shape: 'object', keys: ['role', 'name'] }), { role: ['admin'], other: ['x'] })).toEqual({ value: { role: 'admin' }, used: ['role'] });
    expect(queryValue(q({ shape: 'object', explode: false }), { id: ['role,admin'] }).value).toEqual({ role: 'admin' });
    expect(queryValue(q({}), {})).toEqual({ value: undefined, used: [] });
  });

  it('headers by lower-case name, cookies from the Cookie header', () => {
    expect(headerValue(p({ in: 'header', name: 'X-Ids', shape: 'array' }), new Map([['x-ids', ' 1,2 ']]))).toEqual(['1', '2']);
    expect(headerValue(p({ in: 'header', name: 'X-None' }), new Map())).toBeUndefined();
    const cookies = parseCookies('a=1; session=abc=def; a=2; broken');
    expect([...cookies]).toEqual([['a', '1'], ['session', 'abc=def']]);
    expect(cookieValue(p({ in: 'cookie', name: 'session' }), cookies)).toBe('abc=def');
  });
});

describe('path templates and labels', () => {
  it('numbers template parameters for the router and escapes literal colons', () => {
    expect(routerPath('/users/{userId}/orders/{orderId}')).toEqual({ path: '/users/:p0/orders/:p1', names: ['userId', 'orderId'] });
    expect(routerPath('/files/{name}.{ext}')).toEqual({ path: '/files/:p0.:p1', names: ['name', 'ext'] });
    expect(routerPath('/v1/things:batchGet')).toEqual({ path: '/v1/things::batchGet', names: [] });
  });

  it('normalizes undocumented paths into bounded labels', () => {
    expect(pathLabel('/users/12345/orders')).toBe('/users/{id}/orders');
    expect(pathLabel('/users/7d3f8a52-1c1e-4a53-9f7e-2b0c3c1d9e10')).toBe('/users/{id}');
    expect(pathLabel('/a/b/c/d/e')).toBe('/a/b/c/...');
    expect(pathLabel('/wp-admin/%3Cscript%3E')).toBe('/wp-admin/{id}');
    expect(pathLabel('/')).toBe('/');
  });

  it('matches a documented colon path (custom methods) and nothing else under it', async () => {
    const tmp = tempDir();
    tmp.write('colon.yaml', 'openapi: 3.1.0\ninfo: {title: t, version: "1"}\npaths:\n  /v1/things:batchGet:\n    post: {operationId: batchGet, responses: {"200": {description: ok}}}\n');
    const cfg = parseConfig('c.yaml', JSON.stringify({ openapi: { specs: [{ name: 'c', file: 'colon.yaml' }] } }));
    const s = await buildOpenApi({ file: join(tmp.dir, 'c.yaml'), dir: tmp.dir, config: cfg }, cfg.openapi!, { log: createLogger('silent'), dryRun: false });
    expect(OpenApiStage.operation(s.match(requestView({ method: 'POST', path: '/v1/things:batchGet' }), undefined))?.operation_id).toBe('batchGet');
    expect(s.match(requestView({ method: 'POST', path: '/v1/things:other' }), undefined)?.match.kind).toBe('no_path');
  });
});

describe('documents over http(s)', () => {
  const FIXTURES = join(import.meta.dirname, '..', '..', 'fixtures', 'openapi');

  it('loads a document and the documents it references from the same server, internal addresses only when allowed', async () => {
    const served: string[] = [];
    const server = await loopbackServer((req, res) => {
      served.push(req.url ?? '');
      const file = (req.url ?? '/').slice(1);
      if (file !== 'shop-31.yaml' && file !== 'catalog-31.yaml') {
        res.writeHead(404);
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/yaml' });
      res.end(readFileSync(join(FIXTURES, file)));
    });
    const yaml = (internal: boolean): string => JSON.stringify({ openapi: { allow_insecure_http: true, allow_internal_urls: internal, specs: [{ name: 'shop', url: `${server.url}/shop-31.yaml` }] } });
    // Loopback is internal: refused unless allowed (a $ref must not reach internal services).
    const closed = parseConfig('c.yaml', yaml(false));
    await expect(buildOpenApi({ file: '/nowhere/c.yaml', dir: '/nowhere', config: closed }, closed.openapi!, { log: createLogger('silent'), dryRun: false })).rejects.toThrow(ConfigError);
    expect(served).toEqual([]);
    const cfg = parseConfig('c.yaml', yaml(true));
    const s = await buildOpenApi({ file: '/nowhere/c.yaml', dir: '/nowhere', config: cfg }, cfg.openapi!, { log: createLogger('silent'), dryRun: false });
    expect(served.sort()).toEqual(['/catalog-31.yaml', '/shop-31.yaml']);
    expect(s.operations().specs[0]!.operations.map((o) => o.operation_id)).toEqual(['placeOrder', 'patchLine']);
    // --check-config opens no connection: a URL spec is not fetched.
    const before = served.length;
    await buildOpenApi({ file: '/nowhere/c.yaml', dir: '/nowhere', config: cfg }, cfg.openapi!, { log: createLogger('silent'), dryRun: true });
    expect(served.length).toBe(before);
  });

  it('refuses http:// without allow_insecure_http, a duplicate name, and file and url together', () => {
    const problems = (openapi: unknown): string[] => {
      try {
        parseConfig('c.yaml', JSON.stringify({ openapi }));
        return [];
      } catch (err) {
        return (err as ConfigError).problems.map((x) => `${x.keyPath}: ${x.problem}`);
      }
    };
    expect(problems({ specs: [{ name: 'a', url: 'http://127.0.0.1:1/a.yaml' }] })).toEqual(['/openapi/specs/0/url: must be https (or http with allow_insecure_http: true)']);
    expect(problems({ specs: [{ name: 'a', file: 'a.yaml' }, { name: 'a', file: 'b.yaml' }] })).toEqual(['/openapi/specs/1/name: duplicate spec name "a"']);
    expect(problems({ specs: [{ name: 'a', file: 'a.yaml', url: 'https://x.test/a.yaml' }] })).toEqual(['/openapi/specs/0: set exactly one of file or url']);
    expect(problems({ specs: [{ name: 'a', file: 'a.yaml', path_prefix: '/api/' }] })[0]).toMatch(/^\/openapi\/specs\/0\/path_prefix/);
  });
});
