// Reads one YAML config file, validates it against the schema (unknown keys rejected,
// defaults filled in), applies the rules a schema cannot express, and returns a frozen copy.
// Every problem is reported with the file and the key path; nothing here logs or exits.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError, type ConfigProblem } from '../lib/errors.js';
import { parseHostPort } from '../lib/host-port.js';
import { ConfigSchema, type Config, type IssuerConfig } from './schema.js';

export { resolveConfigPath } from './files.js';

/** A validated configuration and where it came from (relative file paths resolve against `dir`). */
export interface LoadedConfig {
  readonly file: string;
  readonly dir: string;
  readonly config: Readonly<Config>;
}

const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, coerceTypes: false });
const validate = ajv.compile<Config>(ConfigSchema);

export async function loadConfigFile(file: string): Promise<LoadedConfig> {
  const abs = resolve(file);
  let text: string;
  try {
    const buf = await readFile(abs);
    if (buf.byteLength > MAX_CONFIG_BYTES) throw new ConfigError(file, [{ keyPath: '/', problem: `file is larger than ${MAX_CONFIG_BYTES} bytes` }]);
    text = buf.toString('utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [{ keyPath: '/', problem: `cannot read file (${(err as NodeJS.ErrnoException).code ?? 'error'})` }]);
  }
  return { file, dir: dirname(abs), config: parseConfig(file, text) };
}

/** Parses and validates config text. `file` is used only to name the source in errors. */
export function parseConfig(file: string, text: string): Readonly<Config> {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { keyPath: '/', problem: `YAML syntax error at line ${pos.line} column ${pos.col}: ${e.message.split('\n')[0] ?? e.code}` };
      }),
    );
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (!validate(data)) throw new ConfigError(file, (validate.errors ?? []).map(describeSchemaError));
  const problems = semanticProblems(data);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return deepFreeze(data);
}

/** An Ajv error as a problem at a key path (also used for rate-limit files). */
export function describeSchemaError(e: ErrorObject): ConfigProblem {
  const at = e.instancePath || '/';
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return { keyPath: `${e.instancePath}/${key}`, problem: 'unknown key' };
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return { keyPath: `${e.instancePath}/${key}`, problem: 'required key is missing' };
    }
    case 'enum': {
      const values = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { keyPath: at, problem: `must be one of ${values.map((v) => JSON.stringify(v)).join(', ')}` };
    }
    default:
      return { keyPath: at, problem: e.message ?? e.keyword };
  }
}

const isHmac = (alg: string): boolean => alg.startsWith('HS');

function issuerProblems(iss: IssuerConfig, at: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const hmac = iss.algorithms.filter(isHmac);
  if (hmac.length > 0 && hmac.length !== iss.algorithms.length) {
    out.push({ keyPath: `${at}/algorithms`, problem: 'HS* algorithms cannot be mixed with asymmetric ones (key confusion)' });
  }
  if (hmac.length > 0) {
    if (iss.secret_file === undefined) out.push({ keyPath: `${at}/secret_file`, problem: 'required for HS* algorithms' });
    if (iss.jwks !== undefined) out.push({ keyPath: `${at}/jwks`, problem: 'not allowed with HS* algorithms; use secret_file' });
    return out;
  }
  if (iss.secret_file !== undefined) out.push({ keyPath: `${at}/secret_file`, problem: 'only allowed with HS* algorithms' });
  if (iss.jwks === undefined) {
    out.push({ keyPath: `${at}/jwks`, problem: 'required for asymmetric algorithms' });
    return out;
  }
  const { url, file } = iss.jwks;
  if ((url === undefined) === (file === undefined)) {
    out.push({ keyPath: `${at}/jwks`, problem: 'set exactly one of url or file' });
  } else if (url !== undefined) {
    out.push(...httpsUrlProblems(url, iss.jwks.allow_insecure_http, `${at}/jwks/url`));
  }
  return out;
}

/** The rule for every URL we send secrets or fetch trust from: https, or http only when allowed. */
function httpsUrlProblems(url: string, allowInsecureHttp: boolean, keyPath: string): ConfigProblem[] {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [{ keyPath, problem: 'not a valid URL' }];
  }
  if (parsed.protocol === 'https:' || (parsed.protocol === 'http:' && allowInsecureHttp)) return [];
  return [{ keyPath, problem: 'must be https (or http with allow_insecure_http: true)' }];
}

