import { describe, expect, it } from 'vitest';
import { queryNames, toRequestView } from '../../../src/envoy/request.js';
import type { CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';
import { checkRequest } from '../../helpers/requests.js';

describe('toRequestView', () => {
  it('normalizes method, host, path and query', () => {
    const v = toRequestView(checkRequest({ method: 'get', path: '/a/b?x=1&y=2', host: 'API.Example.test:8443' }));
    expect(v).toMatchObject({ method: 'GET', host: 'api.example.test', path: '/a/b', query: 'x=1&y=2', id: 'req-1' });
    expect(v.source.address).toBe('127.0.0.1');
  });

  it('keeps IPv6 hosts intact', () => {
    expect(toRequestView(checkRequest({ host: '[::1]:8080' })).host).toBe('[::1]');
    expect(toRequestView(checkRequest({ host: '[::1]' })).host).toBe('[::1]');
  });

  it('lower-cases header names', () => {
    const v = toRequestView(checkRequest({ headers: { Authorization: 'Bearer x' } }));
    expect(v.headers.get('authorization')).toBe('Bearer x');
  });

  it('a name sent in two cases: the lower-case one is the header, whatever the order (what a policy reads as headers[name])', () => {
    for (const headers of [{ Authorization: 'Bearer upper', authorization: 'Bearer lower' }, { authorization: 'Bearer lower', Authorization: 'Bearer upper' }]) {
      expect(toRequestView(checkRequest({ headers })).headers.get('authorization')).toBe('Bearer lower');
    }
    // No lower-case one: the first in the map's order (the decoder sorts a map's keys).
    expect(toRequestView(checkRequest({ headers: { 'X-Tenant': 'a', 'x-Tenant': 'b' } })).headers.get('x-tenant')).toBe('a');
  });

  it('reads the decoded headers in place as a map: every entry, no inherited names', () => {
    const headers = { ':authority': 'a.test', 'x-one': '1', '123': 'numeric', constructor: 'sent' };
    const v = toRequestView(checkRequest({ headers }));
    const expected = new Map(Object.entries(v.raw.attributes!.request!.http!.headers!));
    expect(new Map(v.headers)).toEqual(expected);
    expect(v.headers.size).toBe(expected.size);
    expect([...v.headers.keys()]).toEqual([...expected.keys()]);
    expect([...v.headers.values()]).toEqual([...expected.values()]);
    expect([...v.headers.entries()]).toEqual([...expected.entries()]);
    const seen: [string, string][] = [];
    v.headers.forEach((value, key, map) => {
      expect(map).toBe(v.headers);
      seen.push([key, value]);
    });
    expect(seen).toEqual([...expected]);
    expect(v.headers.get('constructor')).toBe('sent');
    expect(v.headers.get('x-one')).toBe('1');
    // What Object.prototype has is no header.
    for (const name of ['toString', 'hasOwnProperty', '__proto__', 'valueOf']) {
      expect(v.headers.get(name)).toBeUndefined();
      expect(v.headers.has(name)).toBe(false);
    }
    expect(v.headers.has('x-one')).toBe(true);
    expect(v.headers.get('x-two')).toBeUndefined();
  });

  it('lower-cases names when any is not, keeping every header', () => {
    const v = toRequestView(checkRequest({ headers: { 'x-lower': 'a', 'X-Upper': 'b' } }));
    expect(v.headers.get('x-lower')).toBe('a');
    expect(v.headers.get('x-upper')).toBe('b');
    expect(v.headers.has('X-Upper')).toBe(false);
  });

  it('reads header_map (encode_raw_headers) and joins repeated headers', () => {
    const req = {
      attributes: {
        request: {
          http: {
            path: '/x',
            header_map: {
              headers: [
                { key: 'X-A', raw_value: Buffer.from('1') },
                { key: 'x-a', raw_value: Buffer.from('2') },
                { key: 'x-b', value: 'v' },
              ],
            },
          },
        },
      },
    } as CheckRequest__Output;
    const v = toRequestView(req);
    expect(v.headers.get('x-a')).toBe('1,2');
    expect(v.headers.get('x-b')).toBe('v');
  });

  it('normalizes the path as Envoy would route it, and flags one that cannot be', () => {
    expect(toRequestView(checkRequest({ path: '/docs/../orders?a=/../b' }))).toMatchObject({ path: '/orders', query: 'a=/../b', pathInvalid: false });
    expect(toRequestView(checkRequest({ path: '//docs/%2e/x#frag' }))).toMatchObject({ path: '/docs/x', pathInvalid: false });
    expect(toRequestView(checkRequest({ path: '/docs/x#frag/../../y?q=1' }))).toMatchObject({ path: '/docs/x', query: '', pathInvalid: false });
    expect(toRequestView(checkRequest({ path: '/docs/../../orders' }))).toMatchObject({ path: '/docs/../../orders', pathInvalid: true });
    expect(toRequestView(checkRequest({ path: '/docs\\..\\orders' })).pathInvalid).toBe(true);
  });

  it('survives an empty request', () => {
    const v = toRequestView({});
    expect(v).toMatchObject({ method: '', path: '/', query: '', host: '', id: '' });
  });

  it('passes peer principal, certificate and context extensions through', () => {
    const v = toRequestView(checkRequest({ principal: 'spiffe://a/b', certificate: '-----BEGIN', contextExtensions: { svc: 'orders' } }));
    expect(v.source).toMatchObject({ principal: 'spiffe://a/b', certificate: '-----BEGIN' });
    expect(v.contextExtensions).toEqual({ svc: 'orders' });
  });
});

describe('queryNames', () => {
  it('decodes names, once each, sorted', () => {
    expect(queryNames('d&a=1&B%5Fc=2&&d')).toEqual(['a', 'b_c', 'd']);
    expect(queryNames('')).toEqual([]);
    expect(toRequestView(checkRequest({ path: '/a?z=1&Y=2&z=3' })).queryNames).toEqual(['y', 'z']);
  });

  it('names what URLSearchParams names, with and without escapes, few or many', () => {
    const many = Array.from({ length: 40 }, (_, i) => `p${i % 25}=${i}`).join('&');
    for (const q of ['a=1&b=2', 'A=1&a=2&&c', '=x&d=', 'e&f=1=2', 'k%20ey=1&pl+us=2', '%zz=1', 'x=%41&%41=1', ';a=1', 'é=1', 'b&a&b&a&c', '?access_token=x', '??a=1', '?', '?&b', many, `${many}&x%41=1`]) {
      const expected = [...new Set([...new URLSearchParams(q)].map(([k]) => k.toLowerCase()))].sort();
      expect(queryNames(q), q).toEqual(expected);
    }
  });
});
