// JWK members that carry private or symmetric key material (RFC 7517/7518): never published,
// never accepted where only public keys belong.
import type { JWK } from 'jose';

export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'oth'];

/** The private members a JWK carries (empty for a public key). */
export function privateMembers(jwk: object): string[] {
  return PRIVATE_JWK_MEMBERS.filter((m) => m in jwk);
}

/** The JWK without its private members. */
export function publicPart(jwk: JWK): JWK {
  return Object.fromEntries(Object.entries(jwk).filter(([m]) => !PRIVATE_JWK_MEMBERS.includes(m)));
}
