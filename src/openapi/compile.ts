// One loaded document -> its operations, each with everything compiled that a request needs:
// the parameter deserializers, one Ajv validator for all of its parameters together (path, query,
// header, cookie as one object: required parameters and unknown query parameters are schema
// keywords there), and one validator per request-body media type. Schemas are referenced into the
// document by JSON pointer, so `$ref`s (also recursive ones) resolve as the document says.
// Compilation happens here, at load; nothing is compiled per request.
import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { OpenApiDocument } from './load.js';
import { SpecLoadError } from './load.js';
import { defaultStyle, type ParamIn, type ParamSpec, type Style } from './params.js';
import { patternEngine } from './pattern-engine.js';
import { deref, jsonPointer, propertiesOf, refTokens, shapeOf, toRef, type Shape } from './schema.js';

type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => v !== null && typeof v === 'object' && !Array.isArray(v);

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;
const STYLES: readonly Style[] = ['simple', 'label', 'matrix', 'form', 'spaceDelimited', 'pipeDelimited', 'deepObject'];
/** Header parameters the OpenAPI specification says are ignored (HTTP itself carries them). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);

export type BodyKind = 'json' | 'form' | 'multipart' | 'other';

export interface MediaEntry {
  /** The media range as the spec names it, lower-case, without parameters (application/json, image/*). */
  readonly range: string;
  readonly kind: BodyKind;
  readonly validate?: ValidateFunction;
  /** Form and multipart bodies: which fields are arrays (every value kept) - the rest take their first value. */
  readonly arrays?: ReadonlySet<string>;
}

/** What the policy sees as `input.operation`. */
export interface OperationView {
  readonly spec: string;
  readonly operation_id: string | null;
  readonly method: string;
  readonly path_template: string;
  readonly tags: readonly string[];
  /** The operation's security requirements (or the document's), e.g. [{oauth: ["orders:write"]}]. */
  readonly security: readonly Readonly<Record<string, readonly string[]>>[];
  /** The operation's `x-` extensions. */
  readonly extensions: Readonly<Record<string, unknown>>;
  readonly deprecated: boolean;
}

export interface CompiledOperation {
  /** Inventory and metric name: the operationId, else "METHOD /template". */
  readonly id: string;
  readonly method: string;
  /** As the spec writes it (without the binding's path prefix). */
  readonly template: string;
  readonly view: OperationView;
  readonly params: readonly ParamSpec[];
  readonly validateParams: ValidateFunction;
  readonly body?: { readonly required: boolean; readonly media: readonly MediaEntry[] };
}

export interface CompileOptions {
  readonly name: string;
  readonly refuseUnknownQuery: boolean;
}

const pointer = toRef;

// CommonJS: the plugin is module.exports and its .default (typed as the namespace).
const addFormats = (addFormatsModule as unknown as { default: (ajv: Ajv2020) => Ajv2020 }).default;

/**
 * The two Ajv instances of one stage build: bodies as sent (JSON), and strings read back into their
 * types (parameters, form and multipart fields: coerceTypes). `allErrors: false`: the first failure
 * is enough for the answer and bounds the work an attacker can ask for.
 */

export class SchemaCompiler {
  readonly exact: Ajv2020;
  readonly coercing: Ajv2020;
  private docs = 0;
  readonly warnings: string[] = [];

  constructor() {
    const logger = { log: () => undefined, warn: (...a: unknown[]) => void this.warnings.push(a.map(String).join(' ').slice(0, 300)), error: () => undefined };
    const common = { strict: false, allErrors: false, validateFormats: true, logger, code: { regExp: patternEngine } } as const;
    this.exact = addFormats(new Ajv2020(common));
    this.coercing = addFormats(new Ajv2020({ ...common, coerceTypes: 'array' }));
  }

  /** Registers a prepared document; its schemas are then referenced as `<id>#/pointer`. */
  addDocument(doc: OpenApiDocument): string {
    const id = `openapi-${this.docs++}`;
    this.exact.addSchema(doc, id);
    this.coercing.addSchema(doc, id);
    return id;
  }
}

