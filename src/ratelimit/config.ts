// Rate-limit configuration files in the envoyproxy/ratelimit YAML format, loaded unchanged and
// validated by its rules (src/config/config_impl.go): one set of known keys checked at every
// level (a known key at another level is ignored, as there), floats refused, duplicate
// composite keys, empty keys and domains, unlimited with a unit, empty or self-naming
// `replaces`, `share_threshold` without a wildcard. Our additions are new keys: `burst` (token
// bucket capacity), `window_seconds` (any window length), `quota` (counted exactly in fixed
// windows), and `rate_limits` (several limits on one descriptor, e.g. burst plus sustained).
import { readFile } from 'node:fs/promises';
import { ConfigError, type ConfigProblem } from '../lib/errors.js';
import { UNIT_SECONDS, type Algorithm, type Limit, type ReportedUnit } from './limits.js';
import { readYamlTree, type Tree, type TreeMap } from './yaml-tree.js';

/** envoyproxy/ratelimit's keys (validKeys), then ours. */
const KNOWN_KEYS = new Set([
  'domain', 'key', 'value', 'descriptors', 'rate_limit', 'unit', 'requests_per_unit', 'unlimited', 'shadow_mode', 'quota_mode',
  'name', 'replaces', 'detailed_metric', 'value_to_metric', 'share_threshold', 'metadata',
  'rate_limits', 'burst', 'window_seconds', 'quota',
]);

export interface Wildcard {
  /** The composite key with its `*`s, e.g. "path_/api/*"; matched against "key_value". */
  readonly id: string;
  /** `id` split on "*" at load (no work per request). */
  readonly parts: readonly string[];
  readonly node: Node;
}

export interface Node {
  readonly limits: readonly Limit[];
  /** Children by composite key: "key_value" (wildcard values included, literally) or "key". */
  readonly children: ReadonlyMap<string, Node>;
  /** Children whose composite key holds a "*", in file order. */
  readonly wildcards: readonly Wildcard[];
  /** The descriptor's stat key, as upstream names it: "domain.key_value.key". */
  readonly path: string;
  readonly shareThreshold: boolean;
  readonly valueToMetric: boolean;
  /** `metadata`, as a JSON object (upstream returns it as response dynamic metadata). */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export interface DomainConfig {
  readonly domain: string;
  readonly root: Node;
  readonly file: string;
}

export interface CompileOptions {
  /** Algorithm for ordinary limits (quotas always count in fixed windows). */
  readonly algorithm: Algorithm;
  /** One domain in several files: merge their descriptors (upstream MERGE_DOMAIN_CONFIG), else refuse. */
  readonly mergeDomains?: boolean;
}

interface MutableNode {
  limits: Limit[];
  children: Map<string, MutableNode>;
  wildcards: { id: string; parts: string[]; node: MutableNode }[];
  path: string;
  shareThreshold: boolean;
  valueToMetric: boolean;
  metadata?: Record<string, unknown>;
}

const U32_MAX = 4294967295;

/** Field readers with yaml.v2's conversions: a missing or null field is the zero value. */
class Reader {
  constructor(readonly out: ConfigProblem[]) {}

  private bad(n: Tree, what: string): void {
    this.out.push({ keyPath: n.at || '/', problem: `must be ${what}` });
  }

  str(n: Tree | undefined): string {
    if (!n || (n.t === 'scalar' && n.kind === 'null')) return '';
    if (n.t === 'scalar') return n.kind === 'string' ? String(n.value) : n.text;
    this.bad(n, 'a string');
    return '';
  }

  bool(n: Tree | undefined): boolean {
    if (!n || (n.t === 'scalar' && n.kind === 'null')) return false;
    if (n.t === 'scalar' && n.kind === 'bool') return n.value === true;
    this.bad(n, 'a boolean');
    return false;
  }

  /** An unsigned 32-bit integer (requests_per_unit is a uint32). */
  u32(n: Tree | undefined, min = 0): number | undefined {
    if (!n || (n.t === 'scalar' && n.kind === 'null')) return undefined;
    if (n.t === 'scalar' && n.kind === 'int' && typeof n.value === 'number') {
      if (n.value >= min && n.value <= U32_MAX) return n.value;
      this.out.push({ keyPath: n.at, problem: `must be >= ${min} and <= ${U32_MAX}` });
      return undefined;
    }
    this.bad(n, 'an integer');
    return undefined;
  }

  maps(n: Tree | undefined): TreeMap[] {
    if (!n || (n.t === 'scalar' && n.kind === 'null')) return [];
    if (n.t === 'seq') return n.items.filter((x): x is TreeMap => x.t === 'map'); // non-maps: refused by checkKeys
    this.bad(n, 'a list');
    return [];
  }

