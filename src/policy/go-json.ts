// JSON as OPA reads and hashes it: Go's encoding/json decoder (UseNumber: numbers keep their
// literal text; invalid UTF-8 and lone surrogate escapes become U+FFFD; duplicate keys: the last
// wins; at most 10000 levels deep) and OPA's bundle hash walk (objects with their keys in byte
// order, every key and string encoded as Go's json.Encoder with SetEscapeHTML(false) writes it).
// Bundle signatures hash data.json and .manifest this way, so this is what verifying them takes.
import type { Hash } from 'node:crypto';

/** A number as its literal text (json.Number). */
export class GoNumber {
  constructor(readonly literal: string) {}
}

export type GoValue = null | boolean | string | GoNumber | GoValue[] | GoObject;
/** Keys decoded; the value of a repeated key is the last one. */
export type GoObject = Map<string, GoValue>;

export class GoJsonError extends Error {
  override readonly name = 'GoJsonError';
}

/** Input read, or output hashed, between two turns of the event loop when reading asynchronously. */
const STEP_BYTES = 256 * 1024;

/** Runs a stepwise computation to its end at once. */
function run<T>(steps: Generator<void, T>): T {
  for (;;) {
    const n = steps.next();
    if (n.done) return n.value;
  }
}

/** Runs a stepwise computation, letting the event loop turn between steps (Checks keep being answered). */
async function runAsync<T>(steps: Generator<void, T>): Promise<T> {
  for (;;) {
    const n = steps.next();
    if (n.done) return n.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** Go's scanner limit (maxNestingDepth). */
const MAX_DEPTH = 10000;

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;

/** Length of the valid UTF-8 sequence at `i`, or 0 where Go's utf8.DecodeRune says RuneError of size 1. */
function utf8Length(b: Buffer, i: number): number {
  const c = b[i]!;
  const cont = (j: number, lo = 0x80, hi = 0xbf): boolean => i + j < b.length && b[i + j]! >= lo && b[i + j]! <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((c >= 0xe1 && c <= 0xec) || c === 0xee || c === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (c === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (c === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (c >= 0xf1 && c <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (c === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

/** The one-character escapes after a backslash. */
const UNESCAPE: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };

type Frame = { kind: 'array'; items: GoValue[] } | { kind: 'object'; map: GoObject; key: string | undefined };

class Reader {
  pos = 0;
  constructor(private readonly b: Buffer) {}

  fail(what: string): never {
    throw new GoJsonError(`${what} at offset ${this.pos}`);
  }

  skipSpace(): void {
    while (this.pos < this.b.length && isSpace(this.b[this.pos]!)) this.pos++;
  }

  /** One value, iteratively (a deep document cannot overflow the stack); pauses (yields) after every STEP_BYTES of input. */
  *value(): Generator<void, GoValue> {
    const stack: Frame[] = [];
    let mark = this.pos;
    for (;;) {
      if (this.pos - mark > STEP_BYTES) {
        mark = this.pos;
        yield;
      }
      this.skipSpace();
      let v: GoValue;
      const c = this.b[this.pos];
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= MAX_DEPTH) this.fail('exceeded max depth');
        this.pos++;
        this.skipSpace();
        if (c === 0x7b) {
          const frame: Frame = { kind: 'object', map: new Map(), key: undefined };
          if (this.b[this.pos] === 0x7d) {
            this.pos++;
            v = frame.map;
          } else {
            frame.key = this.key();
            stack.push(frame);
            continue;
          }
        } else {
          if (this.b[this.pos] === 0x5d) {
            this.pos++;
            v = [];
          } else {
            stack.push({ kind: 'array', items: [] });
            continue;
          }
        }
      } else v = this.scalar();
      // Hand the value to the open containers, closing those that end here.
      for (;;) {
        const top = stack[stack.length - 1];
        if (!top) return v;
        if (top.kind === 'array') top.items.push(v);
        else {
          // The last of repeated keys wins, and sits where it was last seen (decoders into structs go in that order).
          top.map.delete(top.key!);
          top.map.set(top.key!, v);
        }
        this.skipSpace();
        const next = this.b[this.pos++];
        if (next === 0x2c /* , */) {
          if (top.kind === 'object') top.key = this.key();
          break;
        }
        if ((top.kind === 'array' && next === 0x5d) || (top.kind === 'object' && next === 0x7d)) {
          stack.pop();
          v = top.kind === 'array' ? top.items : top.map;
          continue;
        }
        this.pos--;
        this.fail(top.kind === 'array' ? "expected ',' or ']'" : "expected ',' or '}'");
      }
    }
  }

  private key(): string {
    this.skipSpace();
    if (this.b[this.pos] !== 0x22) this.fail('expected a string key');
    const k = this.string();
    this.skipSpace();
    if (this.b[this.pos++] !== 0x3a) {
      this.pos--;
      this.fail("expected ':'");
    }
    return k;
  }

  private scalar(): GoValue {
    const c = this.b[this.pos];
    if (c === 0x22) return this.string();
    if (c === 0x2d || (c !== undefined && isDigit(c))) return this.number();
    const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : c === 0x6e ? 'null' : undefined;
    if (word !== undefined && this.b.toString('latin1', this.pos, this.pos + word.length) === word) {
      this.pos += word.length;
      return word === 'null' ? null : word === 'true';
    }
    return this.fail(c === undefined ? 'unexpected end of JSON input' : 'invalid character');
  }

  private number(): GoNumber {
    const b = this.b;
    const start = this.pos;
    if (b[this.pos] === 0x2d) this.pos++;
    if (b[this.pos] === 0x30) this.pos++;
    else if (b[this.pos] !== undefined && b[this.pos]! >= 0x31 && b[this.pos]! <= 0x39) while (isDigit(b[this.pos] ?? 0)) this.pos++;
    else this.fail('invalid number');
    if (b[this.pos] === 0x2e) {
      this.pos++;
      if (!isDigit(b[this.pos] ?? 0)) this.fail('invalid number');
      while (isDigit(b[this.pos] ?? 0)) this.pos++;
    }
    if (b[this.pos] === 0x65 || b[this.pos] === 0x45) {
      this.pos++;
      if (b[this.pos] === 0x2b || b[this.pos] === 0x2d) this.pos++;
      if (!isDigit(b[this.pos] ?? 0)) this.fail('invalid number');
      while (isDigit(b[this.pos] ?? 0)) this.pos++;
    }
    return new GoNumber(b.toString('latin1', start, this.pos));
  }

  private hex4(at: number): number {
    if (at + 4 > this.b.length) return -1;
    const s = this.b.toString('latin1', at, at + 4);
    return /^[0-9a-fA-F]{4}$/.test(s) ? parseInt(s, 16) : -1;
  }

  /** A string, decoded as Go's unquote does. */
  private string(): string {
    const b = this.b;
    this.pos++; // the opening quote
    let out = '';
    let run = this.pos; // start of the bytes not yet copied to `out`
    for (;;) {
      const c = b[this.pos];
      if (c === undefined) this.fail('unexpected end of JSON input');
      if (c === 0x22) {
        out += b.toString('utf8', run, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail('invalid character in string literal');
      if (c < 0x80 && c !== 0x5c) {
        this.pos++;
        continue;
      }
      if (c >= 0x80) {
        const n = utf8Length(b, this.pos);
        if (n > 0) {
          this.pos += n;
          continue;
        }
        out += b.toString('utf8', run, this.pos) + '\ufffd';
        run = ++this.pos;
        continue;
      }
      // A backslash escape.
      out += b.toString('utf8', run, this.pos);
      const e = b[this.pos + 1];
      const simple = e === undefined ? undefined : UNESCAPE[e];
      if (simple !== undefined) {
        out += simple;
        this.pos += 2;
      } else if (e === 0x75) {
        let r = this.hex4(this.pos + 2);
        if (r < 0) this.fail('invalid escape');
        this.pos += 6;
        if (r >= 0xd800 && r < 0xe000) {
          // A pair only when a high surrogate is followed by an escaped low one; else U+FFFD.
          const r2 = b[this.pos] === 0x5c && b[this.pos + 1] === 0x75 ? this.hex4(this.pos + 2) : -1;
          if (r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000) {
            out += String.fromCharCode(r, r2);
            this.pos += 6;
          } else r = 0xfffd;
        }
        if (r < 0xd800 || r >= 0xe000) out += String.fromCharCode(r);
      } else this.fail('invalid escape');
      run = this.pos;
    }
  }
}

export interface ParseOptions {
  /** json.Unmarshal refuses anything after the value; json.Decoder.Decode never looks at it. */
  readonly trailing: 'refuse' | 'ignore';
}

function* parseSteps(bytes: Buffer, opts: ParseOptions): Generator<void, GoValue> {
  const r = new Reader(bytes);
  const v = yield* r.value();
  if (opts.trailing === 'refuse') {
    r.skipSpace();
    if (r.pos < bytes.length) r.fail('invalid character after top-level value');
  }
  return v;
}

export function parseGoJson(bytes: Buffer, opts: ParseOptions = { trailing: 'refuse' }): GoValue {
  return run(parseSteps(bytes, opts));
}

/** parseGoJson for large or hostile documents: the event loop turns every 256 KiB of input. */
export function parseGoJsonAsync(bytes: Buffer, opts: ParseOptions = { trailing: 'refuse' }): Promise<GoValue> {
  return runAsync(parseSteps(bytes, opts));
}

/** Go folds a key before matching it to a struct field: ASCII case, and the two runes that fold to ASCII letters (ſ, K). */
export const foldKey = (k: string): string => k.replace(/[a-z]/g, (c) => c.toUpperCase()).replace(/\u017f/g, 'S').replace(/\u212a/g, 'K');

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** A string as Go's json.Encoder writes it with SetEscapeHTML(false) (the string has no lone surrogates: the decoder replaced them). */
export function encodeGoString(s: string): string {
  // eslint-disable-next-line no-control-regex
  const special = /["\\\u0000-\u001f\u2028\u2029]/g;
  if (!special.test(s)) return `"${s}"`;
  return `"${s.replace(special, (ch) => ESCAPES[ch] ?? `\\u00${ch.charCodeAt(0).toString(16).padStart(2, '0')}`)}"`;
}

/** Go compares strings by their UTF-8 bytes, which is code point order; JS strings compare by UTF-16 units. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates stand for code points above U+FFFF: above U+E000..U+FFFF.
      x = x < 0xe000 ? x + 0x2000 : x - 0x800;
      y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

function* hashSteps(value: GoValue, hash: Hash): Generator<void, void> {
  let out = '';
  let flushed = 0;
  const emit = (s: string): void => {
    out += s;
    if (out.length > 65536) {
      hash.update(out, 'utf8');
      flushed += out.length;
      out = '';
    }
  };
  // Work items: text to write, then a value to walk (CLOSE: none); popped in order, so pushed in reverse.
  const CLOSE = Symbol('close');
  const values: (GoValue | typeof CLOSE)[] = [value];
  const texts: string[] = [''];
  while (values.length > 0) {
    if (flushed > STEP_BYTES) {
      flushed = 0;
      yield;
    }
    const v = values.pop()!;
    emit(texts.pop()!);
    if (v === CLOSE) continue;
    if (v === null) emit('null');
    else if (typeof v === 'boolean') emit(v ? 'true' : 'false');
    else if (typeof v === 'string') emit(encodeGoString(v));
    else if (v instanceof GoNumber) emit(v.literal);
    else if (Array.isArray(v)) {
      emit('[');
      values.push(CLOSE);
      texts.push(']');
      for (let i = v.length - 1; i >= 0; i--) {
        values.push(v[i]!);
        texts.push(i > 0 ? ',' : '');
      }
    } else {
      emit('{');
      values.push(CLOSE);
      texts.push('}');
      const keys = [...v.keys()].sort(compareCodePoints);
      for (let i = keys.length - 1; i >= 0; i--) {
        values.push(v.get(keys[i]!)!);
        texts.push(`${i > 0 ? ',' : ''}${encodeGoString(keys[i]!)}:`);
      }
    }
  }
  if (out !== '') hash.update(out, 'utf8');
}

/** Feeds `hash` what OPA's bundle hasher writes for a parsed document (v1/bundle/hash.go, walk); the event loop turns every 256 KiB of output. */
export function hashGoJsonAsync(value: GoValue, hash: Hash): Promise<void> {
  return runAsync(hashSteps(value, hash));
}