function mediaKind(range: string): BodyKind {
  if (range === 'application/json' || range.endsWith('+json')) return 'json';
  if (range === 'application/x-www-form-urlencoded') return 'form';
  if (range === 'multipart/form-data') return 'multipart';
  return 'other';
}

interface ParamAt {
  readonly node: Node;
  /** Pointer tokens of the (dereferenced) parameter object. */
  readonly at: readonly (string | number)[];
}

/** The parameter object behind a (possibly referenced) entry, and where it is. */
function resolveParam(doc: OpenApiDocument, entry: unknown, at: readonly (string | number)[]): ParamAt | undefined {
  if (isNode(entry) && typeof entry.$ref === 'string') {
    const target = deref(doc, entry);
    const tokens = refTokens(entry.$ref);
    return target ? { node: target, at: tokens } : undefined;
  }
  return isNode(entry) ? { node: entry, at } : undefined;
}

/** Path-item parameters, overridden by the operation's own of the same name and location. */
function mergedParams(doc: OpenApiDocument, item: Node, op: Node, itemAt: (string | number)[], opAt: (string | number)[]): ParamAt[] {
  const byKey = new Map<string, ParamAt>();
  const add = (list: unknown, at: (string | number)[]): void => {
    if (!Array.isArray(list)) return;
    list.forEach((entry, i) => {
      const p = resolveParam(doc, entry, [...at, 'parameters', i]);
      if (p && typeof p.node.name === 'string' && typeof p.node.in === 'string') byKey.set(`${p.node.in}:${p.node.name}`, p);
    });
  };
  add(item.parameters, itemAt);
  add(op.parameters, opAt);
  return [...byKey.values()];
}

function paramSpec(doc: OpenApiDocument, p: Node, where: ParamIn): { spec: ParamSpec; schemaAt: (string | number)[] | undefined } {
  let schemaAt: string[] | undefined;
  let schema: unknown = p.schema;
  let json = false;
  if (schema === undefined && isNode(p.content)) {
    const [media, entry] = Object.entries(p.content)[0] ?? [];
    if (media !== undefined && isNode(entry)) {
      json = mediaKind(media.toLowerCase()) === 'json';
      schema = entry.schema;
      schemaAt = ['content', media, 'schema'];
    }
  } else if (schema !== undefined) schemaAt = ['schema'];
  const style = typeof p.style === 'string' && (STYLES as readonly string[]).includes(p.style) ? (p.style as Style) : defaultStyle(where);
  const explode = typeof p.explode === 'boolean' ? p.explode : style === 'form';
  const shape: Shape = shapeOf(doc, schema);
  return {
    spec: { name: String(p.name), in: where, style, explode, shape, json, keys: shape === 'object' ? Object.keys(propertiesOf(doc, schema)) : [] },
    schemaAt,
  };
}

function securityOf(doc: OpenApiDocument, op: Node): Record<string, string[]>[] {
  const list = Array.isArray(op.security) ? op.security : Array.isArray(doc.security) ? doc.security : [];
  return list.filter(isNode).map((req) => Object.fromEntries(Object.entries(req).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : []])));
}

const extensionsOf = (op: Node): Record<string, unknown> => Object.fromEntries(Object.entries(op).filter(([k]) => k.startsWith('x-')));

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

