// RateLimitResponse -> protobuf bytes, written straight into a buffer. protobufjs's generic path
// (fromObject into message objects, then an encoder that queues one operation object per field)
// was the largest piece of a ShouldRateLimit's own work after the HTTP/2 calls; this writes the
// same bytes (test/unit/server/rls-response-wire.test.ts compares them with protobufjs's on every
// shape the adapter sends) with no object beyond the output buffer.
//
// Field numbers and enum values come from the loaded descriptors. A field is written when its
// property is present (not undefined or null), even at its default value, as protobufjs does.
// Anything this writer does not know - a property, an enum name, a number outside its field's
// range, a string that is not well-formed UTF-16 (protobufjs encodes a lone surrogate its own
// way) - hands the whole object to the generic encoder, so nothing is ever dropped or changed.
import { envoyReflection, fieldIds } from '../envoy/protos.js';
import { utf8Length, writeUtf8 } from '../lib/utf8.js';

const WIRE_VARINT = 0;
const WIRE_LEN = 2;

/** A shape this writer does not cover: the generic encoder takes over. */
class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported('shape not supported by the fast RateLimitResponse writer');

type Ids = Readonly<Record<string, number>>;

interface Schema {
  readonly response: Ids;
  readonly status: Ids;
  readonly limit: Ids;
  readonly duration: Ids;
  readonly header: Ids;
  readonly codes: Readonly<Record<string, number>>;
  readonly units: Readonly<Record<string, number>>;
  readonly known: Readonly<Record<'response' | 'status' | 'limit' | 'duration' | 'header', ReadonlySet<string>>>;
}

function load(): Schema {
  const r = envoyReflection();
  const t = (name: string): Ids => fieldIds(r.lookupType(name));
  const names = (...n: string[]): ReadonlySet<string> => new Set(n);
  return {
    response: t('envoy.service.ratelimit.v3.RateLimitResponse'),
    status: t('envoy.service.ratelimit.v3.RateLimitResponse.DescriptorStatus'),
    limit: t('envoy.service.ratelimit.v3.RateLimitResponse.RateLimit'),
    duration: t('google.protobuf.Duration'),
    header: t('envoy.config.core.v3.HeaderValue'),
    codes: r.lookupEnum('envoy.service.ratelimit.v3.RateLimitResponse.Code').values,
    units: r.lookupEnum('envoy.service.ratelimit.v3.RateLimitResponse.RateLimit.Unit').values,
    // What toRateLimitResponse sends; request_headers_to_add, raw_body, dynamic_metadata, quota
    // and raw_value are never sent by us: the generic path.
    known: {
      response: names('overall_code', 'statuses', 'response_headers_to_add'),
      status: names('code', 'current_limit', 'limit_remaining', 'duration_until_reset'),
      limit: names('requests_per_unit', 'unit', 'name'),
      duration: names('seconds', 'nanos'),
      header: names('key', 'value'),
    },
  };
}

let schema: Schema | undefined;

// --- values ------------------------------------------------------------------------------------

type Obj = Readonly<Record<string, unknown>>;
const present = (v: unknown): boolean => v !== undefined && v !== null;

/** `v` is a plain object whose present properties are all in `known`. */
function only(v: unknown, known: ReadonlySet<string>): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw UNSUPPORTED;
  const o = v as Obj;
  for (const k in o) if (Object.hasOwn(o, k) && present(o[k]) && !known.has(k)) throw UNSUPPORTED;
  return o;
}

function list(v: unknown): readonly unknown[] {
  if (!Array.isArray(v)) throw UNSUPPORTED;
  return v;
}

/** An integer in [0, max]: the values whose protobufjs encoding is a plain unsigned varint. */
function uint(v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw UNSUPPORTED;
  return v;
}

const UINT32 = 0xffffffff;
const INT32 = 0x7fffffff;

