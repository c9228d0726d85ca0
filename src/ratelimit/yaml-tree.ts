// Reads a rate-limit YAML file the way envoyproxy/ratelimit does (gopkg.in/yaml.v2: YAML 1.1,
// so `yes`/`no` are booleans and `0x1F` an integer; a scalar read into a string field keeps its
// source text, so `value: 200` is the string "200"; of a key given twice in one mapping the last wins). The result is a
// small tree whose scalars keep that source text, for config.ts to type field by field.
import { errorMessage } from '../lib/errors.js';
import { isAlias, isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { ConfigProblem } from '../lib/errors.js';

export type Tree = TreeMap | TreeSeq | TreeScalar;
export interface TreeMap {
  readonly t: 'map';
  readonly at: string;
  readonly entries: ReadonlyMap<string, Tree>;
  /** Keys that are not strings (upstream: "key is not of type string"). */
  readonly badKeys: readonly string[];
}
export interface TreeSeq {
  readonly t: 'seq';
  readonly at: string;
  readonly items: readonly Tree[];
}
export interface TreeScalar {
  readonly t: 'scalar';
  readonly at: string;
  /** null, boolean, integer, float, or string (YAML 1.1 timestamps stay strings, as yaml.v2 leaves them). */
  readonly kind: 'null' | 'bool' | 'int' | 'float' | 'string';
  readonly value: null | boolean | number | string;
  /** The scalar's source text (yaml.v2 sets string fields from it). */
  readonly text: string;
}

/** Nodes one file may expand to (aliases included): a bound on alias bombs. */
const MAX_NODES = 200_000;

const esc = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');

function scalarOf(value: unknown, text: string, at: string, plain: boolean): TreeScalar {
  if (value === null || value === undefined) return { t: 'scalar', at, kind: 'null', value: null, text };
  if (typeof value === 'boolean') return { t: 'scalar', at, kind: 'bool', value, text };
  if (typeof value === 'number') {
    // yaml.v2 reads 1e3, 1.0, .inf as floats; the yaml package reads some of them as integers.
    const float = !Number.isInteger(value) || (plain && !/^[-+]?0x/i.test(text) && /[.eE]/.test(text));
    return { t: 'scalar', at, kind: float ? 'float' : 'int', value, text };
  }
  if (typeof value === 'string') return { t: 'scalar', at, kind: 'string', value, text };
  return { t: 'scalar', at, kind: 'string', value: text, text }; // a timestamp (Date): a string, as in yaml.v2
}

/** Parses `text`; YAML errors become problems at "/". */
export function readYamlTree(text: string): { tree?: Tree; problems: ConfigProblem[] } {
  const doc = parseDocument(text, { version: '1.1', uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) return { problems: doc.errors.map((e) => ({ keyPath: '/', problem: `YAML syntax error: ${e.message.split('\n')[0] ?? ''}` })) };
  try {
    doc.toJS({ maxAliasCount: 100 }); // the yaml package's own alias-bomb check, before the walk below
  } catch (err) {
    return { problems: [{ keyPath: '/', problem: `YAML: ${errorMessage(err)}` }] };
  }
  let budget = MAX_NODES;
  const anchors = new Map<unknown, unknown>();
  const walk = (n: unknown, at: string, d: Document): Tree => {
    if (--budget < 0) throw new RangeError('too many YAML nodes (aliases expand past 200000)');
    if (isAlias(n)) {
      if (!anchors.has(n)) anchors.set(n, n.resolve(d));
      return walk(anchors.get(n), at, d);
    }
    if (isMap(n)) {
      const entries = new Map<string, Tree>();
      const badKeys: string[] = [];
      for (const pair of n.items) {
        const k: unknown = isScalar(pair.key) ? pair.key.value : pair.key;
        if (typeof k !== 'string') {
          badKeys.push(isScalar(pair.key) ? String(pair.key.source ?? k) : String(k));
          continue;
        }
        entries.set(k, walk(pair.value, `${at}/${esc(k)}`, d));
      }
      return { t: 'map', at, entries, badKeys };
    }
    if (isSeq(n)) return { t: 'seq', at, items: n.items.map((x, i) => walk(x, `${at}/${i}`, d)) };
    if (isScalar(n)) return scalarOf(n.value, n.source === undefined ? String(n.value) : String(n.source), at, n.type === 'PLAIN' && n.tag === undefined);
    return scalarOf(null, '', at, true); // an empty value
  };
  try {
    return { tree: walk((doc as Document<YamlNode>).contents, '', doc), problems: [] };
  } catch (err) {
    return { problems: [{ keyPath: '/', problem: errorMessage(err) }] };
  }
}
