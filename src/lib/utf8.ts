// UTF-8 writes of the short strings a Check is made of (header names and values, JSON keys, limit
// names) into a buffer we own. Buffer#write and Buffer.byteLength each cost a native call with its
// argument checks - 50-90 ns on the bench's host whatever the length - where a JS loop over an
// ASCII string costs 1.5-3 ns a unit (bench/NOTES.md item 29). Longer strings, and any with a unit
// of 0x80 or more, go to the native call, which is faster from about 32 units on.

/** Strings up to this many UTF-16 units are tried byte by byte. */
export const SHORT = 24;

/**
 * Writes `s` as UTF-8 into `buf` at `pos` and returns the bytes written. The caller has made room
 * (up to 3 bytes a unit); a lone surrogate becomes U+FFFD, as Buffer#write writes it.
 */
export function writeUtf8(buf: Buffer, pos: number, s: string): number {
  const n = s.length;
  if (n > SHORT) return buf.write(s, pos, 'utf8');
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return buf.write(s, pos, 'utf8');
    buf[pos + i] = c;
  }
  return n;
}

/** Buffer.byteLength(s, 'utf8'), without the native call for a short ASCII string. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return n;
}