function compileOperation(
  compiler: SchemaCompiler,
  docId: string,
  doc: OpenApiDocument,
  opts: CompileOptions,
  template: string,
  method: string,
  item: Node,
  op: Node,
): CompiledOperation {
  const itemAt = ['paths', template];
  const opAt = [...itemAt, method];
  const params: ParamSpec[] = [];
  const groups: Record<ParamIn, { properties: Record<string, unknown>; required: string[] }> = {
    path: { properties: {}, required: [] },
    query: { properties: {}, required: [] },
    header: { properties: {}, required: [] },
    cookie: { properties: {}, required: [] },
  };
  for (const { node, at } of mergedParams(doc, item, op, itemAt, opAt)) {
    const where = node.in as ParamIn;
    if (!(where in groups)) continue;
    if (where === 'header' && IGNORED_HEADERS.has(String(node.name).toLowerCase())) continue;
    const { spec, schemaAt } = paramSpec(doc, node, where);
    params.push(spec);
    const key = where === 'header' ? spec.name.toLowerCase() : spec.name;
    groups[where].properties[key] = schemaAt ? { $ref: `${docId}${pointer([...at, ...schemaAt])}` } : {};
    if (node.required === true || where === 'path') groups[where].required.push(key);
  }
  const group = (g: { properties: Record<string, unknown>; required: string[] }, extra: object = {}): object => ({
    type: 'object',
    properties: g.properties,
    ...(g.required.length > 0 ? { required: g.required } : {}),
    ...extra,
  });
  const paramsSchema = {
    type: 'object',
    properties: {
      path: group(groups.path),
      query: group(groups.query, opts.refuseUnknownQuery ? { additionalProperties: false } : {}),
      header: group(groups.header),
      cookie: group(groups.cookie),
    },
  };
  const where = jsonPointer(opAt);
  let validateParams: ValidateFunction;
  try {
    validateParams = compiler.coercing.compile(paramsSchema);
  } catch (err) {
    throw new Error(`${where}/parameters: ${(err as Error).message}`);
  }

  let body: CompiledOperation['body'];
  const rb = deref(doc, op.requestBody);
  if (rb && isNode(rb.content)) {
    const rbAt: (string | number)[] = isNode(op.requestBody) && typeof op.requestBody.$ref === 'string' ? refTokens(op.requestBody.$ref) : [...opAt, 'requestBody'];
    const media: MediaEntry[] = [];
    for (const [rawRange, entry] of Object.entries(rb.content)) {
      const range = (rawRange.split(';')[0] ?? '').trim().toLowerCase();
      const kind = mediaKind(range);
      if (!isNode(entry) || entry.schema === undefined || kind === 'other') {
        media.push({ range, kind });
        continue;
      }
      const ref = { $ref: `${docId}${pointer([...rbAt, 'content', rawRange, 'schema'])}` };
      try {
        if (kind === 'json') media.push({ range, kind, validate: compiler.exact.compile(ref) });
        else {
          const props = propertiesOf(doc, entry.schema);
          const arrays = new Set(Object.entries(props).filter(([, s]) => shapeOf(doc, s) === 'array').map(([k]) => k));
          media.push({ range, kind, validate: compiler.coercing.compile(ref), arrays });
        }
      } catch (err) {
        throw new Error(`${jsonPointer([...opAt, 'requestBody', 'content', rawRange, 'schema'])}: ${(err as Error).message}`);
      }
    }
    body = { required: rb.required === true, media };
  }

  const operationId = typeof op.operationId === 'string' ? op.operationId : null;
  const upper = method.toUpperCase();
  const view: OperationView = deepFreeze({
    spec: opts.name,
    operation_id: operationId,
    method: upper,
    path_template: template,
    tags: Array.isArray(op.tags) ? op.tags.map(String) : [],
    security: securityOf(doc, op),
    extensions: structuredClone(extensionsOf(op)),
    deprecated: op.deprecated === true,
  });
  return { id: operationId ?? `${upper} ${template}`, method: upper, template, view, params, validateParams, ...(body ? { body } : {}) };
}

/** Every operation of the document, compiled. A schema Ajv cannot compile is a load error naming its pointer. */
export function compileDocument(compiler: SchemaCompiler, location: string, doc: OpenApiDocument, opts: CompileOptions): CompiledOperation[] {
  const docId = compiler.addDocument(doc);
  const out: CompiledOperation[] = [];
  const paths = isNode(doc.paths) ? doc.paths : {};
  for (const [template, rawItem] of Object.entries(paths)) {
    const item = deref(doc, rawItem);
    if (!item) continue;
    for (const method of HTTP_METHODS) {
      const op = item[method];
      if (!isNode(op)) continue;
      try {
        out.push(compileOperation(compiler, docId, doc, opts, template, method, item, op));
      } catch (err) {
        const m = (err as Error).message;
        const colon = m.indexOf(': ');
        throw new SpecLoadError(location, colon > 0 ? m.slice(0, colon) : jsonPointer(['paths', template, method]), (colon > 0 ? m.slice(colon + 2) : m).slice(0, 300));
      }
    }
  }
  return out;
}
