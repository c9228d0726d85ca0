// google.protobuf.Struct / Value <-> plain JSON, both ways: request metadata arrives as Structs
// (decoded by proto-loader with `kind` naming the oneof), dynamic metadata leaves as one.
import type { Struct } from '../gen/google/protobuf/Struct.js';
import type { Value } from '../gen/google/protobuf/Value.js';

/** A decoded google.protobuf.Value: `kind` names the member that is set. */
export interface DecodedValue {
  kind?: string;
  [k: string]: unknown;
}

export interface DecodedStruct {
  fields?: Record<string, DecodedValue>;
}

export function valueToJson(v: DecodedValue): unknown {
  switch (v.kind) {
    case 'nullValue':
      return null;
    case 'numberValue':
      return Number(v.numberValue);
    case 'stringValue':
      return v.stringValue;
    case 'boolValue':
      return v.boolValue;
    case 'structValue':
      return structToJson(v.structValue as DecodedStruct);
    case 'listValue':
      return ((v.listValue as { values?: DecodedValue[] } | undefined)?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

export function structToJson(s: DecodedStruct | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s?.fields ?? {}).map(([k, v]) => [k, valueToJson(v)]));
}

export function jsonToValue(v: unknown): Value {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v as Record<string, unknown>) };
}

export function jsonToStruct(o: Readonly<Record<string, unknown>>): Struct {
  return { fields: Object.fromEntries(Object.entries(o).map(([k, v]) => [k, jsonToValue(v)])) };
}
