// Parameters as the OpenAPI `style`/`explode` rules serialize them, read back into the strings,
// arrays and objects the schemas describe (type coercion of the strings is Ajv's, in validate.ts).
// Path: simple, label, matrix. Query: form, spaceDelimited, pipeDelimited, deepObject. Header:
// simple. Cookie: form. A parameter with `content` (e.g. application/json) is parsed as JSON.
// Linear in the input: splits and prefix checks only.
import { dict } from '../lib/records.js';
import type { Shape } from './schema.js';

export type ParamIn = 'path' | 'query' | 'header' | 'cookie';
export type Style = 'simple' | 'label' | 'matrix' | 'form' | 'spaceDelimited' | 'pipeDelimited' | 'deepObject';

export interface ParamSpec {
  readonly name: string;
  readonly in: ParamIn;
  readonly style: Style;
  readonly explode: boolean;
  readonly shape: Shape;
  /** Serialized as a JSON document (`content: application/json`). */
  readonly json: boolean;
  /** For query form/explode objects: the property names that are its keys. */
  readonly keys: readonly string[];
}

/** A parameter whose text cannot be read as its serialization says (answered as a 400 for it). */
export class ParamSyntaxError extends Error {
  constructor(
    readonly param: ParamSpec,
    problem: string,
  ) {
    super(problem);
  }
}

export function defaultStyle(where: ParamIn): Style {
  return where === 'query' || where === 'cookie' ? 'form' : 'simple';
}

/** "k1,v1,k2,v2" -> {k1: v1, k2: v2}. */
function pairs(items: readonly string[]): Record<string, string> {
  const out = dict<string>();
  for (let i = 0; i + 1 < items.length; i += 2) out[items[i]!] = items[i + 1]!;
  return out;
}

/** "k1=v1<sep>k2=v2" items -> {k1: v1, k2: v2}. */
function assignments(items: readonly string[]): Record<string, string> {
  const out = dict<string>();
  for (const it of items) {
    const eq = it.indexOf('=');
    if (eq > 0) out[it.slice(0, eq)] = it.slice(eq + 1);
  }
  return out;
}

/** One delimited string (simple style and the like) into the parameter's shape. */
function shaped(p: ParamSpec, text: string, sep: string): unknown {
  if (p.shape === 'primitive') return text;
  const items = text === '' ? [] : text.split(sep);
  if (p.shape === 'array') return items;
  return p.explode ? assignments(items) : pairs(items);
}

function parseJson(p: ParamSpec, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ParamSyntaxError(p, 'is not valid JSON');
  }
}

/** A path segment's value (already percent-decoded by the router). */
export function pathValue(p: ParamSpec, raw: string): unknown {
  if (p.json) return parseJson(p, raw);
  switch (p.style) {
    case 'label': {
      if (!raw.startsWith('.')) throw new ParamSyntaxError(p, 'must start with "." (label style)');
      return shaped(p, raw.slice(1), p.explode ? '.' : ',');
    }
    case 'matrix': {
      const prefix = `;${p.name}`;
      if (p.shape === 'object' && p.explode) return assignments(raw.split(';').slice(1));
      if (p.shape === 'array' && p.explode) {
        return raw
          .split(';')
          .slice(1)
          .map((it) => (it.startsWith(`${p.name}=`) ? it.slice(p.name.length + 1) : it));
      }
      if (!raw.startsWith(`${prefix}=`) && raw !== prefix) throw new ParamSyntaxError(p, `must start with "${prefix}=" (matrix style)`);
      return shaped(p, raw.slice(prefix.length + 1), ',');
    }
    default:
      return shaped(p, raw, ',');
  }
}

/** The query's value for `p` (undefined: absent), and the query keys it used. */
export function queryValue(p: ParamSpec, query: Readonly<Record<string, readonly string[]>>): { value: unknown; used: readonly string[] } {
  if (p.style === 'deepObject') {
    const value = dict<string>();
    const used: string[] = [];
    const prefix = `${p.name}[`;
    for (const [k, vs] of Object.entries(query)) {
      if (k.startsWith(prefix) && k.endsWith(']')) {
        value[k.slice(prefix.length, -1)] = vs[0] ?? '';
        used.push(k);
      }
    }
    return { value: used.length > 0 ? value : undefined, used };
  }
  if (p.shape === 'object' && p.explode && p.style === 'form' && !p.json) {
    const value = dict<string>();
    const used = p.keys.filter((k) => Object.hasOwn(query, k));
    for (const k of used) value[k] = query[k]![0] ?? '';
    return { value: used.length > 0 ? value : undefined, used };
  }
  const vs = Object.hasOwn(query, p.name) ? query[p.name] : undefined;
  if (vs === undefined) return { value: undefined, used: [] };
  const used = [p.name];
  if (p.json) return { value: parseJson(p, vs[0] ?? ''), used };
  if (p.shape === 'array') {
    if (p.explode && p.style === 'form') return { value: [...vs], used };
    const sep = p.style === 'spaceDelimited' ? ' ' : p.style === 'pipeDelimited' ? '|' : ',';
    return { value: (vs[0] ?? '') === '' ? [] : (vs[0] ?? '').split(sep), used };
  }
  if (p.shape === 'object') return { value: pairs((vs[0] ?? '').split(',')), used };
  return { value: vs[0] ?? '', used };
}

/** A header's value (names are lower-case; Envoy joins repeated headers with ','). */
export function headerValue(p: ParamSpec, headers: ReadonlyMap<string, string>): unknown {
  const raw = headers.get(p.name.toLowerCase());
  if (raw === undefined) return undefined;
  return p.json ? parseJson(p, raw) : shaped(p, raw.trim(), ',');
}

/** The cookies of a Cookie header (RFC 6265 pairs; the first of a repeated name wins). */
export function parseCookies(header: string | undefined): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (header === undefined) return out;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

export function cookieValue(p: ParamSpec, cookies: ReadonlyMap<string, string>): unknown {
  const raw = cookies.get(p.name);
  if (raw === undefined) return undefined;
  return p.json ? parseJson(p, raw) : shaped(p, raw, ',');
}
