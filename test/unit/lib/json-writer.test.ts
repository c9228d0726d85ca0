// The JSON text writer behind the policy input and the audit line: exactly JSON.stringify's text
// for every value, and the input document built with it equal to the one the object graph made.
import { describe, expect, it } from 'vitest';
import { JsonWriter } from '../../../src/lib/json-writer.js';
import { SHORT } from '../../../src/lib/utf8.js';
import { sampleStrings } from '../../helpers/strings.js';
import { policyInputBuilder } from '../../../src/envoy/input.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import type { CheckRequest, CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';

function decoded(req: CheckRequest): CheckRequest__Output {
  const m = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  return m.requestDeserialize(m.requestSerialize(req));
}

function written(fn: (w: JsonWriter) => void): string {
  const w = new JsonWriter();
  w.reset();
  fn(w);
  return w.take().toString('utf8');
}

describe('JsonWriter', () => {
  const strings = ['', 'plain', 'quote " and \\ backslash', 'tab\tnew\nline\u0000nul\u001f', 'é ✓ 𝄞 emoji 😀', 'lone \ud800 high', 'lone \udc00 low', 'reversed \udc00\ud800 pair', '</script>\u2028\u2029', 'x'.repeat(70_000)];
  for (const s of strings) {
    it(`writes ${JSON.stringify(s.slice(0, 30))} as JSON.stringify does`, () => {
      expect(written((w) => w.string(s))).toBe(JSON.stringify(s));
    });
  }

  it('writes numbers, booleans, null and nested values as JSON.stringify does', () => {
    for (const v of [0, -0, 1.5, -1e-7, 2 ** 60, Number.NaN, Infinity, -Infinity, true, false, null, [1, 'a', null, undefined], { a: { b: [undefined, { c: 'é' }] }, u: undefined }]) {
      expect(written((w) => w.value(v))).toBe(JSON.stringify([v]).slice(1, -1) || 'null');
    }
  });

  it('writes arrays and records member by member exactly as JSON.stringify does, whatever they hold', () => {
    const nullProto = Object.assign(Object.create(null) as Record<string, unknown>, { b: 1, a: ['x'] });
    const withGetter = { get g(): string { return 'got'; }, n: 1 };
    const hidden = Object.defineProperty({ shown: 1 }, 'hidden', { value: 2, enumerable: false });
    class Point { constructor(readonly x: number, readonly y: number) {} }
    let deep: unknown = 'bottom';
    for (let i = 0; i < 100; i++) deep = i % 2 ? [deep] : { d: deep };
    const values: unknown[] = [
      [],
      {},
      // eslint-disable-next-line no-sparse-arrays -- a hole is written as null
      [1, , 3],
      [undefined, () => 1, Symbol('s'), null],
      { u: undefined, f: () => 1, s: Symbol('s'), [Symbol('k')]: 1, kept: 'yes' },
      { 10: 'ten', 2: 'two', b: 'b', a: 'a', '-1': 'minus' },
      JSON.parse('{"__proto__": {"x": 1}, "constructor": "c"}'),
      nullProto,
      withGetter,
      hidden,
      { when: new Date(0), map: new Map([[1, 2]]), set: new Set([1]), point: new Point(1, 2), buf: Buffer.from('ab') },
      { own: { toJSON: (key: string) => `toJSON(${key})` }, gone: { toJSON: () => undefined }, list: [{ toJSON: (key: string) => ({ at: key, again: { toJSON: () => 'inner' } }) }, { toJSON: () => undefined }] },
      { boxed: [Object('s'), Object(1), Object(false)], typed: new Uint8Array([1, 2]), err: new Error('e') },
      { 'key "quoted"\n ': 'v', 'é𝄞': [1.5, -0, NaN, Infinity, 2 ** 70, -1e-9] },
      { claims: { roles: ['a', 'b'], nested: { ok: true, n: null, e: [] } } },
      deep,
    ];
    for (const v of values) expect(written((w) => w.value(v))).toBe(JSON.stringify(v));
  });

  it('throws on a cycle and on a bigint, as JSON.stringify does', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = { back: cyclic };
    expect(() => written((w) => w.value(cyclic))).toThrow(TypeError);
    const list: unknown[] = [1];
    list.push(list);
    expect(() => written((w) => w.value(list))).toThrow(TypeError);
    expect(() => written((w) => w.value({ n: 1n }))).toThrow(TypeError);
  });

  it('writes short strings (written in place when printable ASCII) as JSON.stringify does, whatever units they hold', () => {
    const all = [...sampleStrings(3000), 'x'.repeat(SHORT), 'x'.repeat(SHORT + 1), `${'x'.repeat(SHORT - 1)}"`, `${'x'.repeat(SHORT - 1)}\u00e9`];
    expect(written((w) => w.value(all))).toBe(JSON.stringify(all));
    expect(written((w) => all.forEach((s) => w.raw(JSON.stringify(s))))).toBe(all.map((s) => JSON.stringify(s)).join(''));
  });

  it('grows past its buffer with short strings too', () => {
    const w = new JsonWriter();
    w.reset();
    const words = Array.from({ length: 3000 }, (_, i) => `word-${i}`);
    w.value(words);
    expect(w.take().toString('utf8')).toBe(JSON.stringify(words));
  });

  it('grows past its buffer and starts over on reset', () => {
    const w = new JsonWriter();
    w.reset();
    const big = 'y'.repeat(40_000);
    w.raw('[');
    for (let i = 0; i < 5; i++) {
      if (i > 0) w.raw(',');
      w.string(big);
    }
    w.raw(']');
    expect(JSON.parse(w.take().toString('utf8'))).toHaveLength(5);
    w.reset();
    w.string('small');
    expect(w.take().toString('utf8')).toBe('"small"');
  });
});

