// A binary protobuf message -> its canonical proto3 JSON, as Go's protojson.Marshal writes it
// (then read back as JSON, as opa-envoy-plugin does with gRPC request bodies). Driven by a
// FileDescriptorSet the operator supplies; every message type is planned once at load.
// Decoding follows Go's proto.Unmarshal: last value wins for scalars, a repeated singular message
// is merged, a field with an unexpected wire type is an unknown field, proto3 strings must be
// UTF-8. Encoding follows protojson: JSON names, only populated fields, 64-bit integers as
// strings, enums by name, bytes as base64, the well-known types in their JSON forms.
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { setOwn } from '../lib/records.js';

/** A message that cannot be decoded or has no JSON form (Go's Unmarshal/Marshal error). */
export class ProtoJsonError extends Error {}

/** Go's error for bytes that are not a message (truncated, overlong, a bad tag). */
const malformed = (): ProtoJsonError => new ProtoJsonError('cannot parse invalid wire-format data');

// FieldDescriptorProto.Type
const T = { DOUBLE: 1, FLOAT: 2, INT64: 3, UINT64: 4, INT32: 5, FIXED64: 6, FIXED32: 7, BOOL: 8, STRING: 9, GROUP: 10, MESSAGE: 11, BYTES: 12, UINT32: 13, ENUM: 14, SFIXED32: 15, SFIXED64: 16, SINT32: 17, SINT64: 18 } as const;
// Groups (proto2, type 10) are not decoded: read as unknown fields.
const WIRE_OF: Record<number, number> = { 1: 1, 2: 5, 3: 0, 4: 0, 5: 0, 6: 1, 7: 5, 8: 0, 9: 2, 10: -1, 11: 2, 12: 2, 13: 0, 14: 0, 15: 5, 16: 1, 17: 0, 18: 0 };
const SCALAR_NUMERIC = new Set<number>([1, 2, 3, 4, 5, 6, 7, 8, 13, 14, 15, 16, 17, 18]);
const MAX_DEPTH = 100;

interface FieldPlan {
  readonly number: number;
  readonly json: string;
  readonly type: number;
  readonly repeated: boolean;
  /** Explicit presence: oneof members, proto3 optional, every singular field outside proto3. */
  readonly explicit: boolean;
  readonly oneof?: number;
  readonly utf8: boolean;
  /** package.Message.field, for errors. */
  readonly fullName: string;
  /** Message and enum types by full name (leading dot). */
  readonly typeName?: string;
  /** A map<K, V> field: its entry's key and value fields. */
  readonly entry?: { readonly key: FieldPlan; readonly value: FieldPlan };
}

interface MessagePlan {
  readonly name: string;
  readonly byNumber: ReadonlyMap<number, FieldPlan>;
  readonly fields: readonly FieldPlan[];
}

interface MethodPlan {
  readonly input: string;
  readonly clientStreaming: boolean;
}

/** A decoded message: field number -> value (scalar, Decoded, list, or map of JSON key -> value). */
interface Decoded {
  readonly plan: MessagePlan;
  readonly values: Map<number, unknown>;
  readonly oneofs: Map<number, number>;
}

type Value = number | bigint | boolean | string | Uint8Array | Decoded;

interface RawField {
  name?: string;
  number?: number;
  label?: number;
  type?: number;
  typeName?: string;
  jsonName?: string;
  oneofIndex?: number;
  proto3Optional?: boolean;
}
interface RawMessage {
  name?: string;
  field?: RawField[];
  nestedType?: RawMessage[];
  enumType?: RawEnum[];
  options?: { mapEntry?: boolean };
}
interface RawEnum {
  name?: string;
  value?: { name?: string; number?: number }[];
}
interface RawFile {
  name?: string;
  package?: string;
  syntax?: string;
  messageType?: RawMessage[];
  enumType?: RawEnum[];
  service?: { name?: string; method?: { name?: string; inputType?: string; clientStreaming?: boolean }[] }[];
}

/** Go's strs.JSONCamelCase (the default JSON name, and FieldMask paths). */
function camel(s: string): string {
  let out = '';
  let under = false;
  for (const c of s) {
    if (c !== '_') out += under && c >= 'a' && c <= 'z' ? c.toUpperCase() : c;
    under = c === '_';
  }
  return out;
}

