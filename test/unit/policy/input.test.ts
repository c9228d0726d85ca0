import { describe, expect, it } from 'vitest';
import { toPolicyInput } from '../../../src/envoy/input.js';
import type { CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import type { Identity } from '../../../src/identity/identity.js';
import { checkRequest } from '../../helpers/requests.js';

const identity: Identity = { subject: 'alice', issuer: 'https://i', kind: 'user', method: 'jwt', scopes: ['read'], roles: ['buyer'], claims: {} };

function withBody(body: string, headers: Record<string, string>): CheckRequest__Output {
  const r = checkRequest({ method: 'POST', path: '/people?x=1', headers });
  r.attributes!.request!.http!.body = body;
  return r;
}

describe('policy input (opa-envoy-plugin compatible)', () => {
  it('has attributes in protobuf-JSON names, map keys untouched, oneof markers dropped', () => {
    const req = checkRequest({ path: '/a/b', headers: { 'x-custom_header': 'v' }, contextExtensions: { service_name: 'orders' } });
    req.attributes!.request!.time = { seconds: '1700000000', nanos: 5_000_000 };
    req.attributes!.metadata_context = { filter_metadata: { 'envoy.filters.http.jwt_authn': { fields: { sub: { stringValue: 'x', kind: 'stringValue' }, n: { numberValue: 2, kind: 'numberValue' } } } }, typed_filter_metadata: {} };
    const input = toPolicyInput(req, identity) as {
      attributes: {
        request: { http: { method: string; headers: Record<string, string> }; time: unknown };
        source: { address: { socketAddress: { address: string; portValue: number }; address?: unknown } };
        contextExtensions: Record<string, string>;
        metadataContext: { filterMetadata: Record<string, unknown> };
      };
    };
    expect(input.attributes.request.http.method).toBe('GET');
    expect(input.attributes.request.http.headers['x-custom_header']).toBe('v');
    // As the plugin gives it (a Timestamp message field by field, 64-bit integers as numbers).
    expect(input.attributes.request.time).toEqual({ seconds: 1700000000, nanos: 5_000_000 });
    expect(input.attributes.source.address).toEqual({ socketAddress: { address: '127.0.0.1', portValue: 50000 } });
    expect(input.attributes.contextExtensions).toEqual({ service_name: 'orders' });
    expect(input.attributes.metadataContext.filterMetadata).toEqual({ 'envoy.filters.http.jwt_authn': { sub: 'x', n: 2 } });
  });

  it('adds parsed_path, parsed_query, version and identity', () => {
    const input = toPolicyInput(checkRequest({ path: '/people/a%20b?x=1&x=2&y=' }), identity);
    expect(input.parsed_path).toEqual(['people', 'a b']);
    expect(input.parsed_query).toEqual({ x: ['1', '2'], y: [''] });
    expect(input.version).toEqual({ ext_authz: 'v3', encoding: 'protojson' });
    expect(input.identity).toMatchObject({ subject: 'alice', roles: ['buyer'] });
    expect(toPolicyInput(checkRequest({ path: '/' }), undefined)).toMatchObject({ parsed_path: [''], parsed_query: {}, identity: null });
  });

  it('parses JSON and form bodies, and flags truncated ones', () => {
    expect(toPolicyInput(withBody('{"a":1}', { 'content-type': 'application/json', 'content-length': '7' }), undefined)).toMatchObject({
      parsed_body: { a: 1 },
      truncated_body: false,
    });
    expect(toPolicyInput(withBody('a=1&a=2', { 'content-type': 'application/x-www-form-urlencoded' }), undefined).parsed_body).toEqual({ a: ['1', '2'] });
    expect(toPolicyInput(withBody('{"a":', { 'content-type': 'application/json', 'content-length': '100' }), undefined)).toMatchObject({
      parsed_body: null,
      truncated_body: true,
    });
    expect(toPolicyInput(withBody('<x/>', { 'content-type': 'text/xml' }), undefined).parsed_body).toBeNull();
  });

  it('carries the normalized path (http.path, :path, parsed_path), the query as sent', () => {
    const input = toPolicyInput(checkRequest({ path: '/docs/./a/..//%6Frders/%2e%2E/orders?next=/../x//y' }), undefined) as {
      attributes: { request: { http: { path: string; headers: Record<string, string> } } };
      parsed_path: string[];
      parsed_query: Record<string, string[]>;
    };
    expect(input.attributes.request.http.path).toBe('/docs/orders?next=/../x//y');
    expect(input.attributes.request.http.headers[':path']).toBe('/docs/orders?next=/../x//y');
    expect(input.parsed_path).toEqual(['docs', 'orders']);
    expect(input.parsed_query).toEqual({ next: ['/../x//y'] });
    // The routes and the policy drop a fragment alike.
    const frag = toPolicyInput(checkRequest({ path: '/docs/x#/../../y?q=1' }), undefined) as { attributes: { request: { http: { path: string } } }; parsed_query: unknown };
    expect(frag.attributes.request.http.path).toBe('/docs/x');
    expect(frag.parsed_query).toEqual({});
  });

  it('passes the source principal', () => {
    expect(toPolicyInput(checkRequest({ principal: 'spiffe://d/w' }), undefined).source_principal).toBe('spiffe://d/w');
  });
});
