// Rate-limit configuration files in the envoyproxy/ratelimit YAML format, loaded unchanged and
// validated by its rules (unknown keys, duplicate domains, duplicate keys at one level,
// unlimited with a unit, ...), plus our additions as new keys: `burst` (token bucket
// capacity), `window_seconds` (any window length), `quota` (counted exactly in fixed windows),
// and `rate_limits` (several limits on one descriptor, e.g. burst plus sustained).
import { readFile } from 'node:fs/promises';
import { Type, type Static } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { describeSchemaError } from '../config/loader.js';
import { parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../lib/errors.js';
import { UNIT_SECONDS, type Algorithm, type Limit, type ReportedUnit } from './limits.js';

const strict = { additionalProperties: false } as const;

const RateLimitSpec = Type.Object(
  {
    requests_per_unit: Type.Optional(Type.Integer({ minimum: 0 })),
    unit: Type.Optional(Type.String()),
    unlimited: Type.Optional(Type.Boolean()),
    name: Type.Optional(Type.String({ minLength: 1 })),
    replaces: Type.Optional(Type.Array(Type.Object({ name: Type.Optional(Type.String()) }, strict))),
    // Ours:
    burst: Type.Optional(Type.Integer({ minimum: 1 })),
    window_seconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 31622400 })),
    quota: Type.Optional(Type.Boolean()),
  },
  strict,
);

const Descriptor = Type.Recursive(
  (Self) =>
    Type.Object(
      {
        key: Type.String(),
        value: Type.Optional(Type.String()),
        rate_limit: Type.Optional(RateLimitSpec),
        rate_limits: Type.Optional(Type.Array(RateLimitSpec, { minItems: 1 })),
        descriptors: Type.Optional(Type.Array(Self)),
        shadow_mode: Type.Optional(Type.Boolean()),
        detailed_metric: Type.Optional(Type.Boolean()),
      },
      strict,
    ),
  { $id: 'Descriptor' },
);

const FileSchema = Type.Object({ domain: Type.String({ minLength: 1 }), descriptors: Type.Optional(Type.Array(Descriptor)) }, strict);
type FileData = Static<typeof FileSchema>;
type DescriptorData = Static<typeof Descriptor>;
type SpecData = Static<typeof RateLimitSpec>;

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile<FileData>(FileSchema);

export interface Node {
  readonly limits: readonly Limit[];
  /** Children by "key_value" (exact), "key" (key only). */
  readonly children: ReadonlyMap<string, Node>;
  /** Children with a value ending in "*", in file order. */
  readonly wildcards: readonly { key: string; prefix: string; node: Node }[];
}

export interface DomainConfig {
  readonly domain: string;
  readonly root: Node;
  readonly file: string;
}

export interface CompileOptions {
  /** Algorithm for ordinary limits (quotas always count in fixed windows). */
  readonly algorithm: Algorithm;
}

function compileLimit(spec: SpecData, shadow: boolean, detailed: boolean, at: string, out: ConfigProblem[], opts: CompileOptions): Limit | undefined {
  const replaces: string[] = [];
  (spec.replaces ?? []).forEach((r, i) => {
    if (!r.name) out.push({ keyPath: `${at}/replaces/${i}`, problem: 'should have a name' });
    else replaces.push(r.name);
  });
  const base = { ...(spec.name !== undefined ? { name: spec.name } : {}), shadow, replaces, detailedMetric: detailed };
  if (spec.unlimited) {
    if (spec.unit !== undefined || spec.requests_per_unit !== undefined || spec.window_seconds !== undefined) {
      out.push({ keyPath: at, problem: 'should not specify a rate limit unit, window or requests_per_unit when unlimited' });
    }
    return { ...base, requestsPerUnit: 0, windowSeconds: 1, reportedUnit: 'UNKNOWN', burst: 1, algorithm: opts.algorithm, unlimited: true };
  }
  if (spec.unit !== undefined && spec.window_seconds !== undefined) out.push({ keyPath: at, problem: 'set unit or window_seconds, not both' });
  let windowSeconds: number | undefined;
  let reportedUnit: ReportedUnit = 'UNKNOWN';
  if (spec.window_seconds !== undefined) windowSeconds = spec.window_seconds;
  else if (spec.unit !== undefined) {
    const u = spec.unit.toLowerCase();
    windowSeconds = UNIT_SECONDS[u];
    if (windowSeconds === undefined) out.push({ keyPath: `${at}/unit`, problem: `invalid rate limit unit ${JSON.stringify(spec.unit)}` });
    else if (u !== 'week') reportedUnit = u.toUpperCase() as ReportedUnit;
  } else out.push({ keyPath: at, problem: 'a rate limit needs a unit (or window_seconds)' });
  if (spec.requests_per_unit === undefined) out.push({ keyPath: `${at}/requests_per_unit`, problem: 'required' });
  if (windowSeconds === undefined || spec.requests_per_unit === undefined) return undefined;
  const rpu = spec.requests_per_unit;
  return {
    ...base,
    requestsPerUnit: rpu,
    windowSeconds,
    reportedUnit,
    burst: spec.burst ?? Math.max(rpu, 1),
    algorithm: spec.quota ? 'fixed_window' : opts.algorithm,
    unlimited: false,
  };
}

