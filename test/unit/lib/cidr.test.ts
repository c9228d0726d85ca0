import { describe, expect, it } from 'vitest';
import { blockListOf, contains, parseCidr } from '../../../src/lib/cidr.js';

describe('CIDR rules (lib/cidr.ts)', () => {
  it('reads IPv4 and IPv6 networks, and bare addresses as /32 and /128', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ network: '10.0.0.0', prefix: 8, family: 'ipv4' });
    expect(parseCidr('2001:db8::/32')).toEqual({ network: '2001:db8::', prefix: 32, family: 'ipv6' });
    expect(parseCidr('192.0.2.7')).toMatchObject({ prefix: 32 });
    expect(parseCidr('::1')).toMatchObject({ prefix: 128, family: 'ipv6' });
  });

  it('names the problem of a bad rule', () => {
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/-1', '10.0.0.0/8x', 'example.com', '', '10.0.0.0/0008']) {
      expect(parseCidr(bad)).toEqual(expect.any(String));
    }
  });

  it('matches addresses of either family, and never a non-address', () => {
    const rules = ['10.0.0.0/8', '2001:db8::/32'].map((c) => parseCidr(c)).filter((c) => typeof c !== 'string');
    const list = blockListOf(rules);
    expect(contains(list, '10.1.2.3')).toBe(true);
    expect(contains(list, '11.1.2.3')).toBe(false);
    expect(contains(list, '2001:db8::5')).toBe(true);
    expect(contains(list, '2001:db9::5')).toBe(false);
    expect(contains(list, 'not-an-ip')).toBe(false);
  });
});
