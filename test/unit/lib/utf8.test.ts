// The short-string UTF-8 writes of the wire writers and the JSON writer: byte for byte what
// Buffer#write and Buffer.byteLength give, on both sides of the short-string limit and for every
// kind of UTF-16 unit (ASCII, two- and three-byte characters, surrogate pairs, lone surrogates).
import { describe, expect, it } from 'vitest';
import { SHORT, utf8Length, writeUtf8 } from '../../../src/lib/utf8.js';
import { sampleStrings } from '../../helpers/strings.js';

describe('writeUtf8 and utf8Length', () => {
  it('write and measure exactly what Buffer#write and Buffer.byteLength do', () => {
    const ours = Buffer.alloc(256);
    const theirs = Buffer.alloc(256);
    for (const s of [...sampleStrings(3000), 'x'.repeat(SHORT), 'x'.repeat(SHORT + 1), 'é'.repeat(SHORT), `${'x'.repeat(SHORT - 1)}é`, 'x'.repeat(1000)]) {
      ours.fill(0xaa);
      theirs.fill(0xaa);
      const n = writeUtf8(ours, 7, s);
      const m = theirs.write(s, 7, 'utf8');
      expect(n, JSON.stringify(s)).toBe(m);
      expect(ours.equals(theirs), JSON.stringify(s)).toBe(true);
      expect(utf8Length(s), JSON.stringify(s)).toBe(Buffer.byteLength(s, 'utf8'));
    }
  });
});
