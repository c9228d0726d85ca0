// telemetry/decision-log/: this event (OPA's decision-log format), the mask rules of
// system.log.mask (mask.ts), our redaction (scrub.ts), the recorder that joins them to the
// audit record (recorder.ts), and the sinks (console.ts, file.ts, upload.ts).
// One decision-log event, the fields of OPA's EventV1 (v1/plugins/logs/plugin.go) that a Check
// has: a consumer of OPA's decision logs (a control plane, a SIEM pipeline) reads ours unchanged.
import { randomUUID } from 'node:crypto';
import pkg from '../../../package.json' with { type: 'json' };

/** The fields in OPA's JSON order; optional ones are left out when empty, as Go's omitempty. */
export interface DecisionEvent {
  labels: Record<string, string>;
  decision_id: string;
  trace_id?: string;
  bundles: Record<string, { revision: string }>;
  path: string;
  input?: unknown;
  result?: unknown;
  erased?: string[];
  masked?: string[];
  timestamp: string;
  metrics?: Record<string, number>;
}

/** The name our one bundle has in `bundles` (OPA names bundles by their config key). */
export const BUNDLE_NAME = 'envoy-authz';

/** OPA's instance id: one per process, whatever the config reloads. */
const INSTANCE_ID = randomUUID();

/** OPA's labels: the instance id (new per process) and the version, plus the configured ones. */
export function eventLabels(extra: Readonly<Record<string, string>>): Record<string, string> {
  return { ...extra, id: INSTANCE_ID, version: pkg.version };
}

export interface EventFields {
  readonly labels: Record<string, string>;
  readonly decisionId: string;
  readonly traceId: string | undefined;
  readonly revision: string | undefined;
  readonly path: string;
  readonly input: unknown;
  readonly result: unknown;
  readonly time: Date;
  readonly metrics: Record<string, number>;
}

export function decisionEvent(f: EventFields): DecisionEvent {
  return {
    labels: f.labels,
    decision_id: f.decisionId,
    ...(f.traceId ? { trace_id: f.traceId } : {}),
    bundles: f.revision === undefined ? {} : { [BUNDLE_NAME]: { revision: f.revision } },
    path: f.path,
    input: f.input,
    result: f.result,
    timestamp: f.time.toISOString(),
    metrics: f.metrics,
  };
}
