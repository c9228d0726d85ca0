// One request through the service's own components, offline: the config is loaded and built by
// the composition root (buildComponents) exactly as a start builds it - authenticators, issuers and
// their JWKS, key stores, revocation, the policy - and the request goes through the same
// CheckPipeline and the same Decision -> CheckResponse translator. Nothing is listened on. What
// the config connects to (a JWKS or bundle URL, Redis) is connected to, as the service would.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { toRequestView } from '../../envoy/request.js';
import { toCheckResponse } from '../../envoy/response.js';
import { protoMapper } from '../../envoy/proto-json.js';
import { envoyReflection } from '../../envoy/protos.js';
import { loadConfigFile, parseConfig, type LoadedConfig } from '../../config/loader.js';
import type { Identity } from '../../identity/identity.js';
import { withDeadline } from '../../lib/deadline.js';
import { Stop } from '../../lib/stop.js';
import { UnavailableError } from '../../lib/errors.js';
import { describeRedis } from '../../lib/redis.js';
import type { PolicyInput } from '../../policy/authorizer.js';
import { buildComponents } from '../../server/components.js';
import { createLogger } from '../../telemetry/logger.js';
import { REDACTED, sensitiveKey } from '../../telemetry/redact.js';
import { givenIdentity } from './identity.js';
import { buildPolicies, findOpa } from './opa-build.js';
import { asReceived, credentialPlaces, parseRequest, type Credentials } from './request.js';
import { UsageError } from './usage-error.js';

export interface EvalOptions {
  /** The service's config file (absent: $AUTHZ_CONFIG, else the embedded defaults, as the service). */
  readonly configFile?: string;
  /** A policies folder, built as `make policies` builds it, replacing the configured bundle. */
  readonly policies?: string;
  /** A bundle.tar.gz replacing the configured bundle. */
  readonly bundle?: string;
  readonly decisionPath?: string;
  readonly opa?: string;
  /** The request document (JSON-parsed): a CheckRequest or the short form. */
  readonly request: unknown;
  readonly credentials: Credentials;
}

/** Everything eval says about one request (printed by output.ts). */
export interface EvalReport {
  readonly authentication: 'credentials' | 'given identity (authentication bypassed)';
  readonly route: string;
  readonly allowed: boolean;
  /** Why, in the service's log vocabulary (ok, dry_run_denied, policy_denied, token_expired, ...): the client never sees it. */
  readonly reason: string;
  readonly identity: Identity | null;
  /** The policy input (credential headers redacted); null when no policy ran. */
  readonly input: PolicyInput | null;
  /** The decision document exactly as the policy returned it; null when no policy ran. */
  readonly result: unknown;
  readonly revision: string | null;
  /** The CheckResponse Envoy would receive, as proto JSON; null when the answer is a gRPC error. */
  readonly check_response: Record<string, unknown> | null;
  /** The gRPC error Envoy would receive instead of a CheckResponse (no decision; check.on_error grpc_error). */
  readonly grpc_error?: { readonly code: 'UNAVAILABLE' | 'DEADLINE_EXCEEDED'; readonly details: string };
  readonly notes: readonly string[];
}

/** The bound of one evaluation (outbound calls time out sooner, at their configured timeouts). */
const EVAL_DEADLINE_MS = 30_000;

async function loadServiceConfig(file: string | undefined): Promise<LoadedConfig> {
  const f = file ?? process.env.AUTHZ_CONFIG;
  return f !== undefined && f !== '' ? loadConfigFile(f) : { file: '<defaults>', dir: process.cwd(), config: parseConfig('<defaults>', '{}') };
}

/** The config with its policy bundle replaced by a local file (validated again, defaults filled). */
function withBundle(loaded: LoadedConfig, file: string, decisionPath: string | undefined, unsigned: boolean): LoadedConfig {
  const cfg = loaded.config;
  const policy = {
    ...cfg.policy,
    bundle: { ...cfg.policy?.bundle, file, url: undefined },
    ...(decisionPath !== undefined ? { decision_path: decisionPath } : {}),
    ...(unsigned ? { verification: undefined } : {}),
  };
  return { ...loaded, config: parseConfig(loaded.file, JSON.stringify({ ...cfg, policy })) };
}