  map(n: Tree | undefined): TreeMap | undefined {
    if (!n || (n.t === 'scalar' && n.kind === 'null')) return undefined;
    if (n.t === 'map') return n;
    this.bad(n, 'a mapping');
    return undefined;
  }
}

/** upstream validateYamlKeys: every key known (metadata's content is free), lists hold mappings, no floats. */
function checkKeys(m: TreeMap, out: ConfigProblem[]): void {
  for (const k of m.badKeys) out.push({ keyPath: m.at || '/', problem: `key is not of type string: ${k}` });
  for (const [k, v] of m.entries) {
    if (!KNOWN_KEYS.has(k)) {
      out.push({ keyPath: v.at, problem: 'unknown key' });
      continue;
    }
    if (k === 'metadata') continue;
    if (v.t === 'map') checkKeys(v, out);
    else if (v.t === 'seq') {
      for (const item of v.items) {
        if (item.t === 'map') checkKeys(item, out);
        else out.push({ keyPath: item.at, problem: 'a list here must hold mappings' });
      }
    } else if (v.kind === 'float') out.push({ keyPath: v.at, problem: 'must not be a float' });
  }
}

function plain(n: Tree): unknown {
  if (n.t === 'scalar') return n.value;
  if (n.t === 'seq') return n.items.map(plain);
  return Object.fromEntries([...n.entries].map(([k, v]) => [k, plain(v)]));
}

function compileLimit(r: Reader, spec: TreeMap, d: { shadow: boolean; quotaMode: boolean; detailed: boolean }, opts: CompileOptions): Limit | undefined {
  const { out } = r;
  const f = (k: string): Tree | undefined => spec.entries.get(k);
  const at = spec.at;
  const name = r.str(f('name'));
  const replaces: string[] = [];
  r.maps(f('replaces')).forEach((e) => {
    const n = r.str(e.entries.get('name'));
    if (n === '') out.push({ keyPath: e.at, problem: 'should have a name (an empty replaces entry)' });
    else if (n === name) out.push({ keyPath: e.at, problem: `replaces should not contain the name of the same descriptor (${JSON.stringify(n)})` });
    else replaces.push(n);
  });
  const unlimited = r.bool(f('unlimited'));
  const unitText = r.str(f('unit'));
  const unit = unitText.toLowerCase();
  const validUnit = Object.hasOwn(UNIT_SECONDS, unit);
  const windowSeconds = r.u32(f('window_seconds'), 1);
  const rpu = r.u32(f('requests_per_unit')) ?? 0; // absent: 0, as upstream (admits nothing)
  const burst = r.u32(f('burst'), 1);
  const quota = r.bool(f('quota'));
  const base = { ...(name !== '' ? { name } : {}), shadow: d.shadow, replaces: replaces.length > 0 ? replaces : NO_REPLACES, detailedMetric: d.detailed, quotaMode: d.quotaMode };
  if (unlimited) {
    // upstream refuses a valid unit only; an invalid one is ignored with the limit.
    if (validUnit || windowSeconds !== undefined) out.push({ keyPath: at, problem: 'should not specify a rate limit unit or window_seconds when unlimited' });
    return { ...base, requestsPerUnit: 0, windowSeconds: 1, reportedUnit: 'UNKNOWN', burst: 1, algorithm: opts.algorithm, unlimited: true };
  }
  let seconds: number | undefined;
  let reportedUnit: ReportedUnit = 'UNKNOWN';
  if (windowSeconds !== undefined) {
    if (unitText !== '') out.push({ keyPath: at, problem: 'set unit or window_seconds, not both' });
    if (windowSeconds > 31622400) out.push({ keyPath: `${at}/window_seconds`, problem: 'must be <= 31622400 (a year)' });
    seconds = windowSeconds;
  } else if (validUnit) {
    seconds = UNIT_SECONDS[unit];
    if (unit !== 'week') reportedUnit = unit.toUpperCase() as ReportedUnit;
  } else if (unitText === '') out.push({ keyPath: at, problem: 'a rate limit needs a unit (or window_seconds)' });
  else out.push({ keyPath: `${at}/unit`, problem: `invalid rate limit unit ${JSON.stringify(unitText)}` });
  if (seconds === undefined) return undefined;
  return { ...base, requestsPerUnit: rpu, windowSeconds: seconds, reportedUnit, burst: burst ?? Math.max(rpu, 1), algorithm: quota ? 'fixed_window' : opts.algorithm, unlimited: false };
}

function newNode(path: string): MutableNode {
  return { limits: [], children: new Map(), wildcards: [], path, shareThreshold: false, valueToMetric: false };
}

// Leaves share one empty children map and one empty wildcard list: 10,000 descriptors kept 10,000
// empty Maps and as many arrays (about 15% of the tree's heap), and a reload made them all anew.
const NO_CHILDREN = new Map<string, MutableNode>();
const NO_WILDCARDS: MutableNode['wildcards'] = [];
const NO_REPLACES: readonly string[] = [];

/** A compiled tree, its empty maps and lists shared. Only once every file is in: a merged domain adds to the nodes of an earlier file. */
function settle(root: MutableNode): MutableNode {
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.children.size === 0) n.children = NO_CHILDREN;
    else for (const c of n.children.values()) stack.push(c);
    if (n.wildcards.length === 0) n.wildcards = NO_WILDCARDS;
  }
  return root;
}

