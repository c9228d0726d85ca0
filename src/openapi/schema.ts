// The schema dialect: OpenAPI 3.1 schemas are JSON Schema 2020-12 already; 3.0 schemas (an
// extended subset of draft 04/05) are rewritten once at load so one Ajv 2020 instance validates
// both - `nullable: true` becomes a `null` type, boolean `exclusiveMinimum`/`exclusiveMaximum`
// become numbers. For both versions, `readOnly` properties leave `required` (they are required in
// responses only; a request that leaves them out is valid). Internal `$ref`s are followed here for
// the few shape questions the deserializers ask (is this parameter an array, an object?).
import type { OpenApiDocument, OpenApiVersion } from './load.js';

type Node = Record<string, unknown>;

const isNode = (v: unknown): v is Node => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Decodes one JSON pointer token of a URI fragment (RFC 6901: percent-decoded, then ~1, ~0). */
const unescapeToken = (t: string): string => decodeURIComponent(t).replace(/~1/g, '/').replace(/~0/g, '~');

/** The tokens of an internal reference (`#/a/b` -> ['a', 'b']). */
export const refTokens = (ref: string): string[] => ref.slice(1).split('/').slice(1).map(unescapeToken);

/** A JSON pointer for messages (RFC 6901, not percent-encoded). */
export const jsonPointer = (tokens: readonly (string | number)[]): string => tokens.map((t) => `/${String(t).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');

/** An internal reference (URI fragment) to the given tokens. */
export const toRef = (tokens: readonly (string | number)[]): string =>
  `#/${tokens.map((t) => encodeURIComponent(String(t).replace(/~/g, '~0').replace(/\//g, '~1'))).join('/')}`;

/** The value at an internal reference (`#/a/b`), or undefined. */
export function atPointer(doc: OpenApiDocument, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  let cur: unknown = doc;
  for (const token of refTokens(ref)) {
    if (!isNode(cur) && !Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[token];
  }
  return cur;
}

/** Follows `$ref` chains (bounded: a cycle of references resolves to undefined). */
export function deref(doc: OpenApiDocument, node: unknown): Node | undefined {
  let cur = node;
  for (let i = 0; i < 32; i++) {
    if (!isNode(cur)) return undefined;
    if (typeof cur.$ref !== 'string') return cur;
    cur = atPointer(doc, cur.$ref);
  }
  return undefined;
}

export type Shape = 'array' | 'object' | 'primitive';

/** What a schema's instances look like, for deserializing strings into it (allOf members are looked into). */
export function shapeOf(doc: OpenApiDocument, schema: unknown, depth = 0): Shape {
  const s = deref(doc, schema);
  if (!s || depth > 8) return 'primitive';
  const types = Array.isArray(s.type) ? (s.type as unknown[]) : [s.type];
  if (types.includes('array') || s.items !== undefined || s.prefixItems !== undefined) return 'array';
  if (types.includes('object') || s.properties !== undefined || s.additionalProperties !== undefined) return 'object';
  for (const sub of Array.isArray(s.allOf) ? s.allOf : []) {
    const shape = shapeOf(doc, sub, depth + 1);
    if (shape !== 'primitive') return shape;
  }
  return 'primitive';
}

/** The properties of an object schema (allOf members merged, references followed). */
export function propertiesOf(doc: OpenApiDocument, schema: unknown, depth = 0): Record<string, unknown> {
  const s = deref(doc, schema);
  if (!s || depth > 8) return {};
  const out: Record<string, unknown> = {};
  for (const sub of Array.isArray(s.allOf) ? s.allOf : []) Object.assign(out, propertiesOf(doc, sub, depth + 1));
  if (isNode(s.properties)) Object.assign(out, s.properties);
  return out;
}

const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'] as const;
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'] as const;
const SCHEMA_SINGLE = ['items', 'additionalProperties', 'not', 'contains', 'if', 'then', 'else', 'propertyNames', 'unevaluatedItems', 'unevaluatedProperties', 'additionalItems'] as const;

/** Visits every subschema of a schema, children first. */
function walkSchema(s: unknown, visit: (s: Node) => void, seen: Set<Node>): void {
  if (!isNode(s) || seen.has(s)) return;
  seen.add(s);
  for (const k of SCHEMA_MAPS) if (isNode(s[k])) for (const v of Object.values(s[k])) walkSchema(v, visit, seen);
  for (const k of SCHEMA_LISTS) if (Array.isArray(s[k])) for (const v of s[k] as unknown[]) walkSchema(v, visit, seen);
  for (const k of SCHEMA_SINGLE) {
    const v = s[k];
    if (Array.isArray(v)) for (const x of v as unknown[]) walkSchema(x, visit, seen);
    else walkSchema(v, visit, seen);
  }
  visit(s);
}

/** 3.0 -> 2020-12, in place. */
function from30(s: Node): void {
  for (const [bound, limit] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (s[bound] === true && typeof s[limit] === 'number') {
      s[bound] = s[limit];
      delete s[limit];
    } else if (typeof s[bound] === 'boolean') delete s[bound];
  }
  if (s.nullable === true) {
    if (typeof s.type === 'string') s.type = [s.type, 'null'];
    if (Array.isArray(s.enum) && !s.enum.includes(null)) s.enum = [...(s.enum as unknown[]), null];
    if (s.type === undefined && s.$ref === undefined) {
      // No type to widen (e.g. nullable next to allOf): the composition or null.
      const rest = { ...s };
      delete rest.nullable;
      for (const k of Object.keys(s)) delete s[k];
      s.anyOf = [rest, { type: 'null' }];
      return;
    }
  }
  delete s.nullable;
}

/** `required` without readOnly properties (requests never have to carry them). */
function requestRequired(doc: OpenApiDocument, s: Node): void {
  if (!Array.isArray(s.required) || !isNode(s.properties)) return;
  const props = s.properties;
  s.required = (s.required as unknown[]).filter((name) => typeof name !== 'string' || deref(doc, props[name])?.readOnly !== true);
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** Every place a schema may sit in a bundled document (references into them are inside these). */
function documentSchemas(doc: OpenApiDocument): unknown[] {
  const out: unknown[] = [];
  const content = (c: unknown): void => {
    if (isNode(c)) for (const m of Object.values(c)) if (isNode(m)) out.push(m.schema);
  };
  const parameter = (p: unknown): void => {
    if (!isNode(p)) return;
    out.push(p.schema);
    content(p.content);
  };
  const components = isNode(doc.components) ? doc.components : {};
  if (isNode(components.schemas)) out.push(...Object.values(components.schemas));
  for (const group of ['parameters', 'headers'] as const) if (isNode(components[group])) Object.values(components[group]).forEach(parameter);
  for (const group of ['requestBodies', 'responses'] as const) {
    if (isNode(components[group])) for (const b of Object.values(components[group])) if (isNode(b)) content(b.content);
  }
  const paths = isNode(doc.paths) ? doc.paths : {};
  for (const item of Object.values(paths)) {
    if (!isNode(item)) continue;
    if (Array.isArray(item.parameters)) item.parameters.forEach(parameter);
    for (const m of METHODS) {
      const op = item[m];
      if (!isNode(op)) continue;
      if (Array.isArray(op.parameters)) op.parameters.forEach(parameter);
      if (isNode(op.requestBody)) content(op.requestBody.content);
    }
  }
  return out;
}

/** Rewrites the (bundled, privately owned) document's schemas for request validation by Ajv 2020. */
export function prepareDocument(doc: OpenApiDocument, version: OpenApiVersion): OpenApiDocument {
  const seen = new Set<Node>();
  for (const s of documentSchemas(doc)) {
    walkSchema(s, (node) => {
      requestRequired(doc, node);
      if (version === '3.0') from30(node);
    }, seen);
  }
  return doc;
}
