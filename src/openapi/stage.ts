// The validation stage as the pipeline uses it, built once from the `openapi` section (by the
// composition root, so a config reload builds a new one and keeps the old on error): `match` finds
// the request's operation before the policy runs (the policy sees it as input.operation); `check`
// validates after the policy allowed (REC-API-14), counts the outcome in the inventory and, in
// report mode, logs what enforce would have refused and lets the request through.
import type { LoadedConfig } from '../config/loader.js';
import { resolveConfigPath } from '../config/loader.js';
import type { OpenApiConfig } from '../config/schema.js';
import type { RequestView } from '../envoy/request.js';
import { ConfigError } from '../lib/errors.js';
import type { Logger } from '../telemetry/logger.js';
import { compileDocument, SchemaCompiler, type OperationView } from './compile.js';
import { Inventory, type InventoryLedger, type InventorySnapshot, type OpenApiMetrics } from './inventory.js';
import { loadSpec, SpecLoadError } from './load.js';
import { SpecRouter, type Binding, type Match } from './router.js';
import { safeViolations } from './problem.js';
import { prepareDocument } from './schema.js';
import { validateRequest, type Parsed, type Refusal, type TruncatedBody } from './validate.js';

export type ValidationMode = 'enforce' | 'report' | 'off';

interface BoundSpec extends Binding {
  readonly mode: ValidationMode;
}

/** A request covered by a spec, and how its problems are handled. */
export interface StageMatch {
  readonly match: Match<BoundSpec>;
  readonly mode: 'enforce' | 'report';
}

export class OpenApiStage {
  constructor(
    private readonly routers: readonly SpecRouter<BoundSpec>[],
    readonly inventory: Inventory,
    private readonly truncatedBody: TruncatedBody,
    private readonly log: Logger,
  ) {}

  /** The covering spec's match (first spec whose hosts and prefix cover the request); undefined: not covered, or off. */
  match(req: RequestView, routeMode: ValidationMode | undefined): StageMatch | undefined {
    for (const r of this.routers) {
      if (!r.covers(req.host, req.path)) continue;
      const mode = routeMode ?? r.spec.mode;
      return mode === 'off' ? undefined : { match: r.match(req.method, req.path), mode };
    }
    return undefined;
  }

  /** What the policy sees as input.operation (matched operations only). */
  static operation(m: StageMatch | undefined): OperationView | undefined {
    return m?.match.kind === 'operation' ? m.match.op.view : undefined;
  }

  /** Validates a covered request. Returns the refusal to answer (enforce), else undefined. */
  check(req: RequestView, m: StageMatch, parsed?: Parsed): Refusal | undefined {
    const mt = m.match;
    const spec = mt.spec.name;
    let refusal: Refusal | undefined;
    if (mt.kind === 'operation') {
      refusal = validateRequest(mt.op, mt.pathParams, req, { truncatedBody: this.truncatedBody, ...(parsed ? { parsed } : {}) });
      this.inventory.record(spec, mt.op, refusal === undefined ? 'valid' : m.mode === 'enforce' ? 'refused' : 'reported', refusal?.reason);
    } else {
      refusal = mt.kind === 'no_path' ? { status: 404, reason: 'undocumented', violations: [] } : { status: 405, reason: 'method_not_allowed', violations: [], allow: mt.allow };
      this.inventory.undocumented(spec, req.method, req.path);
    }
    if (refusal && m.mode === 'report') {
      this.log.warn(
        {
          event: 'openapi_report',
          request_id: req.id,
          spec,
          operation: mt.kind === 'operation' ? mt.op.id : null,
          reason: refusal.reason,
          status: refusal.status,
          errors: safeViolations(refusal.violations),
        },
        'request does not match the API description (report mode: allowed)',
      );
      return undefined;
    }
    return refusal;
  }

  operations(): InventorySnapshot {
    return this.inventory.snapshot();
  }
}

export interface BuildOpenApiOptions {
  readonly log: Logger;
  readonly metrics?: OpenApiMetrics;
  /** --check-config: file specs are loaded and compiled as at a start; URL specs are not fetched. */
  readonly dryRun: boolean;
  /** The counts since start, kept across config reloads (absent: a fresh ledger). */
  readonly ledger?: InventoryLedger;
}

/** Loads and compiles every spec. A spec that does not load is a ConfigError naming the file, the pointer and the problem. */
export async function buildOpenApi(loaded: LoadedConfig, cfg: OpenApiConfig, opts: BuildOpenApiOptions): Promise<OpenApiStage> {
  const compiler = new SchemaCompiler();
  const routers: SpecRouter<BoundSpec>[] = [];
  for (const [i, s] of cfg.specs.entries()) {
    const isUrl = s.url !== undefined;
    if (isUrl && opts.dryRun) continue;
    const location = isUrl ? s.url! : resolveConfigPath(loaded, s.file!);
    const keyPath = `/openapi/specs/${i}/${isUrl ? 'url' : 'file'}`;
    try {
      const spec = await loadSpec({ location, isUrl, maxBytes: cfg.max_spec_bytes, timeoutMs: cfg.fetch_timeout_ms, allowInternal: cfg.allow_internal_urls });
      const doc = prepareDocument(spec.doc, spec.version);
      const operations = compileDocument(compiler, location, doc, { name: s.name, refuseUnknownQuery: s.unknown_query_params === 'refuse' });
      const binding: BoundSpec = { name: s.name, mode: s.mode, prefix: s.path_prefix, ...(s.hosts ? { hosts: new Set(s.hosts.map((h) => h.toLowerCase())) } : {}) };
      try {
        routers.push(new SpecRouter(binding, operations));
      } catch (err) {
        throw new SpecLoadError(location, '/paths', (err as Error).message);
      }
    } catch (err) {
      if (!(err instanceof SpecLoadError)) throw err;
      throw new ConfigError(loaded.file, [{ keyPath, problem: `${err.location}: ${err.pointer}: ${err.problem}` }]);
    }
    for (const w of compiler.warnings.splice(0)) opts.log.warn({ event: 'openapi_warning', spec: s.name, warning: w }, 'OpenAPI schema warning');
  }
  const inventory = new Inventory(routers.map((r) => ({ name: r.spec.name, operations: r.operations })), cfg.undocumented_max_labels, opts.metrics, Date.now, opts.ledger);
  return new OpenApiStage(routers, inventory, cfg.truncated_body, opts.log);
}
