// Protobuf bytes straight to the plain objects @grpc/proto-loader hands our handlers (its options
// in proto/roots.json: field names as written, 64-bit integers as decimal strings, enums by name,
// no defaults, oneofs named), in one pass. proto-loader decodes into protobufjs message objects
// first and then copies those into plain ones: two object trees per request, about 2 KB of a
// Check's garbage for a typical CheckRequest.
//
// Exactness by construction: this decoder takes only well-formed, canonically ordered input (what
// Envoy's C++ serializer writes: fields in field-number order, each with its declared wire type).
// Anything else - an unknown field, a group, a wire type other than the field's, a field number
// lower than one already read, a value running past its message, a 32-bit varint of an unusual
// length, a map entry without its key or value - hands the whole buffer to proto-loader's
// decoder, which then does whatever it always did (skip, truncate, throw). The result is
// therefore the same object, key order included (protobufjs writes fields by number), and
// test/unit/envoy/plain-decoder.test.ts compares the two on generated and mutated messages.
//
// One difference, on purpose: a map's keys (string-keyed maps: headers, context extensions,
// Struct fields) come in sorted order, not in the order they were sent. A sender may write a
// map in any order (ghz, a Go program, in a new one every call): V8 makes a new hidden class for
// every order of keys it has not seen, in the old generation - about 900 bytes and 3 us a
// CheckRequest with nine headers - where sorted keys reuse one. Sorted as JavaScript compares
// strings (UTF-16 units; integer-like keys still come first, as in any object); Go sorts a map's
// JSON keys by bytes, the same for ASCII names (opa-envoy-plugin's decision logs). Rego objects
// have no order. Where names differ only in case the request view no longer follows the wire
// order either (src/envoy/request.ts). What falls back to proto-loader is sorted the same way.
import protobuf from 'protobufjs';
import { setOwn } from '../lib/records.js';

type Scalar =
  | 'double' | 'float' | 'int32' | 'uint32' | 'sint32' | 'fixed32' | 'sfixed32'
  | 'int64' | 'uint64' | 'sint64' | 'fixed64' | 'sfixed64' | 'bool' | 'string' | 'bytes';

type Kind = Scalar | 'enum' | 'message';

interface FieldPlan {
  readonly name: string;
  readonly kind: Kind;
  readonly repeated: boolean;
  /** Wire type of one value (packed repeated fields also accept 2). */
  readonly wire: number;
  readonly packable: boolean;
  /** A map field: its value's plan (key: string; other key types are not taken). */
  readonly map: boolean;
  /** The oneof this field belongs to (proto-loader names the member that is set). */
  readonly oneof: string | undefined;
  /** Enum: names by number (from the enum's values, as protobufjs looks them up). */
  readonly names: Readonly<Record<number, string>> | undefined;
  /** Message or map: the nested plan, filled once every type is known (types may recurse). */
  message: TypePlan | undefined;
  /** Map: how values are read. */
  readonly valueKind: Kind | undefined;
  readonly valueWire: number;
  readonly valueNames: Readonly<Record<number, string>> | undefined;
}

interface TypePlan {
  readonly fields: ReadonlyMap<number, FieldPlan>;
  /** A proto2 type with required fields: protobufjs checks them, so it is never ours to decode. */
  refused: boolean;
}

const WIRE: Record<Scalar, number> = {
  double: 1, float: 5, int32: 0, uint32: 0, sint32: 0, fixed32: 5, sfixed32: 5,
  int64: 0, uint64: 0, sint64: 0, fixed64: 1, sfixed64: 1, bool: 0, string: 2, bytes: 2,
};

/** Thrown (never allocated per call) when the input is not ours to decode. */
const NOT_OURS = new Error('not canonical');
// protobufjs refuses messages nested deeper than this (util.recursionLimit); so does the fallback.
const MAX_DEPTH = 100;

let buf: Buffer = Buffer.alloc(0);
let pos = 0;
let hi = 0;
let vlen = 0;

