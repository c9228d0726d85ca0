// A decoded protobuf message -> the map opa-envoy-plugin builds by reflection (envoyauth.protomap,
// since v0.x-envoy 2025): walked by the message's descriptor, never by guessing from the values.
// - names: each field's JSON name (lowerCamelCase unless json_name says otherwise)
// - presence: only populated fields, as Go's Message.Range: scalars other than their proto3
//   default, set messages (even empty), non-empty lists and maps, and any member of a oneof
// - values: 64-bit integers and enums as numbers, bytes as base64, google.protobuf.Struct as plain
//   JSON (AsMap); every other message, Timestamp and Any included, field by field.
// The plan per type is compiled once; converting a message allocates only its output.
import type protobuf from 'protobufjs';
import { setOwn } from '../lib/records.js';
import type { JsonWriter } from '../lib/json-writer.js';
import { structToJson, type DecodedStruct } from './struct.js';

type Scalar = 'string' | 'bool' | 'number' | 'long' | 'bytes' | 'enum';

interface FieldPlan {
  readonly name: string;
  readonly json: string;
  /** `"json":` and `,"json":`, for the JSON text writer. */
  readonly key: string;
  readonly nextKey: string;
  /** Member of a oneof (or a proto3 optional): present when set at all. */
  readonly explicit: boolean;
  readonly repeated: boolean;
  readonly map: boolean;
  readonly scalar?: Scalar;
  readonly enumValues?: Readonly<Record<string, number>>;
  readonly message?: () => MessagePlan;
}

interface MessagePlan {
  readonly struct: boolean;
  readonly fields: readonly FieldPlan[];
}

const LONGS = new Set(['int64', 'uint64', 'sint64', 'fixed64', 'sfixed64']);
const NUMBERS = new Set(['int32', 'uint32', 'sint32', 'fixed32', 'sfixed32', 'double', 'float']);

/** protoc's ToJsonName: drop each '_' and upper-case the letter after it. */
function jsonName(name: string): string {
  let out = '';
  let upper = false;
  for (const ch of name) {
    if (ch === '_') upper = true;
    else {
      out += upper ? ch.toUpperCase() : ch;
      upper = false;
    }
  }
  return out;
}

// One plan per message type of the loaded schema (a fixed, finite set).
const plans = new Map<string, MessagePlan>();

function planOf(type: protobuf.Type): MessagePlan {
  const key = type.fullName;
  let plan = plans.get(key);
  if (plan) return plan;
  const fields: FieldPlan[] = type.fieldsArray.map((f) => {
    const resolved = f.resolvedType;
    const isMessage = resolved !== null && 'fieldsArray' in resolved;
    const isEnum = resolved !== null && !isMessage;
    const opts = f.options;
    const custom = typeof opts?.json_name === 'string' ? opts.json_name : undefined;
    const scalar: Scalar | undefined = isMessage
      ? undefined
      : isEnum
        ? 'enum'
        : f.type === 'bytes'
          ? 'bytes'
          : f.type === 'bool'
            ? 'bool'
            : f.type === 'string'
              ? 'string'
              : LONGS.has(f.type)
                ? 'long'
                : NUMBERS.has(f.type)
                  ? 'number'
                  : 'string';
    const json = custom ?? jsonName(f.name);
    return {
      name: f.name,
      json,
      key: `${JSON.stringify(json)}:`,
      nextKey: `,${JSON.stringify(json)}:`,
      explicit: f.partOf !== null,
      repeated: f.repeated,
      map: f.map,
      ...(scalar ? { scalar } : {}),
      ...(isEnum ? { enumValues: (resolved).values } : {}),
      ...(isMessage ? { message: lazyPlan(resolved) } : {}),
    };
  });
  plan = { struct: key === '.google.protobuf.Struct', fields };
  plans.set(key, plan);
  return plan;
}

/** The plan of a field's message type, looked up once (recursive types make it lazy; `fullName` builds a string per call). */
function lazyPlan(type: protobuf.Type): () => MessagePlan {
  let plan: MessagePlan | undefined;
  return () => (plan ??= planOf(type));
}

function scalarValue(f: FieldPlan, v: unknown): unknown {
  switch (f.scalar) {
    case 'long':
      return Number(v);
    case 'bytes':
      return Buffer.isBuffer(v) ? v.toString('base64') : v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v;
    case 'enum':
      return typeof v === 'string' ? (f.enumValues?.[v] ?? 0) : v;
    default:
      return v;
  }
}

function isDefault(f: FieldPlan, v: unknown): boolean {
  switch (f.scalar) {
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'bytes':
      return (v as Uint8Array).length === 0;
    case 'enum':
      return scalarValue(f, v) === 0;
    default:
      return Number(v) === 0;
  }
}

function value(f: FieldPlan, v: unknown): unknown {
  return f.message ? convert(v, f.message()) : scalarValue(f, v);
}

function convert(msg: unknown, plan: MessagePlan): Record<string, unknown> {
  if (plan.struct) return structToJson(msg as DecodedStruct);
  const o = msg as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const f of plan.fields) {
    const v = o[f.name];
    if (v === undefined || v === null) continue;
    if (f.map) {
      // Map keys are data (a header may be called "constructor"): defined as own properties.
      const m = v as Record<string, unknown>;
      let mapped: Record<string, unknown> | undefined;
      for (const k in m) {
        if (!Object.hasOwn(m, k)) continue;
        mapped ??= {};
        if (k === '__proto__') setOwn(mapped, k, value(f, m[k]));
        else mapped[k] = value(f, m[k]);
      }
      if (mapped) out[f.json] = mapped;
    } else if (f.repeated) {
      const list = v as unknown[];
      if (list.length > 0) out[f.json] = list.map((x) => value(f, x));
    } else if (f.message || f.explicit || !isDefault(f, v)) {
      out[f.json] = value(f, v);
    }
  }
  return out;
}

