// From the decision_logs section to a recorder and its sinks (called by the composition root).
// Without the section there are no sinks, and the recorder still applies the bundle's
// system.log.mask to audit records.
import { readReferencedFile } from '../../config/files.js';
import { resolveConfigPath, type LoadedConfig } from '../../config/loader.js';
import { policyInputBuilder } from '../../envoy/input.js';
import type { RequestView } from '../../envoy/request.js';
import type { Decision } from '../../check/decision.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { consoleSink } from './console.js';
import { eventLabels } from './event.js';
import { FileSink } from './file.js';
import { DecisionRecorder, type MaskEvaluator } from './recorder.js';
import { Scrubber } from './scrub.js';
import type { DecisionLogSink, SinkCounter } from './sink.js';
import { Uploader } from './upload.js';

export interface DecisionLogDeps {
  readonly engine: MaskEvaluator | undefined;
  /** Lower-case names of the headers that carry credentials (always masked in events). */
  readonly credentialHeaders: readonly string[];
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Build everything, start nothing (`--check-config`). */
  readonly dryRun: boolean;
}

export async function buildDecisionRecorder(loaded: LoadedConfig, deps: DecisionLogDeps): Promise<DecisionRecorder> {
  const cfg = loaded.config.decision_logs;
  const count: SinkCounter = (sink, outcome, n) => deps.metrics.decisionLog(sink, outcome, n);
  const sinks: DecisionLogSink[] = [];
  if (cfg?.console) sinks.push(consoleSink(deps.log, count));
  if (cfg?.file) {
    const f = cfg.file;
    sinks.push(new FileSink({ path: resolveConfigPath(loaded, f.path), maxBytes: f.max_bytes, maxFiles: f.max_files, bufferBytes: f.buffer_bytes }, deps.log, count));
  }
  if (cfg?.service) {
    const s = cfg.service;
    const r = cfg.reporting;
    const token =
      s.token_file === undefined ? undefined : (await readReferencedFile(loaded, '/decision_logs/service/token_file', s.token_file, { secret: true, maxBytes: 16384 })).toString('utf8').trim();
    const uploader = new Uploader(
      {
        endpoint: `${s.url.replace(/\/+$/, '')}${s.resource}`,
        ...(token ? { token } : {}),
        timeoutMs: s.timeout_ms,
        minDelayMs: r.min_delay_seconds * 1000,
        maxDelayMs: r.max_delay_seconds * 1000,
        maxEvents: r.buffer_size_limit_events,
        maxBufferBytes: r.buffer_size_limit_bytes,
        uploadLimitBytes: r.upload_size_limit_bytes,
      },
      deps.log,
      count,
    );
    if (!deps.dryRun) uploader.start();
    sinks.push(uploader);
  }
  // The pipeline's input, for masking the audit records of Checks the policy did not see. Without
  // the body: no audit field comes from it, and a request refused before the policy (no
  // credential) must not cost a body parse.
  const policy = loaded.config.policy;
  const build = policy
    ? policyInputBuilder({ skipBodyParse: true, ...(policy.input.strip_credential_headers ? { stripHeaders: deps.credentialHeaders } : {}) })
    : undefined;
  return new DecisionRecorder(
    deps.engine,
    {
      ...(build ? { toInput: (req: RequestView, identity: Decision['identity']) => build(req.raw, identity).value() } : {}),
      decisionPath: loaded.config.policy?.decision_path ?? 'envoy/authz/allow',
      labels: eventLabels(cfg?.labels ?? {}),
      scrubber: new Scrubber(deps.credentialHeaders),
      sinks: deps.dryRun ? [] : sinks,
      count,
    },
    deps.log,
  );
}
