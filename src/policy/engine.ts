// policy/: this wasm engine, bundles (tar, signature, source), the authorizer and decision shapes;
// builtins/: the OPA built-ins the wasm asks the host for.
// Evaluates the active policy (OPA compiled to wasm, via @open-policy-agent/opa-wasm). A new
// bundle is loaded and checked fully, then swapped in by one reference assignment; evaluation is
// synchronous, so a request always sees exactly one bundle.
import { loadPolicy, type LoadedPolicy } from '@open-policy-agent/opa-wasm';
import type { PolicyConfig } from '../config/schema.js';
import { UnavailableError, errorMessage } from '../lib/errors.js';
import { BundleError, type PolicyBundle } from './bundle.js';
import { evaluateJsonText } from './wasm-eval.js';
import { EvalScope, hostBuiltins, requiredBuiltins, unsupportedBuiltins, type HostBuiltin } from './builtins/index.js';

interface Active {
  readonly policy: LoadedPolicy;
  readonly revision: string;
}

export interface EngineOptions {
  /** e.g. envoy/authz/allow */
  readonly decisionPath: string;
  /** WebAssembly memory in 64 KiB pages. */
  readonly initialPages: number;
  readonly maxPages: number;
}

export function engineOptions(cfg: PolicyConfig): EngineOptions {
  return { decisionPath: cfg.decision_path, initialPages: cfg.memory_initial_pages, maxPages: cfg.memory_max_pages };
}

export class PolicyEngine {
  private active: Active | undefined;
  private readonly scope = new EvalScope();
  private readonly builtins: Record<string, HostBuiltin> = hostBuiltins(this.scope);

  constructor(private readonly opts: EngineOptions) {}

  get revision(): string | undefined {
    return this.active?.revision;
  }

  /** Loads a bundle; on any problem the active policy stays as it was. */
  async activate(bundle: PolicyBundle): Promise<void> {
    let policy: LoadedPolicy;
    try {
      policy = await loadPolicy(bundle.wasm, { initial: this.opts.initialPages, maximum: this.opts.maxPages }, this.builtins);
    } catch (err) {
      throw new BundleError(`policy.wasm cannot be loaded: ${errorMessage(err)}`);
    }
    const unsupported = unsupportedBuiltins(requiredBuiltins(policy));
    if (unsupported.length > 0) {
      throw new BundleError(`policy uses built-ins this service does not implement: ${unsupported.join(', ')} (see docs/policy-authoring.md#built-ins)`);
    }
    const entrypoints = policy.entrypoints as Record<string, number>;
    if (!(this.opts.decisionPath in entrypoints)) {
      throw new BundleError(`bundle has no entrypoint ${this.opts.decisionPath} (has: ${Object.keys(entrypoints).join(', ') || 'none'})`);
    }
    try {
      policy.setData(bundle.data);
    } catch (err) {
      throw new BundleError(`bundle data does not fit the policy memory: ${errorMessage(err)}`);
    }
    this.active = { policy, revision: bundle.revision };
  }

  /** Whether the active bundle has this entrypoint (e.g. system/log/mask). */
  hasEntrypoint(entrypoint: string): boolean {
    return this.active !== undefined && entrypoint in (this.active.policy.entrypoints as Record<string, number>);
  }

  /**
   * The value of another entrypoint of the active bundle (e.g. system/log/mask) for `input`;
   * undefined when the bundle has no such entrypoint or the rule is undefined for this input.
   */
  evaluateEntrypoint(entrypoint: string, input: unknown): unknown {
    const active = this.active;
    if (!active || !(entrypoint in (active.policy.entrypoints as Record<string, number>))) return undefined;
    let results: unknown;
    try {
      this.scope.begin(); // its own time.now_ns and uuid memo, not the last decision's
      results = active.policy.evaluate(input, entrypoint);
    } catch (err) {
      throw new UnavailableError('policy_error', `${entrypoint} evaluation failed: ${errorMessage(err)}`);
    }
    return Array.isArray(results) ? (results[0] as { result?: unknown } | undefined)?.result : undefined;
  }

  /** The decision document for `input`, and the revision that produced it. */
  evaluate(input: unknown): { result: unknown; revision: string } {
    return this.decide((policy) => policy.evaluate(input, this.opts.decisionPath));
  }

  /** The same for an input given as UTF-8 JSON text (written by the caller; not checked here). */
  evaluateJson(json: Uint8Array): { result: unknown; revision: string } {
    return this.decide((policy) => evaluateJsonText(policy, json, this.opts.decisionPath));
  }

  private decide(run: (policy: LoadedPolicy) => unknown): { result: unknown; revision: string } {
    const active = this.active;
    if (!active) throw new UnavailableError('policy_error', 'no policy bundle is active');
    let results: unknown;
    try {
      this.scope.begin();
      results = run(active.policy);
    } catch (err) {
      throw new UnavailableError('policy_error', `policy evaluation failed: ${errorMessage(err)}`);
    }
    const first = Array.isArray(results) ? (results[0] as { result?: unknown } | undefined) : undefined;
    if (first === undefined || first.result === undefined) throw new UnavailableError('policy_error', 'policy decision is undefined');
    return { result: first.result, revision: active.revision };
  }
}