/** One varint of up to 10 bytes before `end`: its low 32 bits returned, high in `hi`, length in `vlen`. */
function varint(end: number): number {
  const start = pos;
  let lo = 0;
  let b = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) throw NOT_OURS;
    b = buf[pos++]!;
    lo |= (b & 127) << shift;
    if (b < 128) {
      hi = 0;
      vlen = pos - start;
      return lo >>> 0;
    }
  }
  if (pos >= end) throw NOT_OURS;
  b = buf[pos++]!;
  lo |= (b & 15) << 28;
  hi = (b & 127) >> 4;
  if (b < 128) {
    vlen = 5;
    return lo >>> 0;
  }
  for (let shift = 3; shift < 38; shift += 7) {
    if (pos >= end) throw NOT_OURS;
    b = buf[pos++]!;
    hi |= (b & 127) << shift;
    if (b < 128) {
      hi >>>= 0;
      vlen = pos - start;
      return lo >>> 0;
    }
  }
  throw NOT_OURS;
}

/**
 * A varint read as 32 bits. protobufjs reads five bytes and then skips five more, so only the
 * lengths on which that lands where the varint ends (1-5 and 10) are decoded here.
 */
function varint32(end: number): number {
  const v = varint(end);
  if (vlen > 5 && vlen !== 10) throw NOT_OURS;
  return v;
}

/** A length-delimited value's end, within its message. */
function delimited(end: number): number {
  const len = varint32(end);
  const to = pos + len;
  if (to > end) throw NOT_OURS;
  return to;
}

// Short ASCII strings recur from call to call (header names, methods, schemes, addresses): they
// are taken from a small table when the bytes match, instead of being made again. The table is
// fixed in size (a slot is overwritten on a miss) and holds only strings, so it cannot grow.
const INTERN_MAX = 32;
const INTERN_SLOTS = 512;
const internTable: (string | undefined)[] = new Array<string | undefined>(INTERN_SLOTS).fill(undefined);

function interned(from: number, to: number): string {
  let h = to - from;
  for (let i = from; i < to; i++) {
    const b = buf[i]!;
    if (b >= 0x80) return buf.toString('utf8', from, to);
    h = (Math.imul(h, 31) + b) | 0;
  }
  const slot = h & (INTERN_SLOTS - 1);
  const known = internTable[slot];
  if (known !== undefined && known.length === to - from) {
    let i = 0;
    while (i < known.length && known.charCodeAt(i) === buf[from + i]) i++;
    if (i === known.length) return known;
  }
  const made = buf.toString('latin1', from, to);
  internTable[slot] = made;
  return made;
}

const TWO_32 = 4294967296;

/** A 64-bit value (low 32 bits `lo`, high in `h`) as proto-loader writes it: a decimal string. */
function long(lo: number, h: number, unsigned: boolean): string {
  if (h < 0x200000) return String(h * TWO_32 + lo);
  const big = (BigInt(h) << 32n) | BigInt(lo);
  return (unsigned ? big : BigInt.asIntN(64, big)).toString();
}

/** Eight little-endian bytes: the low 32 bits returned, the high in `hi`. */
function fixed64(end: number): number {
  if (pos + 8 > end) throw NOT_OURS;
  const lo = buf.readUInt32LE(pos);
  hi = buf.readUInt32LE(pos + 4);
  pos += 8;
  return lo;
}

