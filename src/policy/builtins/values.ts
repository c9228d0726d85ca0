// What crosses the wasm boundary for a host built-in: the SDK hands each argument over as parsed
// JSON (a Rego set arrives as an array), and we hand the result back as JSON text, which lets an
// int64 (nanoseconds) travel exactly as a bigint. Argument readers throw BuiltinArgError, which the
// index turns into an undefined result, as OPA does for built-in errors (non-strict evaluation).

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A result: JSON, with bigint for exact integers. */
export type Value = null | boolean | number | bigint | string | Value[] | { [key: string]: Value };

export class BuiltinArgError extends Error {
  override readonly name = 'BuiltinArgError';
}

export function isObject(v: unknown): v is { [key: string]: Json } {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function str(v: unknown, operand: number): string {
  if (typeof v !== 'string') throw new BuiltinArgError(`operand ${operand} must be string`);
  return v;
}

export function num(v: unknown, operand: number): number {
  if (typeof v !== 'number') throw new BuiltinArgError(`operand ${operand} must be number`);
  return v;
}

export function int(v: unknown, operand: number): number {
  const n = num(v, operand);
  if (!Number.isInteger(n)) throw new BuiltinArgError(`operand ${operand} must be integer number but got floating-point number`);
  return n;
}

export function obj(v: unknown, operand: number): { [key: string]: Json } {
  if (!isObject(v)) throw new BuiltinArgError(`operand ${operand} must be object`);
  return v;
}

/** Go's string comparison (bytes of UTF-8), which orders OPA's sets and object keys. */
export function compareStrings(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A set of strings as the array OPA's JSON shows it: distinct and sorted. */
export function stringSet(items: Iterable<string>): string[] {
  return [...new Set(items)].sort(compareStrings);
}

/** The JSON text of a result (bigint as its exact digits). */
export function toJsonText(v: Value): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new BuiltinArgError('result is not a finite number');
    return JSON.stringify(v);
  }
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toJsonText).join(',')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}:${toJsonText(x)}`)
    .join(',')}}`;
}
