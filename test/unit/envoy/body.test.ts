// Body, query and media-type parsing as opa-envoy-plugin does it (Go's url, mime and multipart
// packages); the recorded fixtures pin the common cases, these pin the edges and the cost.
import { describe, expect, it } from 'vitest';
import { parseBody } from '../../../src/envoy/body.js';
import { parseQuery, pathUnescape } from '../../../src/envoy/go-url.js';
import { parseMediaType } from '../../../src/envoy/media-type.js';
import { RequestParseError } from '../../../src/lib/errors.js';
import { rngInt } from '../../helpers/random.js';

const mp = (body: string, boundary = 'b'): ReturnType<typeof parseBody> => parseBody({ 'content-type': `multipart/form-data; boundary=${boundary}` }, body, undefined);

describe('body parsing (opa-envoy-plugin semantics)', () => {
  it('reads multipart parts in order per name, JSON parts as JSON, tolerating LF-only lines', () => {
    const crlf = '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b\r\nContent-Disposition: form-data; name="j"\r\nContent-Type: application/json\r\n\r\n{"x":[1]}\r\n--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n2\r\n--b--\r\n';
    expect(mp(crlf)).toEqual({ parsed: { a: ['1', '2'], j: [{ x: [1] }] }, truncated: false });
    expect(mp(crlf.replace(/\r\n/g, '\n')).parsed).toEqual({ a: ['1', '2'], j: [{ x: [1] }] });
    // A boundary-like line inside a part that is not followed by whitespace or "--" is content.
    expect(mp('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nx\r\n--bz\r\n--b--').parsed).toEqual({ a: ['x\r\n--bz'] });
  });

  it('refuses what Go refuses: no closing boundary, a malformed part header, a bad JSON part, bad parameters', () => {
    expect(() => mp('--b\r\nContent-Disposition: form-data; name="a"\r\n\r\nnever closed')).toThrow(RequestParseError);
    expect(() => mp('--b\r\nno colon here\r\n\r\nx\r\n--b--')).toThrow(RequestParseError);
    expect(() => mp('--b\r\nContent-Disposition: form-data; name="j"\r\nContent-Type: application/json\r\n\r\n{\r\n--b--')).toThrow(RequestParseError);
    expect(() => parseMediaType('multipart/form-data; boundary')).toThrow(RequestParseError);
    expect(() => parseMediaType('multipart/form-data; a=1; a=2')).toThrow(RequestParseError);
    expect(parseMediaType('Multipart/Form-Data; Boundary="x y"; ').params).toEqual({ boundary: 'x y' });
  });

  it('answers a plain lower-case type/subtype at once, as the full parse does', () => {
    // Such a value skips the parse; with a trailing ';' (which the parse ignores) it goes through
    // it: the two answers must be the same, for every value without a ';' of its own (random ones
    // over token characters, tspecials, spaces and upper case).
    const chars = "az09!#$%&'*+.^_`|~-AZ{}/ ;=\"@";
    const next = rngInt(11);
    const word = (): string => {
      let w = '';
      for (let len = next(6); len > 0; len--) w += chars[next(chars.length)];
      return w;
    };
    const values = ['application/json', 'application/problem+json', 'text/plain', 'multipart/form-data', 'a/b', 'Application/JSON', 'application/', '/json', 'application/json ', 'a/b/c'];
    for (let k = 0; k < 3000; k++) values.push(`${word()}/${word()}`);
    const answer = (v: string): unknown => {
      try {
        return parseMediaType(v);
      } catch (e) {
        return e instanceof RequestParseError ? 'refused' : e;
      }
    };
    let plain = 0;
    for (const v of values) {
      if (v.includes(';')) continue;
      if (/^[a-z0-9!#$%&'*+.^_`|~-]+\/[a-z0-9!#$%&'*+.^_`|~-]+$/.test(v)) plain++;
      expect(answer(v), JSON.stringify(v)).toEqual(answer(`${v};`));
    }
    expect(plain).toBeGreaterThan(100);
    expect(answer('Application/JSON')).toEqual({ type: 'application/json', params: {} });
    expect(answer('application/')).toBe('refused');
  });

  it('reads queries and paths as Go does: + is a space in queries only, a ; or a bad escape is an error', () => {
    expect(parseQuery('a=1&&a=2&b&c=x+y&d=%2B')).toEqual({ a: ['1', '2'], b: [''], c: ['x y'], d: ['+'] });
    expect(() => parseQuery('a=1;b=2')).toThrow(RequestParseError);
    expect(() => parseQuery('a=%g1')).toThrow(RequestParseError);
    expect(pathUnescape('/a+b/%E2%98%83')).toBe('/a+b/☃');
    expect(() => pathUnescape('/a%')).toThrow(RequestParseError);
    // A key that is an Object.prototype name is data.
    expect(Object.getPrototypeOf(parseQuery('__proto__=x'))).toBe(Object.prototype);
    expect(parseQuery('__proto__=x')).toHaveProperty(['__proto__'], ['x']);
    const names = parseQuery('constructor=1&toString=2&__proto__=3&__proto__=4&hasOwnProperty=5&constructor=6');
    expect(Object.getPrototypeOf(names)).toBe(Object.prototype);
    expect(Object.entries(names)).toEqual([['constructor', ['1', '6']], ['toString', ['2']], ['__proto__', ['3', '4']], ['hasOwnProperty', ['5']]]);
    expect(JSON.stringify(names)).toBe('{"constructor":["1","6"],"toString":["2"],"__proto__":["3","4"],"hasOwnProperty":["5"]}');
  });

  it('flags truncation by x-envoy-auth-partial-body or content-length, and refuses a non-numeric content-length', () => {
    expect(parseBody({ 'x-envoy-auth-partial-body': 'true' }, 'anything', undefined)).toEqual({ parsed: null, truncated: true });
    expect(parseBody({ 'content-type': 'application/json', 'content-length': '10' }, '{"a":', undefined)).toEqual({ parsed: null, truncated: true });
    expect(parseBody({ 'content-type': 'application/json', 'content-length': '-1' }, '{"a":1}', undefined)).toEqual({ parsed: { a: 1 }, truncated: false });
    expect(() => parseBody({ 'content-type': 'application/json', 'content-length': '7x' }, '{"a":1}', undefined)).toThrow(RequestParseError);
  });

  it('stays linear on hostile bodies (near-boundaries, long preambles, many pairs)', () => {
    const n = 100_000; // bodies stay below the 1 MiB parse cap
    const started = performance.now();
    expect(() => mp(`--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n${'\r\n--bx'.repeat(n)}`)).toThrow(RequestParseError);
    expect(mp(`${'x\n'.repeat(n)}--b--`).parsed).toEqual({});
    expect(Object.keys(parseQuery('a=1&'.repeat(n))).length).toBe(1);
    expect(() => parseMediaType(`form-data;${' '.repeat(n)}x`)).toThrow(RequestParseError);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
