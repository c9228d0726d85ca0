// OPA's decision-log mask rules (system.log.mask; v1/plugins/logs/mask.go), with its semantics:
// the rule value is a list of JSON pointers to erase ("/input/password") or objects
// {"op": "remove"|"upsert", "path", "value"}; only /input, /result (and /nd_builtin_cache, which
// our events never have) may be named. A malformed list fails as a whole (OPA then logs no event);
// a pointer that names nothing is skipped and not listed. Applied pointers are listed in the
// event's `erased` / `masked`, escaped as OPA lists them (url.PathEscape of each segment).
import { pathUnescape } from '../../envoy/go-url.js';
import type { DecisionEvent } from './event.js';

export type MaskOp = 'remove' | 'upsert';

export interface MaskRule {
  readonly op: MaskOp;
  /** The pointer as OPA lists it: "/" + escaped segments. */
  readonly pointer: string;
  /** Segments as OPA looks them up (url.PathEscape of each raw segment, OPA's own quirk). */
  readonly parts: readonly string[];
  readonly value?: unknown;
}

export class MaskError extends Error {
  override readonly name = 'MaskError';
}

/** The mask entrypoint every bundle may define (OPA's default decision_logs.mask_decision). */
export const MASK_ENTRYPOINT = 'system/log/mask';

const SEGMENT_SAFE = /^[A-Za-z0-9\-._~$&+:=@]*$/;

/** Go's url.PathEscape: every byte outside the path-segment set as %XX. */
export function pathEscape(s: string): string {
  if (SEGMENT_SAFE.test(s)) return s;
  let out = '';
  for (const ch of s) {
    if (SEGMENT_SAFE.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function rule(path: unknown, op: unknown, value: unknown): MaskRule {
  if (op !== 'remove' && op !== 'upsert') throw new MaskError(`mask op is not supported: ${String(op)}`);
  if (typeof path !== 'string' || path === '') throw new MaskError('mask must be non-empty');
  if (!path.startsWith('/')) throw new MaskError('mask must be slash-prefixed');
  const raw = path.slice(1).split('/');
  if (raw[0] !== 'input' && raw[0] !== 'result' && raw[0] !== 'nd_builtin_cache') throw new MaskError(`mask prefix not allowed: ${raw[0]}`);
  const parts = raw.map((p) => {
    try {
      pathUnescape(p);
    } catch {
      throw new MaskError('mask has an invalid escape');
    }
    return pathEscape(p);
  });
  return { op, pointer: `/${parts.join('/')}`, parts, ...(op === 'upsert' ? { value: value ?? null } : {}) };
}

// A Rego set is ordered (strings before objects, each in order), and OPA applies the rules of
// `mask contains ...` in that order; the wasm result lists them in its own order, so they are
// sorted here as OPA's set would hold them (objects by op, path, value).
const setKey = (v: unknown): string => {
  if (typeof v === 'string') return `0${v}`;
  const o = (v ?? {}) as Record<string, unknown>;
  return `1${JSON.stringify([o.op, o.path, o.value ?? null])}`;
};
const setOrder = (a: unknown, b: unknown): number => {
  const ka = setKey(a);
  const kb = setKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** The rules of a system.log.mask value (undefined: none). Throws MaskError where OPA's newMaskRuleSet fails. */
export function parseMaskRules(value: unknown): MaskRule[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new MaskError('unexpected rule format');
  const items = [...(value as unknown[])].sort(setOrder);
  return items.map((v) => {
    if (typeof v === 'string') return rule(v, 'remove', undefined);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new MaskError('invalid mask rule format');
    const o = v as Record<string, unknown>;
    // A key that is present must be a non-empty string; an absent op is "" (refused), as in OPA.
    if ('op' in o && (typeof o.op !== 'string' || o.op === '')) throw new MaskError('invalid "op" value');
    if ('path' in o && (typeof o.path !== 'string' || o.path === '')) throw new MaskError('invalid "path" value');
    return rule(o.path ?? '', o.op ?? '', o.value);
  });
}

type Json = unknown;
const isRecord = (v: Json): v is Record<string, Json> => v !== null && typeof v === 'object' && !Array.isArray(v);
/** Go's strconv.Atoi for an index (sign allowed); NaN when it is none. */
const atoi = (s: string): number => (/^[+-]?\d{1,15}$/.test(s) ? Number(s) : NaN);
const index = (s: string, len: number): number | undefined => {
  const i = atoi(s);
  return i >= 0 && i < len ? i : undefined;
};

/** mask.go removeValue on a root holder; false where OPA's errMaskInvalidObject is (nothing removed). */
function removeAt(holder: { root: Json }, p: readonly string[]): boolean {
  let node = holder.root;
  let parent: Json;
  let key = '';
  for (const seg of p.slice(0, -1)) {
    if (isRecord(node)) {
      if (!Object.hasOwn(node, seg)) return false;
      parent = node;
      key = seg;
      node = node[seg];
    } else if (Array.isArray(node)) {
      const i = index(seg, node.length);
      if (i === undefined) return false;
      parent = node;
      key = seg;
      node = node[i] as Json;
    } else return false;
  }
  const target = p[p.length - 1]!;
  if (isRecord(node)) {
    if (!Object.hasOwn(node, target)) return false;
    delete node[target];
    return true;
  }
  if (!Array.isArray(node)) return false;
  const t = index(target, node.length);
  if (t === undefined) return false;
  const shorter = node.filter((_, i) => i !== t);
  if (Array.isArray(parent)) parent[atoi(key)] = shorter;
  else if (isRecord(parent)) parent[key] = shorter;
  else holder.root = shorter;
  return true;
}

/** mask.go mkdirp: missing objects are created on the way; false where it fails (nothing listed). */
function upsertAt(root: Json, p: readonly string[], value: Json): boolean {
  let node = root;
  for (const seg of p.slice(0, -1)) {
    if (isRecord(node)) {
      if (!Object.hasOwn(node, seg)) node[seg] = {};
      node = node[seg];
    } else if (Array.isArray(node)) {
      const i = atoi(seg);
      if (!(i >= 0) || i >= node.length) return false;
      node = node[i] as Json;
    } else return false;
  }
  const last = p[p.length - 1]!;
  if (isRecord(node)) {
    node[last] = value;
    return true;
  }
  if (!Array.isArray(node)) return false;
  const i = index(last, node.length);
  if (i === undefined) return false;
  node[i] = value;
  return true;
}

/**
 * Applies the rules to the event in order, as OPA's maskRuleSet.Mask does. The event's input and
 * result are deep-copied first when a rule names them, so the caller's objects never change.
 */
export function applyMask(event: DecisionEvent, rules: readonly MaskRule[]): void {
  const copied = new Set<string>();
  for (const r of rules) {
    const part = r.parts[0] as 'input' | 'result' | 'nd_builtin_cache';
    if (part === 'nd_builtin_cache' || event[part] === undefined) continue;
    if (!copied.has(part)) {
      event[part] = structuredClone(event[part]);
      copied.add(part);
    }
    const rest = r.parts.slice(1);
    if (r.op === 'remove') {
      if (rest.length === 0) delete event[part];
      else {
        const holder = { root: event[part] };
        if (!removeAt(holder, rest)) continue;
        event[part] = holder.root;
      }
      (event.erased ??= []).push(r.pointer);
    } else {
      if (rest.length === 0) event[part] = r.value;
      else if (!(isRecord(event[part]) || Array.isArray(event[part])) || !upsertAt(event[part], rest, r.value)) continue;
      (event.masked ??= []).push(r.pointer);
    }
  }
}
