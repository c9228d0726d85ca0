import { describe, expect, it } from 'vitest';
import { extractBearer, refuseQueryCredentials } from '../../../src/authn/extract.js';
import { requestView } from '../../helpers/requests.js';

const src = { header: 'authorization', scheme: 'Bearer', maxTokenBytes: 64 };
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe('extractBearer', () => {
  it('returns undefined when the header is absent', () => {
    expect(extractBearer(requestView(), src)).toBeUndefined();
  });

  it('takes the token after a case-insensitive scheme', () => {
    expect(extractBearer(requestView({ headers: { authorization: 'Bearer abc.def.ghi' } }), src)).toBe('abc.def.ghi');
    expect(extractBearer(requestView({ headers: { authorization: 'bearer   abc' } }), src)).toBe('abc');
  });

  it('uses a configured header and an empty scheme', () => {
    const s = { header: 'x-token', scheme: '', maxTokenBytes: 64 };
    expect(extractBearer(requestView({ headers: { 'x-token': 'abc' } }), s)).toBe('abc');
  });

  it.each([
    ['Basic dXNlcjpwYXNz', 'credential_malformed'],
    ['Bearer', 'credential_malformed'],
    ['Bearer ', 'credential_malformed'],
    ['Bearer a b', 'credential_malformed'],
    ['Bearer a,Bearer b', 'credential_malformed'],
    ['Bearer a"b', 'credential_malformed'],
    ['Bearerabc', 'credential_malformed'],
  ])('rejects %j', (value, expected) => {
    expect(code(() => extractBearer(requestView({ headers: { authorization: value } }), src))).toBe(expected);
  });

  it('rejects an oversized header before parsing it', () => {
    expect(code(() => extractBearer(requestView({ headers: { authorization: `Bearer ${'a'.repeat(65)}` } }), src))).toBe('token_too_large');
    expect(code(() => extractBearer(requestView({ headers: { authorization: 'x'.repeat(100_000) } }), src))).toBe('token_too_large');
    expect(extractBearer(requestView({ headers: { authorization: `Bearer ${'a'.repeat(64)}` } }), src)).toHaveLength(64);
  });
});

describe('refuseQueryCredentials', () => {
  const forbidden = new Set(['access_token', 'id_token']);
  it('rejects credentials in the query string, any case, encoded or not', () => {
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?access_token=x' }), forbidden))).toBe('credential_in_query');
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?b=1&ID_TOKEN=x' }), forbidden))).toBe('credential_in_query');
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?access%5Ftoken=x' }), forbidden))).toBe('credential_in_query');
    // A doubled '?' does not hide the name (it did unless the query had a '%' or '+').
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a??access_token=x' }), forbidden))).toBe('credential_in_query');
  });
  it('lets other parameters through', () => {
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?token_type=x&q=access_token' }), forbidden))).toBeUndefined();
  });
});

describe('refuseQueryCredentials by value', () => {
  it('refuses a recognized credential under any parameter name', () => {
    const isKey = (v: string): boolean => v.startsWith('eak_');
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?k=eak_123' }), new Set(), isKey))).toBe('credential_in_query');
    expect(code(() => refuseQueryCredentials(requestView({ path: '/a?k=other' }), new Set(), isKey))).toBeUndefined();
  });
});