function snake(s: string): string {
  let out = '';
  for (const c of s) out += c >= 'A' && c <= 'Z' ? `_${c.toLowerCase()}` : c;
  return out;
}

/** The messages, enums and services of a FileDescriptorSet (protoc --include_imports --descriptor_set_out). */
export class DescriptorSet {
  private readonly messages = new Map<string, MessagePlan>();
  private readonly enums = new Map<string, ReadonlyMap<number, string>>();
  private readonly services = new Map<string, ReadonlyMap<string, MethodPlan>>();

  constructor(bytes: Uint8Array) {
    let files: RawFile[];
    try {
      const set = descriptor.FileDescriptorSet.decode(bytes);
      files = (descriptor.FileDescriptorSet.toObject(set, { defaults: false }) as { file?: RawFile[] }).file ?? [];
    } catch (err) {
      throw new ProtoJsonError(`not a FileDescriptorSet: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (files.length === 0) throw new ProtoJsonError('the descriptor set holds no files');
    const raw = new Map<string, { msg: RawMessage; syntax: string }>();
    for (const f of files) {
      const scope = f.package ? `.${f.package}` : '';
      const syntax = f.syntax ?? 'proto2';
      const walk = (prefix: string, msgs: RawMessage[] | undefined, enums: RawEnum[] | undefined): void => {
        for (const e of enums ?? []) this.enums.set(`${prefix}.${e.name}`, new Map((e.value ?? []).map((v) => [v.number ?? 0, v.name ?? ''])));
        for (const m of msgs ?? []) {
          const name = `${prefix}.${m.name}`;
          raw.set(name, { msg: m, syntax });
          walk(name, m.nestedType, m.enumType);
        }
      };
      walk(scope, f.messageType, f.enumType);
      for (const s of f.service ?? []) {
        this.services.set(`${f.package ? `${f.package}.` : ''}${s.name}`, new Map((s.method ?? []).map((m) => [m.name ?? '', { input: m.inputType ?? '', clientStreaming: m.clientStreaming === true }])));
      }
    }
    for (const [name, { msg, syntax }] of raw) {
      const fields = (msg.field ?? []).map((f) => this.planField(name, f, syntax, raw));
      this.messages.set(name, { name, fields, byNumber: new Map(fields.map((f) => [f.number, f])) });
    }
    for (const [svc, methods] of this.services) {
      for (const [m, plan] of methods) if (!this.messages.has(plan.input)) throw new ProtoJsonError(`${svc}.${m}: input type ${plan.input} is not in the set (use --include_imports)`);
    }
    for (const m of this.messages.values()) {
      for (const f of m.fields) if (f.typeName && !this.messages.has(f.typeName) && !this.enums.has(f.typeName)) throw new ProtoJsonError(`${m.name}: type ${f.typeName} is not in the set (use --include_imports)`);
    }
  }

  private planField(owner: string, f: RawField, syntax: string, raw: ReadonlyMap<string, { msg: RawMessage }>): FieldPlan {
    const type = f.type ?? 0;
    const repeated = f.label === 3;
    const entryMsg = type === T.MESSAGE && repeated && f.typeName ? raw.get(f.typeName)?.msg : undefined;
    const entry = entryMsg?.options?.mapEntry
      ? (() => {
          const k = entryMsg.field?.find((x) => x.number === 1);
          const v = entryMsg.field?.find((x) => x.number === 2);
          if (!k || !v) throw new ProtoJsonError(`map entry ${f.typeName} lacks its key or value`);
          return { key: this.planField(f.typeName!, k, syntax, raw), value: this.planField(f.typeName!, v, syntax, raw) };
        })()
      : undefined;
    return {
      number: f.number ?? 0,
      json: f.jsonName ?? camel(f.name ?? ''),
      type,
      repeated,
      explicit: !repeated && (type === T.MESSAGE || f.oneofIndex !== undefined || syntax !== 'proto3'),
      ...(f.oneofIndex !== undefined && f.proto3Optional !== true ? { oneof: f.oneofIndex } : {}),
      utf8: syntax !== 'proto2',
      fullName: `${owner.slice(1)}.${f.name ?? ''}`,
      ...(f.typeName ? { typeName: f.typeName } : {}),
      ...(entry ? { entry } : {}),
    };
  }

  /** The input message of `service`/`method` (a gRPC path's two segments), if the set has it. */
  inputOf(service: string, method: string): { type: string } | { unsupported: string } | undefined {
    const m = this.services.get(service)?.get(method);
    if (!m) return undefined;
    return m.clientStreaming ? { unsupported: `streaming client method ${method} not supported` } : { type: m.input };
  }

  /** `bytes` as message `type` (full name, leading dot), as proto3 JSON. Throws ProtoJsonError. */
  toJson(type: string, bytes: Uint8Array): unknown {
    const plan = this.messages.get(type);
    if (!plan) throw new ProtoJsonError(`unknown message type ${type}`);
    this.jsonDepth = 0;
    return this.json(this.decode(plan, bytes, 0, undefined));
  }

  // ---- wire format ----

  private decode(plan: MessagePlan, bytes: Uint8Array, depth: number, into: Decoded | undefined): Decoded {
    if (depth > MAX_DEPTH) throw new ProtoJsonError('exceeded maximum recursion depth');
    const msg = into ?? { plan, values: new Map(), oneofs: new Map() };
    const r = new Reader(bytes);
    while (!r.done) {
      const tag = r.varint64();
      const num = Number(tag >> 3n);
      const wire = Number(tag & 7n);
      if (num < 1 || num > 0x1fffffff) throw malformed();
      const f = plan.byNumber.get(num);
      if (f && f.repeated && !f.entry && wire === 2 && SCALAR_NUMERIC.has(f.type)) {
        // Packed: the values fill the field exactly (one running past its end is malformed).
        const packed = new Reader(r.bytes());
        const list = this.list(msg, f);
        while (!packed.done) list.push(this.scalar(f, packed, WIRE_OF[f.type]!));
      } else if (f && wire === WIRE_OF[f.type]) {
        this.field1(msg, f, r, depth);
      } else {
        r.skip(wire, num, depth);
      }
    }
    return msg;
  }

  private list(msg: Decoded, f: FieldPlan): unknown[] {
    let list = msg.values.get(f.number) as unknown[] | undefined;
    if (!list) msg.values.set(f.number, (list = []));
    return list;
  }

  private field1(msg: Decoded, f: FieldPlan, r: Reader, depth: number): void {
    if (f.entry) {
      const entry = this.decode(ENTRY_PLAN(f.entry), r.bytes(), depth + 1, undefined);
      let map = msg.values.get(f.number) as Map<string, unknown> | undefined;
      if (!map) msg.values.set(f.number, (map = new Map()));
      const k = entry.values.get(1) ?? defaultOf(f.entry.key);
      const v = entry.values.get(2) ?? (f.entry.value.type === T.MESSAGE ? this.empty(f.entry.value) : defaultOf(f.entry.value));
      map.set(typeof k === 'boolean' || typeof k === 'bigint' || typeof k === 'number' ? String(k) : (k as string), v);
      return;
    }
    let v: unknown;
    if (f.type === T.MESSAGE) {
      const sub = this.messages.get(f.typeName!)!;
      // A singular message seen twice is merged into the first (Go's Unmarshal), a repeated one appended.
      const prior = f.repeated ? undefined : (msg.values.get(f.number) as Decoded | undefined);
      v = this.decode(sub, r.bytes(), depth + 1, prior);
    } else {
      v = this.scalar(f, r, WIRE_OF[f.type]!);
    }
    if (f.repeated) {
      this.list(msg, f).push(v);
      return;
    }
    if (f.oneof !== undefined) {
      const other = msg.oneofs.get(f.oneof);
      if (other !== undefined && other !== f.number) msg.values.delete(other);
      msg.oneofs.set(f.oneof, f.number);
    }
    msg.values.set(f.number, v);
  }

  private empty(f: FieldPlan): Decoded {
    return { plan: this.messages.get(f.typeName!)!, values: new Map(), oneofs: new Map() };
  }

  private scalar(f: FieldPlan, r: Reader, wire: number): Value {
    switch (f.type) {
      case T.DOUBLE:
        return r.double();
      case T.FLOAT:
        return r.float();
      case T.FIXED32:
        return r.fixed32();
      case T.SFIXED32:
        return r.fixed32() | 0;
      case T.FIXED64:
        return r.fixed64();
      case T.SFIXED64:
        return BigInt.asIntN(64, r.fixed64());
      case T.STRING: {
        const bytes = r.bytes();
        if (!f.utf8) return Buffer.from(bytes).toString('utf8');
        try {
          return UTF8.decode(bytes);
        } catch {
          throw new ProtoJsonError(`field ${f.fullName} contains invalid UTF-8`);
        }
      }
      case T.BYTES:
        return r.bytes().slice(); // a copy: the value outlives the request's buffer
      default: {
        if (wire !== 0) throw malformed();
        const u = r.varint64();
        switch (f.type) {
          case T.BOOL:
            return u !== 0n;
          case T.INT64:
            return BigInt.asIntN(64, u);
          case T.UINT64:
            return u;
          case T.SINT64:
            return BigInt.asIntN(64, (u >> 1n) ^ -(u & 1n));
          case T.SINT32: {
            const x = Number(BigInt.asUintN(32, u));
            return (x >>> 1) ^ -(x & 1);
          }
          case T.UINT32:
            return Number(BigInt.asUintN(32, u));
          default: // int32, enum: the low 32 bits, signed
            return Number(BigInt.asIntN(32, u));
        }
      }
    }
  }

  // ---- JSON ----

  /** Messages being written now: an Any decodes its own message inside this walk, so nesting is bounded here too. */
  private jsonDepth = 0;

  private json(msg: Decoded): unknown {
    if (++this.jsonDepth > MAX_DEPTH) throw new ProtoJsonError('exceeded maximum recursion depth');
    try {
      return this.jsonOf(msg);
    } finally {
      this.jsonDepth--;
    }
  }

  private jsonOf(msg: Decoded): unknown {
    const wkt = WELL_KNOWN[msg.plan.name];
    if (wkt) return wkt(msg, this);
    const out: Record<string, unknown> = {};
    for (const f of msg.plan.fields) {
      const v = msg.values.get(f.number);
      if (v === undefined) continue;
      if (f.entry) {
        const map = v as Map<string, unknown>;
        if (map.size === 0) continue;
        const o: Record<string, unknown> = {};
        for (const [k, x] of map) setOwn(o, k, this.single(f.entry.value, x));
        out[f.json] = o;
      } else if (f.repeated) {
        const list = v as unknown[];
        if (list.length > 0) out[f.json] = list.map((x) => this.single(f, x));
      } else if (f.explicit || !isZero(v)) {
        out[f.json] = this.single(f, v);
      }
    }
    return out;
  }

  /** One value of field `f` (a list element, a map value, or a singular field). */
  single(f: FieldPlan, v: unknown): unknown {
    switch (f.type) {
      case T.MESSAGE:
        return this.json(v as Decoded);
      case T.INT64:
      case T.UINT64:
      case T.SINT64:
      case T.FIXED64:
      case T.SFIXED64:
        return String(v);
      case T.FLOAT:
        return floatJson(v as number, 32);
      case T.DOUBLE:
        return floatJson(v as number, 64);
      case T.BYTES:
        return Buffer.from(v as Uint8Array).toString('base64');
      case T.ENUM: {
        if (f.typeName === '.google.protobuf.NullValue') return null;
        const name = this.enums.get(f.typeName!)?.get(v as number);
        return name ?? v;
      }
      default:
        return v;
    }
  }

  /** A field's value, or its default when absent. */
  get(msg: Decoded, num: number): unknown {
    const f = msg.plan.byNumber.get(num);
    const v = msg.values.get(num);
    if (v !== undefined || !f) return v;
    return f.repeated ? [] : f.type === T.MESSAGE ? undefined : defaultOf(f);
  }

  /** An Any's embedded message: resolved among the well-known types of the set only (see docs). */
  anyJson(msg: Decoded): unknown {
    const url = msg.values.get(1) as string | undefined;
    const value = (msg.values.get(2) as Uint8Array | undefined) ?? new Uint8Array();
    if (url === undefined) {
      if (value.length === 0) return {};
      throw new ProtoJsonError('google.protobuf.Any: type_url is not set');
    }
    const name = `.${url.slice(url.lastIndexOf('/') + 1)}`;
    const plan = name.startsWith('.google.protobuf.') ? this.messages.get(name) : undefined;
    if (!plan) throw new ProtoJsonError(`google.protobuf.Any: unable to resolve "${url}": not found`);
    const inner = this.decode(plan, value, this.jsonDepth, undefined);
    const json = this.json(inner);
    return WELL_KNOWN[name] ? { '@type': url, value: json } : { '@type': url, ...(json as Record<string, unknown>) };
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

const entryPlans = new WeakMap<object, MessagePlan>();
function ENTRY_PLAN(e: { readonly key: FieldPlan; readonly value: FieldPlan }): MessagePlan {
  let p = entryPlans.get(e);
  if (!p) entryPlans.set(e, (p = { name: '<map entry>', fields: [e.key, e.value], byNumber: new Map([[1, e.key], [2, e.value]]) }));
  return p;
}

function defaultOf(f: FieldPlan): Value {
  switch (f.type) {
    case T.STRING:
      return '';
    case T.BOOL:
      return false;
    case T.BYTES:
      return new Uint8Array();
    case T.INT64:
    case T.UINT64:
    case T.SINT64:
    case T.FIXED64:
    case T.SFIXED64:
      return 0n;
    default:
      return 0;
  }
}

/** proto3 implicit presence: the zero value is not populated (-0.0 is, as in Go). */
function isZero(v: unknown): boolean {
  if (typeof v === 'number') return v === 0 && !Object.is(v, -0);
  if (typeof v === 'bigint') return v === 0n;
  if (typeof v === 'string') return v === '';
  if (typeof v === 'boolean') return !v;
  if (v instanceof Uint8Array) return v.length === 0;
  return false;
}

/** protojson's numbers: NaN and the infinities as strings; a float as its shortest 32-bit decimal. */
function floatJson(v: number, bits: 32 | 64): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  if (bits === 64 || v === 0) return v;
  for (let p = 1; p < 10; p++) {
    const s = Number(v.toPrecision(p));
    if (Math.fround(s) === v) return s;
  }
  return v;
}

const TIMESTAMP_MIN = -62135596800n;
const TIMESTAMP_MAX = 253402300799n;
const DURATION_MAX = 315576000000n;

/** Go's %d.%09d with trailing groups of three zeros dropped (0, 3, 6 or 9 digits). */
function fraction(nanos: number): string {
  let s = `.${String(nanos).padStart(9, '0')}`;
  for (let i = 0; i < 2 && s.endsWith('000'); i++) s = s.slice(0, -3);
  return s === '.000' ? '' : s;
}

function timestamp(msg: Decoded, set: DescriptorSet): string {
  const secs = set.get(msg, 1) as bigint;
  const nanos = set.get(msg, 2) as number;
  if (secs < TIMESTAMP_MIN || secs > TIMESTAMP_MAX) throw new ProtoJsonError(`google.protobuf.Timestamp: seconds out of range ${secs}`);
  if (nanos < 0 || nanos > 999_999_999) throw new ProtoJsonError(`google.protobuf.Timestamp: nanos out of range ${nanos}`);
  const iso = new Date(Number(secs) * 1000).toISOString(); // years 0001-9999: always YYYY-MM-DDTHH:MM:SS.mmmZ
  return `${iso.slice(0, 19)}${fraction(nanos)}Z`;
}

function duration(msg: Decoded, set: DescriptorSet): string {
  let secs = set.get(msg, 1) as bigint;
  let nanos = set.get(msg, 2) as number;
  if (secs < -DURATION_MAX || secs > DURATION_MAX) throw new ProtoJsonError(`google.protobuf.Duration: seconds out of range ${secs}`);
  if (nanos < -999_999_999 || nanos > 999_999_999) throw new ProtoJsonError(`google.protobuf.Duration: nanos out of range ${nanos}`);
  if ((secs > 0n && nanos < 0) || (secs < 0n && nanos > 0)) throw new ProtoJsonError('google.protobuf.Duration: signs of seconds and nanos do not match');
  let sign = '';
  if (secs < 0n || nanos < 0) [sign, secs, nanos] = ['-', -secs, -nanos];
  return `${sign}${secs}${fraction(nanos)}s`;
}

const FULL_NAME = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

function fieldMask(msg: Decoded, set: DescriptorSet): string {
  return (set.get(msg, 1) as string[])
    .map((p) => {
      if (!FULL_NAME.test(p)) throw new ProtoJsonError(`google.protobuf.FieldMask.paths contains invalid path: ${JSON.stringify(p)}`);
      const cc = camel(p);
      if (snake(cc) !== p) throw new ProtoJsonError(`google.protobuf.FieldMask.paths contains irreversible value ${JSON.stringify(p)}`);
      return cc;
    })
    .join(',');
}

function value(msg: Decoded, set: DescriptorSet): unknown {
  const kind = msg.oneofs.get(0);
  if (kind === undefined) throw new ProtoJsonError('google.protobuf.Value: none of the oneof fields is set');
  const v = msg.values.get(kind);
  if (kind === 2 && !Number.isFinite(v)) throw new ProtoJsonError(`google.protobuf.Value.number_value: invalid ${String(v)} value`);
  return set.single(msg.plan.byNumber.get(kind)!, v);
}

function wrapper(msg: Decoded, set: DescriptorSet): unknown {
  return set.single(msg.plan.byNumber.get(1)!, set.get(msg, 1));
}

type WellKnown = (msg: Decoded, set: DescriptorSet) => unknown;

const WELL_KNOWN: Readonly<Record<string, WellKnown>> = {
  '.google.protobuf.Any': (m, s) => s.anyJson(m),
  '.google.protobuf.Timestamp': timestamp,
  '.google.protobuf.Duration': duration,
  '.google.protobuf.FieldMask': fieldMask,
  '.google.protobuf.Value': value,
  '.google.protobuf.Struct': (m, s) => {
    const f = m.plan.byNumber.get(1)!;
    const map = (m.values.get(1) as Map<string, unknown> | undefined) ?? new Map<string, unknown>();
    const o: Record<string, unknown> = {};
    for (const [k, x] of map) setOwn(o, k, s.single(f.entry!.value, x));
    return o;
  },
  '.google.protobuf.ListValue': (m, s) => ((m.values.get(1) as unknown[] | undefined) ?? []).map((x) => s.single(m.plan.byNumber.get(1)!, x)),
  '.google.protobuf.Empty': () => ({}),
  ...Object.fromEntries(['Double', 'Float', 'Int64', 'UInt64', 'Int32', 'UInt32', 'Bool', 'String', 'Bytes'].map((n) => [`.google.protobuf.${n}Value`, wrapper])),
};

class Reader {
  private readonly view: DataView;
  private pos = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  /** Moves past `n` bytes; returns where they start. */
  private take(n: number): number {
    if (this.pos + n > this.buf.length) throw malformed();
    const at = this.pos;
    this.pos += n;
    return at;
  }

  /** At most 10 bytes, the tenth at most 1 (Go's protowire.ConsumeVarint). */
  varint64(): bigint {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.take(1)]!;
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else if (i < 9) hi |= (b & 0x7f) << (7 * i - 32);
      else if (b > 1) throw malformed();
      else hi |= b << 31;
      if (b < 0x80) return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
    }
    throw malformed();
  }

  /** A length-delimited field's bytes (a view into the buffer). */
  bytes(): Uint8Array {
    const n = this.varint64();
    if (n > BigInt(this.buf.length - this.pos)) throw malformed();
    const at = this.take(Number(n));
    return this.buf.subarray(at, this.pos);
  }

  fixed32(): number {
    return this.view.getUint32(this.take(4), true);
  }

  fixed64(): bigint {
    return this.view.getBigUint64(this.take(8), true);
  }

  float(): number {
    return this.view.getFloat32(this.take(4), true);
  }

  double(): number {
    return this.view.getFloat64(this.take(8), true);
  }

  /** An unknown field; a group up to its matching end-group. */
  skip(wire: number, num: number, depth: number): void {
    switch (wire) {
      case 0:
        this.varint64();
        return;
      case 1:
        this.take(8);
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.take(4);
        return;
      case 3:
        for (;;) {
          const tag = this.varint64();
          const w = Number(tag & 7n);
          const n = Number(tag >> 3n);
          if (n < 1) throw malformed();
          if (depth > MAX_DEPTH) throw new ProtoJsonError('exceeded maximum recursion depth');
          if (w === 4) {
            if (n !== num) throw malformed();
            return;
          }
          this.skip(w, n, depth + 1);
        }
      default:
        throw malformed();
    }
  }
}