function scalar(kind: Scalar | 'enum', end: number, names: Readonly<Record<number, string>> | undefined): unknown {
  switch (kind) {
    case 'string': {
      const to = delimited(end);
      const s = to - pos <= INTERN_MAX ? interned(pos, to) : buf.toString('utf8', pos, to);
      pos = to;
      return s;
    }
    case 'bytes': {
      const to = delimited(end);
      const b = to === pos ? Buffer.alloc(0) : buf.subarray(pos, to);
      pos = to;
      return b;
    }
    case 'int32':
      return varint32(end) | 0;
    case 'uint32':
      return varint32(end);
    case 'sint32': {
      const v = varint32(end);
      return ((v >>> 1) ^ -(v & 1)) | 0;
    }
    case 'bool':
      return varint32(end) !== 0;
    case 'enum': {
      const v = varint32(end) | 0;
      const name = names![v];
      return name === undefined ? v : name;
    }
    case 'int64': {
      const lo = varint(end);
      return long(lo, hi, false);
    }
    case 'uint64': {
      const lo = varint(end);
      return long(lo, hi, true);
    }
    case 'sint64': {
      const lo = varint(end);
      const h = hi;
      // Zigzag: (n >>> 1) ^ -(n & 1), on the two halves.
      const neg = -(lo & 1);
      const zlo = (((lo >>> 1) | (h << 31)) ^ neg) >>> 0;
      const zhi = ((h >>> 1) ^ neg) >>> 0;
      return long(zlo, zhi, false);
    }
    case 'fixed32':
    case 'sfixed32':
    case 'float': {
      if (pos + 4 > end) throw NOT_OURS;
      const v = kind === 'fixed32' ? buf.readUInt32LE(pos) : kind === 'sfixed32' ? buf.readInt32LE(pos) : buf.readFloatLE(pos);
      pos += 4;
      return v;
    }
    case 'double': {
      if (pos + 8 > end) throw NOT_OURS;
      const v = buf.readDoubleLE(pos);
      pos += 8;
      return v;
    }
    case 'fixed64': {
      const lo = fixed64(end);
      return long(lo, hi, true);
    }
    case 'sfixed64': {
      const lo = fixed64(end);
      return long(lo, hi, false);
    }
  }
}

/** One value of a field (or a map's value): a nested message, or a scalar or enum. */
function value(kind: Kind, nested: TypePlan | undefined, names: Readonly<Record<number, string>> | undefined, end: number, depth: number): unknown {
  return kind === 'message' ? message(nested!, delimited(end), depth + 1) : scalar(kind, end, names);
}

/** A map field's entries as read, kept until the field ends and then added in key order. */
interface MapEntries {
  target: Record<string, unknown> | undefined;
  keys: string[];
  values: unknown[];
  n: number;
}

// One per message depth (a map's values may hold maps one level down); emptied as each map ends,
// and by the decoder's `finally` when input turns out not to be ours. Bounded: MAX_DEPTH levels,
// and arrays that grew past KEEP_ENTRIES for one large map are not kept.
const entriesAt: MapEntries[] = [];
let deepest = -1;
const KEEP_ENTRIES = 256;

function entriesFor(depth: number, target: Record<string, unknown>): MapEntries {
  let m = entriesAt[depth];
  if (m === undefined) entriesAt[depth] = m = { target: undefined, keys: [], values: [], n: 0 };
  if (depth > deepest) deepest = depth;
  m.target = target;
  return m;
}

function clearEntries(m: MapEntries): void {
  if (m.keys.length > KEEP_ENTRIES) {
    m.keys = [];
    m.values = [];
  } else {
    m.keys.fill('', 0, m.n);
    m.values.fill(undefined, 0, m.n);
  }
  m.n = 0;
  m.target = undefined;
}

function setKey(target: Record<string, unknown>, key: string, value: unknown): void {
  // As protobufjs does for map keys: "__proto__" becomes an own property, not the prototype.
  if (key === '__proto__') setOwn(target, key, value);
  else target[key] = value;
}

/** Adds a map's entries to its object in key order (a later duplicate wins, as when decoded in order), then forgets them. */
function addSorted(m: MapEntries): void {
  const { keys, values, n } = m;
  const target = m.target!;
  if (n <= 32) {
    // Insertion sort, stable: a typical map is a dozen headers.
    for (let i = 1; i < n; i++) {
      const k = keys[i]!;
      const v = values[i];
      let j = i - 1;
      while (j >= 0 && keys[j]! > k) {
        keys[j + 1] = keys[j]!;
        values[j + 1] = values[j];
        j--;
      }
      keys[j + 1] = k;
      values[j + 1] = v;
    }
    for (let i = 0; i < n; i++) setKey(target, keys[i]!, values[i]);
  } else {
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : a - b));
    for (const i of order) setKey(target, keys[i]!, values[i]);
  }
  clearEntries(m);
}