describe('the policy input as JSON text', () => {
  it('is one document whose value is parsed once', () => {
    const doc = policyInputBuilder()(decoded({ attributes: { request: { http: { method: 'GET', path: '/a?x=1', headers: { ':path': '/a?x=1' } } } } }), undefined);
    expect(JSON.parse(doc.json.toString('utf8'))).toEqual(doc.value());
    expect(doc.value()).toBe(doc.value());
    expect(doc.parsedQuery).toEqual({ x: ['1'] });
  });

  it('keeps a headers map whose every header is stripped, as an empty object (as before)', () => {
    const doc = policyInputBuilder({ stripHeaders: ['authorization'] })(decoded({ attributes: { request: { http: { method: 'GET', path: '/', headers: { Authorization: 'Bearer t' } } } } }), undefined);
    expect((doc.value().attributes as { request: { http: { headers: unknown } } }).request.http.headers).toEqual({});
  });

  it('writes the version, the identity and the operation even when Envoy sent no attributes', () => {
    const v = policyInputBuilder()(decoded({}), { subject: 's' } as never, { id: 'getOrder' }).value();
    expect(v).toEqual({ version: { ext_authz: 'v3', encoding: 'protojson' }, parsed_path: [''], parsed_query: {}, parsed_body: null, truncated_body: false, identity: { subject: 's' }, operation: { id: 'getOrder' } });
  });

  it('keeps map keys that are property names of Object.prototype as data', () => {
    const v = policyInputBuilder()(decoded({ attributes: { request: { http: { method: 'GET', path: '/', headers: { constructor: 'c', toString: 't', hasOwnProperty: 'h' } } } } }), undefined).value();
    const headers = (v.attributes as { request: { http: { headers: Record<string, string> } } }).request.http.headers;
    expect(Object.getOwnPropertyNames(headers).sort()).toEqual(['constructor', 'hasOwnProperty', 'toString']);
    expect(headers.constructor).toBe('c');
  });
});
