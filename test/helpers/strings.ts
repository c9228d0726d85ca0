// Strings for differential tests of our UTF-8 and JSON writers against Buffer and JSON.stringify.
import { SHORT } from '../../src/lib/utf8.js';
import { rngInt } from './random.js';

/** Units of every UTF-8 length and every surrogate case. */
const UNIT_POOL = ['a', 'Z', '0', ' ', '~', '\u007f', '\u0000', '\u001f', '"', '\\', '\u0080', 'é', '\u07ff', '\u0800', '✓', '\u2028', '\uffff', '😀', '\ud800', '\udfff'];

/** Strings of 0..SHORT+2 units drawn from UNIT_POOL, the same ones every run. */
export function sampleStrings(count: number, seed = 12345): string[] {
  const next = rngInt(seed);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const len = next(SHORT + 3);
    // Half of them ASCII only, so the fast path is taken as often as it is left.
    const pool = i % 2 === 0 ? UNIT_POOL.slice(0, 5) : UNIT_POOL;
    let s = '';
    while (s.length < len) s += pool[next(pool.length)];
    out.push(s);
  }
  return out;
}
