// The one reading of an IP address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, or a bare address
// meaning /32 or /128), and the node:net BlockList built from such rules.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export type IpFamily = 'ipv4' | 'ipv6';

export interface Cidr {
  readonly network: string;
  readonly prefix: number;
  readonly family: IpFamily;
}

export function familyOf(address: string): IpFamily | undefined {
  return isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
}

/** The rule, or a problem saying what is wrong with it. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const network = slash < 0 ? text : text.slice(0, slash);
  const family = familyOf(network);
  if (!family) return `${JSON.stringify(text)} is not an IP address or CIDR`;
  const max = family === 'ipv4' ? 32 : 128;
  if (slash < 0) return { network, prefix: max, family };
  const len = text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(len) || Number(len) > max) return `${JSON.stringify(text)} has a bad prefix length (0..${max})`;
  return { network, prefix: Number(len), family };
}

/** A BlockList of the rules (BlockList cannot remove rules: build a new one on change). */
export function blockListOf(cidrs: Iterable<Cidr>): BlockList {
  const list = new BlockList();
  for (const c of cidrs) list.addSubnet(c.network, c.prefix, c.family);
  return list;
}

/** Whether `address` is inside any of the rules of `list`. */
export function contains(list: BlockList, address: string): boolean {
  const family = familyOf(address);
  return family !== undefined && list.check(address, family);
}