/** An enum given by name or number (non-negative: a negative one takes ten bytes, the generic path writes it). */
function enumValue(v: unknown, values: Readonly<Record<string, number>>): number {
  if (typeof v === 'string' && Object.hasOwn(values, v)) return values[v]!;
  return uint(v, INT32);
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function str(v: unknown): string {
  if (typeof v !== 'string' || LONE_SURROGATE.test(v)) throw UNSUPPORTED;
  return v;
}

// --- output ------------------------------------------------------------------------------------

/**
 * One reused scratch buffer: a nested message's length is written after its fields, in one byte
 * reserved before them (the fields move when the length needs more). The result is copied out.
 */
class Out {
  buf = Buffer.allocUnsafe(1024);
  pos = 0;

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  private raw(v: number): void {
    this.room(10);
    // v is a non-negative integer below 2^53 here: >>> and << would cut it to 32 bits.
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }

  varint(id: number, v: number): void {
    this.raw((id << 3) | WIRE_VARINT);
    this.raw(v);
  }

  string(id: number, v: string): void {
    this.raw((id << 3) | WIRE_LEN);
    const n = utf8Length(v);
    this.raw(n);
    this.room(n);
    this.pos += writeUtf8(this.buf, this.pos, v);
  }

  /** Starts field `id` as a nested message; returns where its contents start, for end(). */
  begin(id: number): number {
    this.raw((id << 3) | WIRE_LEN);
    this.room(1);
    return ++this.pos;
  }

  end(start: number): void {
    const n = this.pos - start;
    if (n < 0x80) {
      this.buf[start - 1] = n;
      return;
    }
    let extra = 0;
    for (let x = n; x >= 0x80; x = Math.floor(x / 0x80)) extra++;
    this.room(extra);
    this.buf.copy(this.buf, start + extra, start, this.pos);
    const end = this.pos + extra;
    this.pos = start - 1;
    this.raw(n);
    this.pos = end;
  }
}

// --- the messages (fields in field-number order, as protobufjs writes them) ---------------------

function writeResponse(s: Schema, w: Out, v: unknown): void {
  const o = only(v, s.known.response);
  const f = s.response;
  if (present(o.overall_code)) w.varint(f.overall_code!, enumValue(o.overall_code, s.codes));
  if (present(o.statuses)) for (const st of list(o.statuses)) writeStatus(s, w, f.statuses!, st);
  if (present(o.response_headers_to_add)) {
    for (const h of list(o.response_headers_to_add)) {
      const kv = only(h, s.known.header);
      const at = w.begin(f.response_headers_to_add!);
      if (present(kv.key)) w.string(s.header.key!, str(kv.key));
      if (present(kv.value)) w.string(s.header.value!, str(kv.value));
      w.end(at);
    }
  }
}

function writeStatus(s: Schema, w: Out, id: number, v: unknown): void {
  const o = only(v, s.known.status);
  const f = s.status;
  const at = w.begin(id);
  if (present(o.code)) w.varint(f.code!, enumValue(o.code, s.codes));
  if (present(o.current_limit)) {
    const l = only(o.current_limit, s.known.limit);
    const lat = w.begin(f.current_limit!);
    if (present(l.requests_per_unit)) w.varint(s.limit.requests_per_unit!, uint(l.requests_per_unit, UINT32));
    if (present(l.unit)) w.varint(s.limit.unit!, enumValue(l.unit, s.units));
    if (present(l.name)) w.string(s.limit.name!, str(l.name));
    w.end(lat);
  }
  if (present(o.limit_remaining)) w.varint(f.limit_remaining!, uint(o.limit_remaining, UINT32));
  if (present(o.duration_until_reset)) {
    const d = only(o.duration_until_reset, s.known.duration);
    const dat = w.begin(f.duration_until_reset!);
    if (present(d.seconds)) w.varint(s.duration.seconds!, uint(d.seconds, Number.MAX_SAFE_INTEGER));
    if (present(d.nanos)) w.varint(s.duration.nanos!, uint(d.nanos, INT32));
    w.end(dat);
  }
  w.end(at);
}

/**
 * A serializer for RateLimitResponse: the bytes protobufjs would write, in a buffer of their own;
 * any shape it does not cover goes to `generic` (proto-loader's responseSerialize).
 */
export function rateLimitResponseWriter(generic: (value: unknown) => Buffer): (value: unknown) => Buffer {
  schema ??= load();
  const s = schema;
  const out = new Out();
  return (value) => {
    out.pos = 0;
    try {
      writeResponse(s, out, value);
    } catch (err) {
      if (err instanceof Unsupported) return generic(value);
      throw err;
    }
    return Buffer.from(out.buf.subarray(0, out.pos));
  };
}
