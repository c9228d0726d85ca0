// A string kept for long (a table's key) in one piece. V8 represents a concatenation - a template
// literal, `+=` - as a tree of its pieces (a ConsString) and keeps the tree until something
// flattens it: a rate-limit bucket key built from five pieces held about 280 bytes more in the
// memory store's table than the same key in one piece (bench/lib/bucket-memory.ts). Reading a
// character flattens the string in place, and the garbage collector then replaces references to
// the tree with the flat string. A flat string is returned unchanged, at the cost of one read.

/** `s`, flattened: the same value, held by the table without the pieces it was made from. */
export function flat(s: string): string {
  if (s.length > 0) s.charCodeAt(0);
  return s;
}