function mapEntry(f: FieldPlan, m: MapEntries, end: number, depth: number): void {
  let key: string | undefined;
  let entry: unknown;
  let hasValue = false;
  while (pos < end) {
    const tag = varint32(end);
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 1 && wire === 2) {
      key = scalar('string', end, undefined) as string;
    } else if (id === 2 && wire === f.valueWire) {
      entry = value(f.valueKind!, f.message, f.valueNames, end, depth);
      hasValue = true;
    } else {
      throw NOT_OURS;
    }
  }
  if (key === undefined || !hasValue) throw NOT_OURS;
  m.keys[m.n] = key;
  m.values[m.n] = entry;
  m.n++;
}

/** `out`'s own value of `key` (never one inherited from Object.prototype, such as `toString`). */
const own = (out: Record<string, unknown>, key: string): unknown => (Object.hasOwn(out, key) ? out[key] : undefined);

function message(plan: TypePlan, end: number, depth: number): Record<string, unknown> {
  if (depth > MAX_DEPTH || plan.refused) throw NOT_OURS;
  const out: Record<string, unknown> = {};
  let last = 0;
  // The map field being read (its entries are contiguous: fields come in number order).
  let map: MapEntries | undefined;
  while (pos < end) {
    const tag = varint32(end);
    const id = tag >>> 3;
    const wire = tag & 7;
    const f = plan.fields.get(id);
    if (f === undefined || id < last) throw NOT_OURS;
    if (map !== undefined && id !== last) {
      addSorted(map);
      map = undefined;
    }
    last = id;
    if (f.map) {
      if (wire !== 2) throw NOT_OURS;
      const to = delimited(end);
      // A map field's first entry: its number is higher than any read before, so `out` has no such key yet.
      map ??= entriesFor(depth, (out[f.name] = {}));
      mapEntry(f, map, to, depth);
      if (pos !== to) throw NOT_OURS;
      continue;
    }
    if (f.repeated) {
      const list = (own(out, f.name) as unknown[] | undefined) ?? [];
      if (f.packable && wire === 2) {
        const to = delimited(end);
        while (pos < to) list.push(scalar(f.kind as Scalar | 'enum', to, f.names));
      } else if (wire === f.wire) {
        list.push(value(f.kind, f.message, f.names, end, depth));
      } else {
        throw NOT_OURS;
      }
      // proto-loader leaves an empty list out.
      if (list.length > 0) out[f.name] = list;
      continue;
    }
    if (wire !== f.wire) throw NOT_OURS;
    out[f.name] = value(f.kind, f.message, f.names, end, depth);
    if (f.oneof !== undefined) out[f.oneof] = f.name;
  }
  if (map !== undefined) addSorted(map);
  return out;
}

/** What the fallback decoded, with every map the plan knows rebuilt in key order (as `message` adds them). */
function sortMaps(plan: TypePlan, out: Record<string, unknown>): void {
  for (const f of plan.fields.values()) {
    const v = own(out, f.name);
    if (typeof v !== 'object' || v === null) continue;
    if (f.map) {
      const old = v as Record<string, unknown>;
      const sorted: Record<string, unknown> = {};
      for (const key of Object.keys(old).sort()) {
        const entry = old[key];
        if (f.message && typeof entry === 'object' && entry !== null) sortMaps(f.message, entry as Record<string, unknown>);
        setKey(sorted, key, entry);
      }
      out[f.name] = sorted;
    } else if (f.message) {
      if (Array.isArray(v)) {
        for (const item of v as unknown[]) if (typeof item === 'object' && item !== null) sortMaps(f.message, item as Record<string, unknown>);
      } else {
        sortMaps(f.message, v as Record<string, unknown>);
      }
    }
  }
}