// --- the same walk, written as JSON text ---------------------------------------------------------

/** Edits to one message type while it is written (the caller's per-request context `C` says what). */
export interface TypeEdit<C> {
  /** A replacement for a singular field or a map entry (`key`) of this message; undefined: as decoded. A replacement is written even where the field was absent. */
  replace?(ctx: C, field: string, key?: string): unknown;
  /** A map entry (by key) or list item of this field left out. The field itself stays (as `{}` or `[]`) when it had entries. */
  omit?(ctx: C, field: string, entry: unknown): boolean;
}

interface WriteCtx<C> {
  readonly edits: ReadonlyMap<MessagePlan, TypeEdit<C>>;
  readonly ctx: C;
}

function writeScalar(w: JsonWriter, f: FieldPlan, v: unknown): void {
  switch (f.scalar) {
    case 'long':
      return w.number(Number(v));
    case 'enum':
      return w.number(typeof v === 'string' ? (f.enumValues?.[v] ?? 0) : Number(v));
    case 'bytes':
      return w.value(scalarValue(f, v));
    default:
      return w.value(v);
  }
}

function writeValue<C>(w: JsonWriter, f: FieldPlan, v: unknown, c: WriteCtx<C>): void {
  if (f.message) writeMessage(w, v, f.message(), c);
  else writeScalar(w, f, v);
}

function writeMessage<C>(w: JsonWriter, msg: unknown, plan: MessagePlan, c: WriteCtx<C>): void {
  if (plan.struct) return w.value(structToJson(msg as DecodedStruct));
  w.byte(0x7b);
  writeMembers(w, msg, plan, c);
  w.byte(0x7d);
}

/** The message's members, without the braces; whether any was written. */
function writeMembers<C>(w: JsonWriter, msg: unknown, plan: MessagePlan, c: WriteCtx<C>): boolean {
  const o = msg as Record<string, unknown>;
  const edit = c.edits.get(plan);
  let first = true;
  for (const f of plan.fields) {
    const replaced = edit?.replace && !f.map ? edit.replace(c.ctx, f.name) : undefined;
    const v = replaced ?? o[f.name];
    if (v === undefined || v === null) continue;
    if (replaced !== undefined) {
      w.raw(first ? f.key : f.nextKey);
      w.value(replaced);
    } else if (f.map) {
      const m = v as Record<string, unknown>;
      let n = -1;
      for (const k in m) {
        if (!Object.hasOwn(m, k)) continue;
        if (n < 0) {
          w.raw(first ? f.key : f.nextKey);
          w.byte(0x7b);
          n = 0;
        }
        if (edit?.omit?.(c.ctx, f.name, k)) continue;
        if (n++ > 0) w.byte(0x2c);
        w.string(k);
        w.byte(0x3a);
        const r = edit?.replace ? edit.replace(c.ctx, f.name, k) : undefined;
        if (r !== undefined) w.value(r);
        else writeValue(w, f, m[k], c);
      }
      if (n < 0) continue;
      w.byte(0x7d);
    } else if (f.repeated) {
      const list = v as unknown[];
      if (list.length === 0) continue;
      w.raw(first ? f.key : f.nextKey);
      w.byte(0x5b);
      let n = 0;
      for (const x of list) {
        if (edit?.omit?.(c.ctx, f.name, x)) continue;
        if (n++ > 0) w.byte(0x2c);
        writeValue(w, f, x, c);
      }
      w.byte(0x5d);
    } else if (f.message || f.explicit || !isDefault(f, v)) {
      w.raw(first ? f.key : f.nextKey);
      writeValue(w, f, v, c);
    } else continue;
    first = false;
  }
  return !first;
}

/**
 * Writes the members of what protoMapper's function returns, as JSON text without the enclosing
 * braces (the caller adds members of its own), with `edits` applied to the named message types
 * (full names, e.g. `.envoy.service.auth.v3.AttributeContext.HttpRequest`). Returns whether any
 * member was written.
 */
export function protoJsonWriter<C>(type: protobuf.Type, edits: Readonly<Record<string, TypeEdit<C>>> = {}): (w: JsonWriter, msg: unknown, ctx: C) => boolean {
  const plan = planOf(type);
  compileAll(plan, new Set());
  const byPlan = new Map<MessagePlan, TypeEdit<C>>();
  for (const [name, e] of Object.entries(edits)) {
    const p = plans.get(name);
    if (!p) throw new Error(`${name} is not reached from ${type.fullName}`);
    byPlan.set(p, e);
  }
  return (w, msg, ctx) => writeMembers(w, msg, plan, { edits: byPlan, ctx });
}

function compileAll(plan: MessagePlan, seen: Set<MessagePlan>): void {
  if (seen.has(plan)) return;
  seen.add(plan);
  for (const f of plan.fields) if (f.message) compileAll(f.message(), seen);
}

/** Compiles the plan of `type` and of every type it reaches now, so no request pays for it. */
export function protoMapper(type: protobuf.Type): (msg: unknown) => Record<string, unknown> {
  const plan = planOf(type);
  compileAll(plan, new Set());
  return (msg) => convert(msg, plan);
}
