// The authorization stage: evaluates the active policy on an input document (or answers from
// the decision cache), and checks the decision's shape. It knows nothing of Envoy: the pipeline
// builds the input (envoy/input.ts, opa-envoy-plugin's format) and hands it over.
import { LRUCache } from 'lru-cache';
import type { PolicyConfig } from '../config/schema.js';
import { toPolicyDecision, type PolicyDecision } from './decision.js';
import type { PolicyEngine } from './engine.js';
import { NO_METRICS, type MetricsSink } from '../telemetry/metrics.js';

/** The document a policy sees as `input`, as a value. */
export type PolicyInput = Readonly<Record<string, unknown>>;

/** An input document as the policy reads it (JSON text), and as a value for the few that want one. */
export interface InputDocument {
  /** UTF-8 JSON. */
  readonly json: Uint8Array;
  /** Parsed on first use; the same object afterwards. */
  value(): Record<string, unknown>;
}

export interface Authorization {
  readonly decision: PolicyDecision;
  readonly revision: string;
  /** The decision document exactly as the policy returned it (decision logs, the offline evaluator). */
  readonly result: unknown;
}

function at(doc: unknown, path: string): unknown {
  let node = doc;
  for (const seg of path.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[seg];
  }
  return node;
}

export interface AuthorizerOptions {
  /** Absent: every Check evaluates the policy. */
  readonly decisionCache?: {
    /** Dotted input paths whose values (with the bundle revision) key a cached decision. */
    readonly keyPaths: readonly string[];
    readonly maxEntries: number;
    readonly ttlMs: number;
  };
}

export function authorizerOptions(cfg: PolicyConfig): AuthorizerOptions {
  const c = cfg.decision_cache;
  return c ? { decisionCache: { keyPaths: c.key, maxEntries: c.max_entries, ttlMs: c.ttl_ms } } : {};
}

export class PolicyAuthorizer {
  private readonly cache: LRUCache<string, Authorization> | undefined;
  private readonly keyPaths: readonly string[];
  private listener: ((input: PolicyInput, result: unknown, revision: string) => void) | undefined;

  constructor(
    private readonly engine: PolicyEngine,
    opts: AuthorizerOptions = {},
    private readonly metrics: MetricsSink = NO_METRICS,
  ) {
    const c = opts.decisionCache;
    this.keyPaths = c?.keyPaths ?? [];
    this.cache = c ? new LRUCache({ max: c.maxEntries, ttl: c.ttlMs }) : undefined;
  }

  /** Called when a new bundle (or data) becomes active: no decision of the old one survives (V-274677). */
  invalidate(): void {
    this.cache?.clear();
  }

  /** Sees every evaluation's input and the policy's raw result, also one that is then refused as malformed (the offline evaluator prints them). One listener. */
  onEvaluate(listener: (input: PolicyInput, result: unknown, revision: string) => void): void {
    this.listener = listener;
  }

  get revision(): string | undefined {
    return this.engine.revision;
  }

  authorize(input: InputDocument): Authorization {
    const key = this.cache ? JSON.stringify([this.engine.revision, ...this.keyPaths.map((p) => at(input.value(), p) ?? null)]) : '';
    const hit = this.cache?.get(key);
    if (this.cache) this.metrics.cacheLookup('policy_decision', hit !== undefined);
    if (hit) {
      this.listener?.(input.value(), hit.result, hit.revision);
      return hit;
    }
    const { result, revision } = this.engine.evaluateJson(input.json);
    this.listener?.(input.value(), result, revision);
    const out = { decision: toPolicyDecision(result), revision, result };
    this.cache?.set(key, out);
    return out;
  }
}