function enumNames(e: protobuf.Enum): Record<number, string> {
  // protobufjs looks a number up in `values`, whose prototype is `valuesById`.
  const names: Record<number, string> = Object.create(null) as Record<number, string>;
  for (const [id, name] of Object.entries(e.valuesById)) names[Number(id)] = name;
  return names;
}

type Resolved = { kind: Kind; wire: number; names: Record<number, string> | undefined; type: protobuf.Type | undefined } | undefined;

function resolve(typeName: string, resolvedType: protobuf.Type | protobuf.Enum | null): Resolved {
  if (resolvedType instanceof protobuf.Type) return { kind: 'message', wire: 2, names: undefined, type: resolvedType };
  if (resolvedType instanceof protobuf.Enum) return { kind: 'enum', wire: 0, names: enumNames(resolvedType), type: undefined };
  if (Object.hasOwn(WIRE, typeName)) return { kind: typeName as Scalar, wire: WIRE[typeName as Scalar], names: undefined, type: undefined };
  return undefined;
}

function plan(type: protobuf.Type, plans: Map<protobuf.Type, TypePlan>): TypePlan {
  const known = plans.get(type);
  if (known) return known;
  const fields = new Map<number, FieldPlan>();
  const p: TypePlan = { fields, refused: false };
  plans.set(type, p);
  for (const field of type.fieldsArray) {
    field.resolve();
    if (field.required) p.refused = true;
    // A field (or oneof) named __proto__ would set the object's prototype: left to protobufjs.
    if (field.name === '__proto__' || field.partOf?.name === '__proto__') continue;
    const nested: protobuf.Type[] = [];
    if (field instanceof protobuf.MapField) {
      const value = resolve(field.type, field.resolvedType);
      // Only string keys (what Envoy's maps use); a field left out is simply never ours to decode.
      if (field.keyType !== 'string' || !value) continue;
      if (value.type) nested.push(value.type);
      fields.set(field.id, {
        name: field.name, kind: 'message', repeated: false, wire: 2, packable: false, map: true, oneof: undefined,
        names: undefined, message: undefined, valueKind: value.kind, valueWire: value.wire, valueNames: value.names,
      });
    } else {
      const r = resolve(field.type, field.resolvedType);
      // Groups (delimited fields) are not taken either.
      if (!r || field.delimited) continue;
      if (r.type) nested.push(r.type);
      fields.set(field.id, {
        name: field.name, kind: r.kind, repeated: field.repeated, wire: r.wire,
        packable: field.repeated && r.kind !== 'message' && r.kind !== 'string' && r.kind !== 'bytes',
        map: false, oneof: field.repeated ? undefined : field.partOf?.name, names: r.names, message: undefined,
        valueKind: undefined, valueWire: 0, valueNames: undefined,
      });
    }
    if (nested[0]) fields.get(field.id)!.message = plan(nested[0], plans);
  }
  return p;
}

/**
 * A decoder for `type` that returns what `fallback` (proto-loader's deserializer for the same
 * type) would, allocating one plain object tree; input it does not take goes to `fallback`.
 */
export function plainDecoder<T>(type: protobuf.Type, fallback: (bytes: Buffer) => T): (bytes: Buffer) => T {
  const root = plan(type, new Map());
  return (bytes) => {
    buf = bytes;
    pos = 0;
    try {
      return message(root, bytes.length, 0) as T;
    } catch (err) {
      if (err !== NOT_OURS) throw err;
      const value = fallback(bytes);
      if (typeof value === 'object' && value !== null) sortMaps(root, value as Record<string, unknown>);
      return value;
    } finally {
      buf = EMPTY;
      // Entries of maps cut short by input that was not ours (none after a decode that succeeded).
      for (let d = 0; d <= deepest; d++) {
        const m = entriesAt[d];
        if (m !== undefined && m.target !== undefined) clearEntries(m);
      }
      deepest = -1;
    }
  };
}

const EMPTY = Buffer.alloc(0);
