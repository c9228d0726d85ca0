// JSON text written straight into one reused buffer, as UTF-8: the policy input (src/envoy/input.ts)
// and the audit log line (src/telemetry/logger.ts) are made this way, instead of as an object
// graph or a string that JSON.stringify and a TextEncoder then copied twice more per Check.
// Strings that need escaping (quotes, backslashes, control characters, lone surrogates) go through
// JSON.stringify, so the text is exactly what JSON.stringify would write for the same value;
// everything else is written as is.

import { SHORT, writeUtf8 } from './utf8.js';

// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const MAX_RETAINED = 1024 * 1024;
/** Nesting written member by member; deeper subtrees are JSON.stringify's (the stack stays bounded). */
const MAX_WALK_DEPTH = 64;

export class JsonWriter {
  private buf = Buffer.allocUnsafe(16 * 1024);
  private pos = 0;

  /** Starts a new document (the buffer is reused; a very large one is let go). */
  reset(): void {
    if (this.buf.length > MAX_RETAINED) this.buf = Buffer.allocUnsafe(16 * 1024);
    this.pos = 0;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  /** Text known to be JSON already (punctuation, pre-quoted keys, numbers). */
  raw(json: string): void {
    this.ensure(json.length * 3);
    this.pos += writeUtf8(this.buf, this.pos, json);
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  string(s: string): void {
    const n = s.length;
    if (n <= SHORT) {
      // Printable ASCII needs no escape: written in place, with no regex and no native call.
      this.ensure(n + 2);
      const buf = this.buf;
      let p = this.pos;
      buf[p++] = 0x22;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c) return this.anyString(s);
        buf[p++] = c;
      }
      buf[p++] = 0x22;
      this.pos = p;
      return;
    }
    this.anyString(s);
  }

  private anyString(s: string): void {
    if (NEEDS_ESCAPE.test(s)) return this.utf8(JSON.stringify(s));
    this.ensure(s.length * 3 + 2);
    this.buf[this.pos++] = 0x22;
    this.pos += this.buf.write(s, this.pos, 'utf8');
    this.buf[this.pos++] = 0x22;
  }

  /** A number as JSON.stringify writes it (NaN and infinities as null). */
  number(n: number): void {
    this.raw(Number.isFinite(n) ? String(n) : 'null');
  }

  bool(b: boolean): void {
    this.raw(b ? 'true' : 'false');
  }

  /**
   * Any JSON value (undefined as null, as inside an array), written as JSON.stringify writes it
   * but member by member, with no string for the whole (the path, query and identity of every
   * Check's input were each one): a toJSON method is called with the member's key, members that
   * are undefined, functions or symbols are left out (null in arrays), objects that are not
   * arrays are written as their own enumerable string-keyed members. Boxed primitives, and a
   * subtree deeper than MAX_WALK_DEPTH (so that the stack stays bounded; a cycle throws there,
   * as JSON.stringify throws), are JSON.stringify's.
   */
  value(v: unknown): void {
    this.member(resolved(v, ''), 0);
  }

  /** A value whose toJSON, if any, has been called. */
  private member(v: unknown, depth: number): void {
    if (typeof v === 'string') return this.string(v);
    if (typeof v === 'number') return this.number(v);
    if (typeof v === 'boolean') return this.bool(v);
    if (typeof v !== 'object' || v === null) {
      // bigint throws, as JSON.stringify does.
      if (typeof v === 'bigint') this.utf8(JSON.stringify(v));
      return this.raw('null');
    }
    if (depth >= MAX_WALK_DEPTH || v instanceof Number || v instanceof String || v instanceof Boolean) return this.utf8(JSON.stringify(v) ?? 'null');
    if (Array.isArray(v)) return this.array(v, depth);
    this.record(v as Record<string, unknown>, depth);
  }

  private array(a: readonly unknown[], depth: number): void {
    this.byte(0x5b);
    for (let i = 0; i < a.length; i++) {
      if (i > 0) this.byte(0x2c);
      this.member(resolved(a[i], i), depth + 1);
    }
    this.byte(0x5d);
  }

  private record(r: Record<string, unknown>, depth: number): void {
    this.byte(0x7b);
    this.fields(r, depth, false);
    this.byte(0x7d);
  }

  /**
   * A record's members without its braces, each after a comma - to continue an object already
   * begun (a log line's level, time and bindings). Returns whether any was written.
   */
  members(r: Record<string, unknown>): boolean {
    return this.fields(r, 0, true);
  }

  private fields(r: Record<string, unknown>, depth: number, leadingComma: boolean): boolean {
    let any = false;
    for (const k in r) {
      if (!Object.hasOwn(r, k)) continue;
      const m = resolved(r[k], k);
      if (m === undefined || typeof m === 'function' || typeof m === 'symbol') continue;
      if (any || leadingComma) this.byte(0x2c);
      any = true;
      this.string(k);
      this.byte(0x3a);
      this.member(m, depth + 1);
    }
    return any;
  }

  /** Bytes written since reset(). */
  get length(): number {
    return this.pos;
  }

  private utf8(text: string): void {
    this.ensure(text.length * 3);
    this.pos += writeUtf8(this.buf, this.pos, text);
  }

  /** The document written since reset(), in a buffer of its own. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

/** The value JSON.stringify serializes for a member: what its toJSON returns, when it has one. */
function resolved(v: unknown, key: string | number): unknown {
  if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return (toJSON as (key: string) => unknown).call(v, String(key));
  }
  return v;
}