/** upstream loadDescriptors: compiles `descs` into `into` (a merged domain adds to its top level). */
function compileLevel(r: Reader, into: MutableNode, descs: readonly TreeMap[], parentPath: string, opts: CompileOptions): void {
  // Settled trees share their empty maps (settle): one written to would change every leaf of every loaded file.
  if (into.children === NO_CHILDREN) throw new Error('rate-limit tree already settled');
  const { out } = r;
  for (const d of descs) {
    const f = (k: string): Tree | undefined => d.entries.get(k);
    const key = r.str(f('key'));
    if (key === '') {
      out.push({ keyPath: `${d.at}/key`, problem: 'descriptor has an empty key' });
      continue;
    }
    const value = r.str(f('value'));
    const id = value === '' ? key : `${key}_${value}`;
    const path = `${parentPath}.${id}`;
    if (into.children.has(id)) {
      out.push({ keyPath: d.at, problem: `duplicate descriptor composite key ${JSON.stringify(id)} (${path})` });
      continue;
    }
    const flags = { shadow: r.bool(f('shadow_mode')), quotaMode: r.bool(f('quota_mode')), detailed: r.bool(f('detailed_metric')) };
    const node = newNode(path);
    node.valueToMetric = r.bool(f('value_to_metric'));
    node.shareThreshold = r.bool(f('share_threshold'));
    if (node.shareThreshold && !id.includes('*')) out.push({ keyPath: `${d.at}/share_threshold`, problem: `share_threshold can only be used with wildcard values (containing '*'), but found key ${JSON.stringify(id)}` });
    const spec = r.map(f('rate_limit'));
    if (spec) {
      const l = compileLimit(r, spec, flags, opts);
      if (l) node.limits.push(l);
    }
    const many = f('rate_limits');
    if (many && many.t === 'seq' && many.items.length === 0) out.push({ keyPath: many.at, problem: 'should hold at least one limit' });
    for (const s of r.maps(many)) {
      const l = compileLimit(r, s, flags, opts);
      if (l) node.limits.push(l);
    }
    const meta = r.map(f('metadata'));
    if (meta && meta.entries.size > 0) node.metadata = plain(meta) as Record<string, unknown>;
    compileLevel(r, node, r.maps(f('descriptors')), path, opts);
    if (id.includes('*')) into.wildcards.push({ id, parts: id.split('*'), node });
    into.children.set(id, node);
  }
}

function parse(file: string, text: string): { r: Reader; root: TreeMap; domain: string } {
  const { tree, problems } = readYamlTree(text);
  if (!tree) throw new ConfigError(file, problems);
  const out: ConfigProblem[] = [];
  // An empty file is an empty mapping (and then lacks its domain).
  const root: TreeMap = tree.t === 'map' ? tree : { t: 'map', at: '', entries: new Map(), badKeys: [] };
  if (tree.t !== 'map' && !(tree.t === 'scalar' && tree.kind === 'null')) out.push({ keyPath: '/', problem: 'must be a mapping' });
  checkKeys(root, out);
  const r = new Reader(out);
  const domain = r.str(root.entries.get('domain'));
  if (domain === '') out.push({ keyPath: '/domain', problem: 'required (config file cannot have empty domain)' });
  return { r, root, domain };
}

function compileInto(file: string, parsed: ReturnType<typeof parse>, opts: CompileOptions, existing?: MutableNode): { domain: string; root: MutableNode } {
  const { r, root, domain } = parsed;
  const node = existing ?? newNode(domain);
  compileLevel(r, node, r.maps(root.entries.get('descriptors')), domain, opts);
  if (r.out.length > 0) throw new ConfigError(file, r.out);
  return { domain, root: node };
}

/** Parses and compiles one file's text. */
export function compileRateLimitFile(file: string, text: string, opts: CompileOptions): DomainConfig {
  const { domain, root } = compileInto(file, parse(file, text), opts);
  return { domain, file, root: settle(root) };
}

/** Loads several files; a domain in two files is refused, or merged with opts.mergeDomains (as upstream). */
export async function loadRateLimitFiles(files: readonly string[], opts: CompileOptions): Promise<ReadonlyMap<string, DomainConfig>> {
  const domains = new Map<string, { file: string; root: MutableNode }>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, [{ keyPath: '/', problem: `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
    }
    // Parsed once: a file of 10,000 descriptors takes ~100 MB while its YAML document is read.
    const parsed = parse(file, text);
    const prev = domains.get(parsed.domain);
    if (prev && !opts.mergeDomains) throw new ConfigError(file, [{ keyPath: '/domain', problem: `duplicate domain ${JSON.stringify(parsed.domain)} (also in ${prev.file}; ratelimit.merge_domain_configs merges them)` }]);
    const { domain, root } = compileInto(file, parsed, opts, prev?.root);
    if (!prev) domains.set(domain, { file, root });
  }
  return new Map([...domains].map(([domain, d]) => [domain, { domain, file: d.file, root: settle(d.root) }]));
}
