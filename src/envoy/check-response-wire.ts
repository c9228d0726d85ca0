// CheckResponse -> protobuf bytes, written straight into one buffer. protobufjs's generic path
// (fromObject, then an encoder that queues one operation object per field, then a copy into the
// gRPC frame) allocated about 9 KB per allowed Check, a tenth of all a Check allocated; this
// writes the same bytes (the test compares them with protobufjs's on every shape we send) with
// no objects beyond the output buffer and one array of message lengths. One difference, kept on
// purpose: a lone surrogate (a policy's string need not be well-formed UTF-16) is written as
// U+FFFD, as Buffer#write writes it, where protobufjs, in a string under 40 units, writes three
// bytes that are not UTF-8 - in a proto3 string, which a strict parser refuses.
//
// Field numbers and enum values come from the loaded descriptors, never typed in here. The
// writer follows protobufjs's presence rule exactly: a field is written when its property is
// present (not undefined or null), even at its default value. A property this writer does not
// know makes it hand the object to the generic encoder, so nothing is ever dropped.
import { envoyReflection, fieldIds } from './protos.js';
import { utf8Length, writeUtf8 } from '../lib/utf8.js';

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;

/** An object with a property this writer does not know: the generic encoder takes over. */
class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported('shape not supported by the fast CheckResponse writer');

type Fields = Readonly<Record<string, number>>;

interface Schema {
  readonly response: Fields;
  readonly status: Fields;
  readonly denied: Fields;
  readonly httpStatus: Fields;
  readonly ok: Fields;
  readonly option: Fields;
  readonly header: Fields;
  readonly boolValue: Fields;
  readonly query: Fields;
  readonly struct: Fields;
  readonly value: Fields;
  readonly list: Fields;
  readonly appendActions: Readonly<Record<string, number>>;
  readonly nullValues: Readonly<Record<string, number>>;
  readonly statusCodes: Readonly<Record<string, number>>;
  /** The properties the fast path writes, per message (http_response and kind: proto-loader's oneof names). */
  readonly known: Readonly<Record<'response' | 'status' | 'denied' | 'httpStatus' | 'ok' | 'option' | 'header' | 'boolValue' | 'query' | 'struct' | 'value' | 'list', ReadonlySet<string>>>;
}

let schema: Schema | undefined;

function load(): Schema {
  const r = envoyReflection();
  const t = (name: string): Fields => fieldIds(r.lookupType(name));
  const names = (...n: string[]): ReadonlySet<string> => new Set(n);
  return {
    known: {
      response: names('status', 'denied_response', 'ok_response', 'dynamic_metadata', 'http_response'),
      status: names('code', 'message'),
      denied: names('status', 'headers', 'body'),
      httpStatus: names('code'),
      // dynamic_metadata inside ok_response is deprecated and never sent by us: the generic path.
      ok: names('headers', 'headers_to_remove', 'response_headers_to_add', 'query_parameters_to_set', 'query_parameters_to_remove'),
      option: names('header', 'append', 'append_action', 'keep_empty_value'),
      // raw_value (bytes) is never sent by us: the generic path.
      header: names('key', 'value'),
      boolValue: names('value'),
      query: names('key', 'value'),
      struct: names('fields'),
      value: names('nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue', 'kind'),
      list: names('values'),
    },
    response: t('envoy.service.auth.v3.CheckResponse'),
    status: t('google.rpc.Status'),
    denied: t('envoy.service.auth.v3.DeniedHttpResponse'),
    httpStatus: t('envoy.type.v3.HttpStatus'),
    ok: t('envoy.service.auth.v3.OkHttpResponse'),
    option: t('envoy.config.core.v3.HeaderValueOption'),
    header: t('envoy.config.core.v3.HeaderValue'),
    boolValue: t('google.protobuf.BoolValue'),
    query: t('envoy.config.core.v3.QueryParameter'),
    struct: t('google.protobuf.Struct'),
    value: t('google.protobuf.Value'),
    list: t('google.protobuf.ListValue'),
    appendActions: r.lookupEnum('envoy.config.core.v3.HeaderValueOption.HeaderAppendAction').values,
    nullValues: r.lookupEnum('google.protobuf.NullValue').values,
    statusCodes: r.lookupEnum('envoy.type.v3.StatusCode').values,
  };
}

// --- sizes -------------------------------------------------------------------------------------