function redisNote(cfg: LoadedConfig['config']): string | undefined {
  const uses: string[] = [];
  if (cfg.revocation.store === 'redis') uses.push('the deny list');
  if (cfg.authentication.api_keys?.redis) uses.push('API keys');
  if (cfg.ratelimit.store === 'redis' && cfg.authentication.brute_force) uses.push('the failed-authentication counters (a failure here counts as one there)');
  if (!cfg.redis || uses.length === 0) return undefined;
  return `uses the configured Redis at ${describeRedis(cfg.redis)} for ${uses.join(', ')}`;
}

const mapResponse = (() => {
  let mapper: ((msg: unknown) => Record<string, unknown>) | undefined;
  return (msg: unknown) => (mapper ??= protoMapper(envoyReflection().lookupType('envoy.service.auth.v3.CheckResponse')))(msg);
})();

type HeaderOption = { header?: { key?: string; value?: string } };

/** Credentials never leave in the output: the caller's (input headers) nor the minted token (response headers). */
function redactInput(input: PolicyInput, credentialHeaders: ReadonlySet<string>): PolicyInput {
  type Entry = { key?: string; value?: string; rawValue?: string };
  const attrs = input.attributes as { request?: { http?: { headers?: Record<string, string>; headerMap?: { headers?: Entry[] } } } } | undefined;
  const http = attrs?.request?.http;
  if (!http) return input;
  const secret = (k: string): boolean => credentialHeaders.has(k.toLowerCase()) || sensitiveKey(k);
  const clean = { ...http };
  if (http.headers) clean.headers = Object.fromEntries(Object.entries(http.headers).map(([k, v]) => [k, secret(k) ? REDACTED : v]));
  // Raw headers (encode_raw_headers, or a request carrying header_map): base64 values, named by key.
  if (http.headerMap?.headers) {
    clean.headerMap = {
      ...http.headerMap,
      headers: http.headerMap.headers.map((h) => (secret(h.key ?? '') ? { ...h, ...(h.value !== undefined ? { value: REDACTED } : {}), ...(h.rawValue !== undefined ? { rawValue: REDACTED } : {}) } : h)),
    };
  }
  return { ...input, attributes: { ...attrs, request: { ...attrs.request, http: clean } } };
}

function redactResponse(resp: Record<string, unknown>, tokenHeader: string | undefined): Record<string, unknown> {
  const ok = resp.okResponse as { headers?: HeaderOption[] } | undefined;
  if (!ok?.headers || tokenHeader === undefined) return resp;
  const headers = ok.headers.map((h) => (h.header?.key?.toLowerCase() === tokenHeader ? { ...h, header: { ...h.header, value: REDACTED } } : h));
  return { ...resp, okResponse: { ...ok, headers } };
}

