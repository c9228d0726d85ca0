// Random (version 4) UUIDs as one flat string each. Every Check carries a decision id; node's
// randomUUID joins 20 pieces into a string per id (about 500 bytes of intermediate strings per
// Check, docs/performance.md). This writes the 36 characters into a scratch buffer and decodes it
// once. The random bytes come from the same CSPRNG, drawn in batches as node does.
import { randomFillSync } from 'node:crypto';

const BATCH = 128; // ids per refill
const pool = Buffer.alloc(16 * BATCH);
let next = pool.length; // empty: the first id fills it
const text = Buffer.alloc(36);
const HEX = Buffer.from('0123456789abcdef', 'latin1');
// Where each of the 16 bytes' two hex digits go in 8-4-4-4-12.
const AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34] as const;
text[8] = text[13] = text[18] = text[23] = 0x2d; // '-'

/** A random UUID (RFC 9562 version 4), lower-case, as crypto.randomUUID returns it. */
export function randomUuid(): string {
  if (next === pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  const at = next;
  next += 16;
  for (let i = 0; i < 16; i++) {
    let b = pool[at + i]!;
    if (i === 6) b = (b & 0x0f) | 0x40; // version 4
    else if (i === 8) b = (b & 0x3f) | 0x80; // variant 10xx
    const o = AT[i]!;
    text[o] = HEX[b >> 4]!;
    text[o + 1] = HEX[b & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
