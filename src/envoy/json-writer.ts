// JSON text written straight into one reused buffer, as UTF-8: the policy input is made this way
// (input.ts), instead of as an object graph that JSON.stringify and a TextEncoder then copied
// twice more per Check. Strings that need escaping (quotes, backslashes, control characters, lone
// surrogates) go through JSON.stringify, so the text is exactly what JSON.stringify would write
// for the same value; everything else is written as is.

// eslint-disable-next-line no-control-regex -- control characters are exactly what JSON must escape
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;
const MAX_RETAINED = 1024 * 1024;

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
    this.pos += this.buf.write(json, this.pos, 'utf8');
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.pos++] = c;
  }

  string(s: string): void {
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

  /** Any JSON value (undefined as null, as inside an array). */
  value(v: unknown): void {
    if (typeof v === 'string') return this.string(v);
    if (typeof v === 'number') return this.number(v);
    if (typeof v === 'boolean') return this.bool(v);
    if (v === null || v === undefined) return this.raw('null');
    this.utf8(JSON.stringify(v) ?? 'null');
  }

  private utf8(text: string): void {
    this.ensure(text.length * 3);
    this.pos += this.buf.write(text, this.pos, 'utf8');
  }

  /** The document written since reset(), in a buffer of its own. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}