export async function evaluate(o: EvalOptions): Promise<EvalReport> {
  const notes: string[] = [];
  let loaded = await loadServiceConfig(o.configFile);
  if (!loaded.config.check.enabled) throw new UsageError(`${loaded.file}: check.enabled is false, so the service answers no Check`);
  let scratch: string | undefined;
  try {
    if (o.policies !== undefined) {
      scratch = await mkdtemp(join(tmpdir(), 'envoy-authz-eval-'));
      const out = join(scratch, 'bundle.tar.gz');
      const entrypoint = o.decisionPath ?? loaded.config.policy?.decision_path ?? 'envoy/authz/allow';
      const { revision } = await buildPolicies({ opa: findOpa(o.opa), dir: resolve(o.policies), out, entrypoint });
      if (loaded.config.policy?.verification) notes.push('policy.verification is skipped for a bundle built here from --policies');
      notes.push(`built ${o.policies} with opa build -t wasm -e ${entrypoint} (revision ${revision})`);
      loaded = withBundle(loaded, out, o.decisionPath, true);
    } else if (o.bundle !== undefined) {
      loaded = withBundle(loaded, resolve(o.bundle), o.decisionPath, false);
    } else if (o.decisionPath !== undefined) {
      if (!loaded.config.policy) throw new UsageError('--decision-path needs a policy: pass --policies or --bundle, or a config with a policy section');
      loaded = { ...loaded, config: parseConfig(loaded.file, JSON.stringify({ ...loaded.config, policy: { ...loaded.config.policy, decision_path: o.decisionPath } })) };
    }
    const cfg = loaded.config;
    if (!cfg.policy) notes.push('no policy configured (and none given): authentication alone decides');
    const redis = redisNote(cfg);
    if (redis) notes.push(redis);

    const parsed = parseRequest(o.request, o.credentials, credentialPlaces(cfg.authentication));
    const given = parsed.identity !== undefined ? givenIdentity(parsed.identity, cfg.authentication.service_account_issuer) : undefined;
    // The components log to stderr, warnings only: stdout carries the report alone.
    const log = createLogger('warn', process.stderr);
    const c = await buildComponents(loaded, log, { dryRun: false, ...(given ? { authenticatorsFor: () => given } : {}) });
    try {
      // What the policy saw and said, as the pipeline's authorizer handed it over.
      const seen: { last?: { input: PolicyInput; result: unknown; revision: string } } = {};
      c.policy?.authorizer.onEvaluate((input, result, revision) => {
        seen.last = { input, result, revision };
      });
      const credentialHeaders = new Set(c.auth.credentialHeaders);
      const policyPart = (): Pick<EvalReport, 'input' | 'result'> => ({
        input: seen.last ? redactInput(seen.last.input, credentialHeaders) : null,
        result: seen.last ? seen.last.result : null,
      });
      const authentication = given ? ('given identity (authentication bypassed)' as const) : ('credentials' as const);
      const work = new Stop();
      const started = performance.now();
      try {
        // Not check.deadline_ms: this one request always meets cold caches (a JWKS URL is fetched
        // now), which a running service has warm. Every outbound call keeps its own timeout.
        const d = await withDeadline(c.pipeline.check(toRequestView(parsed.request), work), EVAL_DEADLINE_MS, work);
        const ms = Math.round(performance.now() - started);
        if (ms > cfg.check.deadline_ms) notes.push(`took ${ms} ms, more than check.deadline_ms (${cfg.check.deadline_ms}): a service with cold caches would fail closed, a warm one answers from them`);
        return {
          authentication,
          route: d.route,
          allowed: d.allowed,
          reason: d.allowed ? (d.dryRunDenied ? 'dry_run_denied' : 'ok') : d.reason,
          identity: d.identity ?? null,
          ...policyPart(),
          revision: d.policyRevision ?? seen.last?.revision ?? null,
          check_response: redactResponse(mapResponse(asReceived(toCheckResponse(d))), cfg.token?.header.toLowerCase()),
          notes,
        };
      } catch (err) {
        // No decision: answered as authz-service.ts answers it (check.on_error).
        const u = err instanceof UnavailableError ? err : new UnavailableError('internal', err instanceof Error ? err.message : String(err));
        const deny = cfg.check.on_error.mode === 'deny';
        return {
          authentication,
          route: 'error',
          allowed: false,
          reason: u.code,
          identity: null,
          ...policyPart(),
          revision: seen.last?.revision ?? null,
          check_response: deny ? mapResponse(asReceived(toCheckResponse({ allowed: false, route: 'error', status: cfg.check.on_error.deny_status, reason: u.code }))) : null,
          ...(deny ? {} : { grpc_error: { code: u.code === 'deadline_exceeded' ? ('DEADLINE_EXCEEDED' as const) : ('UNAVAILABLE' as const), details: 'authorization decision unavailable' } }),
          notes: [...notes, `no decision: ${u.code}: ${u.message}`],
        };
      }
    } finally {
      await c.close();
    }
  } finally {
    if (scratch !== undefined) await rm(scratch, { recursive: true, force: true });
  }
}