/** The rules a schema cannot express (also checked on what a reload applies: config/restart.ts). */
export function semanticProblems(cfg: Config): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seenIssuers = new Set<string>();
  cfg.authentication.jwt.issuers.forEach((iss, i) => {
    const at = `/authentication/jwt/issuers/${i}`;
    if (seenIssuers.has(iss.issuer)) out.push({ keyPath: `${at}/issuer`, problem: `duplicate issuer ${JSON.stringify(iss.issuer)}` });
    seenIssuers.add(iss.issuer);
    out.push(...issuerProblems(iss, at));
  });
  const seenRoutes = new Set<string>();
  cfg.routes.forEach((r, i) => {
    const at = `/routes/${i}`;
    if (seenRoutes.has(r.name)) out.push({ keyPath: `${at}/name`, problem: `duplicate route name ${JSON.stringify(r.name)}` });
    seenRoutes.add(r.name);
    if ((r.match.path_exact === undefined) === (r.match.path_prefix === undefined)) {
      out.push({ keyPath: `${at}/match`, problem: 'set exactly one of path_exact or path_prefix' });
    }
  });
  const seenSpecs = new Set<string>();
  (cfg.openapi?.specs ?? []).forEach((s, i) => {
    const at = `/openapi/specs/${i}`;
    if (seenSpecs.has(s.name)) out.push({ keyPath: `${at}/name`, problem: `duplicate spec name ${JSON.stringify(s.name)}` });
    seenSpecs.add(s.name);
    if ((s.file === undefined) === (s.url === undefined)) out.push({ keyPath: at, problem: 'set exactly one of file or url' });
    if (s.url !== undefined) out.push(...httpsUrlProblems(s.url, cfg.openapi?.allow_insecure_http ?? false, `${at}/url`));
  });
  const b = cfg.policy?.bundle;
  if (b && (b.file === undefined) === (b.url === undefined)) out.push({ keyPath: '/policy/bundle', problem: 'set exactly one of file or url' });
  if (b?.url !== undefined) out.push(...httpsUrlProblems(b.url, b.allow_insecure_http, '/policy/bundle/url'));
  // The client secret and every token travel to the introspection endpoint.
  const intro = cfg.authentication.introspection;
  if (intro) out.push(...httpsUrlProblems(intro.url, intro.allow_insecure_http, '/authentication/introspection/url'));
  const dl = cfg.decision_logs;
  if (dl?.service) out.push(...httpsUrlProblems(dl.service.url, dl.service.allow_insecure_http, '/decision_logs/service/url'));
  if (dl && dl.reporting.min_delay_seconds > dl.reporting.max_delay_seconds) out.push({ keyPath: '/decision_logs/reporting/min_delay_seconds', problem: 'must not exceed max_delay_seconds' });
  if (cfg.policy && cfg.policy.memory_initial_pages > cfg.policy.memory_max_pages) {
    out.push({ keyPath: '/policy/memory_initial_pages', problem: 'must not exceed memory_max_pages' });
  }
  if (cfg.ratelimit.store === 'redis' && !cfg.redis) out.push({ keyPath: '/ratelimit/store', problem: 'redis needs the redis section' });
  if (cfg.revocation.store === 'redis' && !cfg.redis) out.push({ keyPath: '/revocation/store', problem: 'redis needs the redis section' });
  if (cfg.revocation.store === 'redis' && cfg.revocation.snapshot_file !== undefined) {
    out.push({ keyPath: '/revocation/snapshot_file', problem: 'only with store: memory (Redis keeps a shared list itself)' });
  }
  if (cfg.authentication.api_keys?.redis && !cfg.redis) out.push({ keyPath: '/authentication/api_keys/redis', problem: 'needs the redis section' });
  for (const [keyPath, address] of [['/server/address', cfg.server.address], ['/admin/address', cfg.admin.address]] as const) {
    if (!parseHostPort(address)) out.push({ keyPath, problem: `${JSON.stringify(address)} is not host:port with a port from 0 to 65535` });
  }
  (cfg.redis?.nodes ?? []).forEach((n, i) => {
    if (!parseHostPort(n)) out.push({ keyPath: `/redis/nodes/${i}`, problem: `${JSON.stringify(n)} is not host:port with a port from 0 to 65535` });
  });
  const r = cfg.redis;
  if (r && r.mode !== 'standalone' && !r.nodes) out.push({ keyPath: '/redis/nodes', problem: `required for mode ${r.mode}` });
  if (r?.mode === 'sentinel' && !r.sentinel_name) out.push({ keyPath: '/redis/sentinel_name', problem: 'required for mode sentinel' });
  if (r?.mode === 'cluster' && (cfg.revocation.store === 'redis' || cfg.authentication.api_keys?.redis)) {
    out.push({ keyPath: '/redis/mode', problem: 'cluster mode serves rate limits only; revocation and API keys need standalone or sentinel' });
  }
  if (cfg.server.workers !== 1) {
    // Each worker is a process of its own: in-process state would be per worker (N times the limits,
    // revocations reaching one worker only).
    if (cfg.ratelimit.store !== 'redis') out.push({ keyPath: '/server/workers', problem: 'more than one worker needs ratelimit.store: redis (buckets shared by all workers)' });
    if (cfg.revocation.store !== 'redis') out.push({ keyPath: '/server/workers', problem: 'more than one worker needs revocation.store: redis (revocations reach every worker)' });
  }
  if (!cfg.check.enabled && !cfg.ratelimit.enabled) out.push({ keyPath: '/check/enabled', problem: 'nothing to serve: enable check or ratelimit' });
  const h = cfg.authentication.upstream_headers;
  const reserved = new Set([cfg.authentication.header.toLowerCase(), 'host', ':authority', ':path', ':method']);
  for (const [key, name] of Object.entries(h)) {
    if (reserved.has(name.toLowerCase())) out.push({ keyPath: `/authentication/upstream_headers/${key}`, problem: `cannot be ${name}` });
  }
  return out;
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

