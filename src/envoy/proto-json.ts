// A decoded protobuf message -> the map opa-envoy-plugin builds by reflection (envoyauth.protomap,
// since v0.x-envoy 2025): walked by the message's descriptor, never by guessing from the values.
// - names: each field's JSON name (lowerCamelCase unless json_name says otherwise)
// - presence: only populated fields, as Go's Message.Range: scalars other than their proto3
//   default, set messages (even empty), non-empty lists and maps, and any member of a oneof
// - values: 64-bit integers and enums as numbers, bytes as base64, google.protobuf.Struct as plain
//   JSON (AsMap); every other message, Timestamp and Any included, field by field.
// The plan per type is compiled once; converting a message allocates only its output.
import type protobuf from 'protobufjs';
import { structToJson, type DecodedStruct } from './struct.js';

type Scalar = 'string' | 'bool' | 'number' | 'long' | 'bytes' | 'enum';

interface FieldPlan {
  readonly name: string;
  readonly json: string;
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
    return {
      name: f.name,
      json: custom ?? jsonName(f.name),
      explicit: f.partOf !== null,
      repeated: f.repeated,
      map: f.map,
      ...(scalar ? { scalar } : {}),
      ...(isEnum ? { enumValues: (resolved).values } : {}),
      ...(isMessage ? { message: () => planOf(resolved) } : {}),
    };
  });
  plan = { struct: key === '.google.protobuf.Struct', fields };
  plans.set(key, plan);
  return plan;
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
      const entries = Object.entries(v as Record<string, unknown>);
      if (entries.length > 0) out[f.json] = Object.fromEntries(entries.map(([k, x]) => [k, value(f, x)]));
    } else if (f.repeated) {
      const list = v as unknown[];
      if (list.length > 0) out[f.json] = list.map((x) => value(f, x));
    } else if (f.message || f.explicit || !isDefault(f, v)) {
      out[f.json] = value(f, v);
    }
  }
  return out;
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
