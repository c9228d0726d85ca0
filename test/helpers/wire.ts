import { expect } from 'vitest';

type Encode = (v: unknown) => Buffer;

/**
 * A fast response writer beside the generic (protobufjs) encoder it falls back to: `same(r)`
 * expects the same bytes from both, and that the fast path wrote them (`viaGeneric`: that it
 * handed `r` to the generic encoder instead).
 */
export function writerBesideGeneric(makeWriter: (fallback: Encode) => Encode, generic: Encode): { fast: Encode; same: (r: unknown, viaGeneric?: boolean) => void } {
  let genericCalls = 0;
  const fast = makeWriter((v) => {
    genericCalls++;
    return generic(v);
  });
  const same = (r: unknown, viaGeneric = false): void => {
    const before = genericCalls;
    const bytes = fast(r);
    expect(bytes.toString('hex')).toBe(generic(r).toString('hex'));
    expect(genericCalls - before).toBe(viaGeneric ? 1 : 0);
  };
  return { fast, same };
}