function varintSize(v: number): number {
  // int32/enum: negative values take ten bytes, as protobufjs (and every protobuf) writes them.
  if (v < 0) return 10;
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

const tagSize = (id: number): number => varintSize(id << 3);

function int32(v: unknown): number {
  if (typeof v !== 'number') throw UNSUPPORTED;
  return v | 0;
}

function enumValue(v: unknown, values: Readonly<Record<string, number>>): number {
  if (typeof v === 'number') return v | 0;
  if (typeof v === 'string' && Object.hasOwn(values, v)) return values[v]!;
  throw UNSUPPORTED;
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw UNSUPPORTED;
  return v;
}

/**
 * Pass 1 (Sizer) walks the message and records every nested message's length in `lens`, in
 * pre-order; pass 2 (Writer) walks it again in the same order and takes the lengths from there.
 * Both passes run the same code (the write* functions below), so they cannot disagree.
 */
interface Walk {
  /** A nested message starts (its fields follow, then end()). */
  begin(id: number): void;
  end(): void;
  varint(id: number, v: number): void;
  string(id: number, v: string): void;
  bool(id: number, v: boolean): void;
  double(id: number, v: number): void;
}

class Sizer implements Walk {
  size = 0;
  /** Nested messages' lengths in pre-order: the first `count` entries (the arrays are reused). */
  readonly lens: number[] = [];
  count = 0;
  /** Per open message: its index in `lens`, the size before it, its field id. */
  private readonly open: number[] = [];
  private depth = 0;
  reset(): void {
    this.size = 0;
    this.count = 0;
    this.depth = 0;
  }
  begin(id: number): void {
    const o = this.depth;
    this.open[o] = this.count;
    this.open[o + 1] = this.size;
    this.open[o + 2] = id;
    this.depth = o + 3;
    this.lens[this.count++] = 0;
  }
  end(): void {
    const o = (this.depth -= 3);
    const n = this.size - this.open[o + 1]!;
    this.lens[this.open[o]!] = n;
    this.size += tagSize(this.open[o + 2]!) + varintSize(n);
  }
  varint(id: number, v: number): void {
    this.size += tagSize(id) + varintSize(v);
  }
  string(id: number, v: string): void {
    const n = utf8Length(v);
    this.size += tagSize(id) + varintSize(n) + n;
  }
  bool(id: number): void {
    this.size += tagSize(id) + 1;
  }
  double(id: number): void {
    this.size += tagSize(id) + 8;
  }
}

class Writer implements Walk {
  private next = 0;
  pos = 0;
  constructor(
    readonly buf: Buffer,
    private readonly lens: readonly number[],
  ) {}
  private raw(v: number): void {
    if (v < 0) {
      // Ten-byte two's complement, as protobuf writes a negative int32.
      let lo = v >>> 0;
      let hi = 0xffffffff;
      for (let i = 0; i < 9; i++) {
        this.buf[this.pos++] = (lo & 0x7f) | 0x80;
        lo = ((lo >>> 7) | (hi << 25)) >>> 0;
        hi >>>= 7;
      }
      this.buf[this.pos++] = lo & 0x01;
      return;
    }
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }
  begin(id: number): void {
    this.raw((id << 3) | WIRE_LEN);
    this.raw(this.lens[this.next++]!);
  }
  end(): void {}
  varint(id: number, v: number): void {
    this.raw((id << 3) | WIRE_VARINT);
    this.raw(v);
  }
  string(id: number, v: string): void {
    this.raw((id << 3) | WIRE_LEN);
    // At most 42 UTF-16 units encode to at most 126 bytes: a one-byte length, filled in after.
    if (v.length <= 42) {
      const lenAt = this.pos++;
      const n = writeUtf8(this.buf, this.pos, v);
      this.buf[lenAt] = n;
      this.pos += n;
    } else {
      this.raw(Buffer.byteLength(v, 'utf8'));
      this.pos += this.buf.write(v, this.pos, 'utf8');
    }
  }
  bool(id: number, v: boolean): void {
    this.raw((id << 3) | WIRE_VARINT);
    this.buf[this.pos++] = v ? 1 : 0;
  }
  double(id: number, v: number): void {
    this.raw((id << 3) | WIRE_I64);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }
}

// --- the messages ------------------------------------------------------------------------------

type Obj = Readonly<Record<string, unknown>>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const present = (v: unknown): boolean => v !== undefined && v !== null;

/** `v` is an object whose present properties are all in `known` (else the generic encoder takes over). */
function only(v: unknown, known: ReadonlySet<string>): Obj {
  if (!isObj(v)) throw UNSUPPORTED;
  for (const k in v) if (Object.hasOwn(v, k) && present(v[k]) && !known.has(k)) throw UNSUPPORTED;
  return v;
}

function list(v: unknown): readonly unknown[] {
  if (!Array.isArray(v)) throw UNSUPPORTED;
  return v;
}

// Each write* names its fields in field-number order, the order protobufjs writes them in.

function writeResponse(s: Schema, w: Walk, v: unknown): void {
  const o = only(v, s.known.response);
  const f = s.response;
  if (present(o.status)) {
    const st = only(o.status, s.known.status);
    w.begin(f.status!);
    if (present(st.code)) w.varint(s.status.code!, int32(st.code));
    if (present(st.message)) w.string(s.status.message!, str(st.message));
    w.end();
  }
  if (present(o.denied_response)) {
    w.begin(f.denied_response!);
    writeDenied(s, w, o.denied_response);
    w.end();
  }
  if (present(o.ok_response)) {
    w.begin(f.ok_response!);
    writeOk(s, w, o.ok_response);
    w.end();
  }
  if (present(o.dynamic_metadata)) {
    w.begin(f.dynamic_metadata!);
    writeStruct(s, w, o.dynamic_metadata);
    w.end();
  }
}

function writeDenied(s: Schema, w: Walk, v: unknown): void {
  const o = only(v, s.known.denied);
  if (present(o.status)) {
    const code = only(o.status, s.known.httpStatus).code;
    w.begin(s.denied.status!);
    if (present(code)) w.varint(s.httpStatus.code!, enumValue(code, s.statusCodes));
    w.end();
  }
  if (present(o.headers)) writeOptions(s, w, s.denied.headers!, o.headers);
  if (present(o.body)) w.string(s.denied.body!, str(o.body));
}

function writeOk(s: Schema, w: Walk, v: unknown): void {
  const o = only(v, s.known.ok);
  const f = s.ok;
  if (present(o.headers)) writeOptions(s, w, f.headers!, o.headers);
  if (present(o.headers_to_remove)) for (const h of list(o.headers_to_remove)) w.string(f.headers_to_remove!, str(h));
  if (present(o.response_headers_to_add)) writeOptions(s, w, f.response_headers_to_add!, o.response_headers_to_add);
  if (present(o.query_parameters_to_set)) for (const q of list(o.query_parameters_to_set)) writeKeyValue(w, f.query_parameters_to_set!, q, s.known.query, s.query);
  if (present(o.query_parameters_to_remove)) for (const q of list(o.query_parameters_to_remove)) w.string(f.query_parameters_to_remove!, str(q));
}

/** A message of two strings, key and value (HeaderValue, QueryParameter), as field `id`. */
function writeKeyValue(w: Walk, id: number, v: unknown, known: ReadonlySet<string>, fields: Fields): void {
  const o = only(v, known);
  w.begin(id);
  if (present(o.key)) w.string(fields.key!, str(o.key));
  if (present(o.value)) w.string(fields.value!, str(o.value));
  w.end();
}

function writeOptions(s: Schema, w: Walk, id: number, v: unknown): void {
  const f = s.option;
  for (const item of list(v)) {
    const o = only(item, s.known.option);
    w.begin(id);
    if (present(o.header)) writeKeyValue(w, f.header!, o.header, s.known.header, s.header);
    if (present(o.append)) {
      const b = only(o.append, s.known.boolValue).value;
      w.begin(f.append!);
      if (present(b)) w.bool(s.boolValue.value!, b === true);
      w.end();
    }
    if (present(o.append_action)) w.varint(f.append_action!, enumValue(o.append_action, s.appendActions));
    if (present(o.keep_empty_value)) w.bool(f.keep_empty_value!, o.keep_empty_value === true);
    w.end();
  }
}

function writeStruct(s: Schema, w: Walk, v: unknown): void {
  const fields = only(v, s.known.struct).fields;
  if (!present(fields)) return;
  if (!isObj(fields)) throw UNSUPPORTED;
  // Map entries in Object.keys order, as protobufjs iterates them (for-in's order of own keys; no array).
  for (const k in fields) {
    if (!Object.hasOwn(fields, k)) continue;
    const val = fields[k];
    w.begin(s.struct.fields!);
    w.string(1, k);
    if (present(val)) {
      w.begin(2);
      writeValue(s, w, val);
      w.end();
    }
    w.end();
  }
}

function writeValue(s: Schema, w: Walk, v: unknown): void {
  const f = s.value;
  const o = only(v, s.known.value);
  if (present(o.nullValue)) w.varint(f.nullValue!, enumValue(o.nullValue, s.nullValues));
  if (present(o.numberValue)) {
    if (typeof o.numberValue !== 'number') throw UNSUPPORTED;
    w.double(f.numberValue!, o.numberValue);
  }
  if (present(o.stringValue)) w.string(f.stringValue!, str(o.stringValue));
  if (present(o.boolValue)) w.bool(f.boolValue!, o.boolValue === true);
  if (present(o.structValue)) {
    w.begin(f.structValue!);
    writeStruct(s, w, o.structValue);
    w.end();
  }
  if (present(o.listValue)) {
    const values = only(o.listValue, s.known.list).values;
    w.begin(f.listValue!);
    if (present(values)) {
      for (const x of list(values)) {
        w.begin(s.list.values!);
        writeValue(s, w, x);
        w.end();
      }
    }
    w.end();
  }
}

/**
 * A serializer for CheckResponse: the bytes protobufjs would write, in one buffer; any shape it
 * does not cover (a field we never send, such as raw_value) goes to `generic`.
 */
export function checkResponseWriter(generic: (value: unknown) => Buffer): (value: unknown) => Buffer {
  schema ??= load();
  const s = schema;
  // One sizer per writer, reset per message: the walk is synchronous and calls nothing of anyone's.
  const sizer = new Sizer();
  return (value) => {
    sizer.reset();
    try {
      writeResponse(s, sizer, value);
    } catch (err) {
      if (err instanceof Unsupported) return generic(value);
      throw err;
    }
    const w = new Writer(Buffer.allocUnsafe(sizer.size), sizer.lens);
    writeResponse(s, w, value);
    return w.buf;
  };
}