function compileLevel(descs: readonly DescriptorData[], at: string, out: ConfigProblem[], opts: CompileOptions): { children: Map<string, Node>; wildcards: Node['wildcards'] } {
  const children = new Map<string, Node>();
  const wildcards: { key: string; prefix: string; node: Node }[] = [];
  descs.forEach((d, i) => {
    const here = `${at}/${i}`;
    if (d.key === '') out.push({ keyPath: `${here}/key`, problem: 'descriptor has an empty key' });
    const limits: Limit[] = [];
    const shadow = d.shadow_mode ?? false;
    const detailed = d.detailed_metric ?? false;
    if (d.rate_limit) {
      const l = compileLimit(d.rate_limit, shadow, detailed, `${here}/rate_limit`, out, opts);
      if (l) limits.push(l);
    }
    (d.rate_limits ?? []).forEach((s, j) => {
      const l = compileLimit(s, shadow, detailed, `${here}/rate_limits/${j}`, out, opts);
      if (l) limits.push(l);
    });
    const sub = compileLevel(d.descriptors ?? [], `${here}/descriptors`, out, opts);
    const node: Node = { limits, children: sub.children, wildcards: sub.wildcards };
    const value = d.value ?? '';
    if (value.endsWith('*')) {
      wildcards.push({ key: d.key, prefix: value.slice(0, -1), node });
      return;
    }
    const id = value === '' ? d.key : `${d.key}_${value}`;
    if (children.has(id)) out.push({ keyPath: `${here}`, problem: `duplicate descriptor composite key ${JSON.stringify(id)}` });
    else children.set(id, node);
  });
  return { children, wildcards };
}

/** Parses and compiles one file's text. */
export function compileRateLimitFile(file: string, text: string, opts: CompileOptions): DomainConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) throw new ConfigError(file, doc.errors.map((e) => ({ keyPath: '/', problem: `YAML syntax error: ${e.message.split('\n')[0]}` })));
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  if (!validate(data)) throw new ConfigError(file, (validate.errors ?? []).map(describeSchemaError));
  const out: ConfigProblem[] = [];
  const top = compileLevel(data.descriptors ?? [], '/descriptors', out, opts);
  if (out.length > 0) throw new ConfigError(file, out);
  return { domain: data.domain, file, root: { limits: [], children: top.children, wildcards: top.wildcards } };
}

/** Loads several files; a domain may be defined once. */
export async function loadRateLimitFiles(files: readonly string[], opts: CompileOptions): Promise<ReadonlyMap<string, DomainConfig>> {
  const domains = new Map<string, DomainConfig>();
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, [{ keyPath: '/', problem: `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
    }
    const d = compileRateLimitFile(file, text, opts);
    const prev = domains.get(d.domain);
    if (prev) throw new ConfigError(file, [{ keyPath: '/domain', problem: `duplicate domain ${JSON.stringify(d.domain)} (also in ${prev.file})` }]);
    domains.set(d.domain, d);
  }
  return domains;
}
