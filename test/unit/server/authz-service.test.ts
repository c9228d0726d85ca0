// The Check adapter: the audit record goes through the decision recorder (the bundle's
// system.log.mask); a recorder that fails leaves a fail-closed record, never the unmasked one, and
// the call is answered exactly once. A decision made at once is answered before Check returns; the
// deadline counts every stage; a failure is answered whatever happens to its log line.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { authorizationHandlers } from '../../../src/server/authz-service.js';
import { buildComponents, type Components } from '../../../src/server/components.js';
import type { Config } from '../../../src/config/schema.js';
import { CallMetadata } from '../../../src/server/grpc-wire.js';
import { InFlight } from '../../../src/server/inflight.js';
import { Call } from '../../../src/server/transport.js';
import type { DecisionRecorder } from '../../../src/telemetry/decision-log/recorder.js';
import { createLogger, type Logger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';
import { checkRequest } from '../../helpers/requests.js';
import type { Authenticator, Credential } from '../../../src/authn/authenticator.js';
import { CheckPipeline, pipelineOptions } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { UnavailableError } from '../../../src/lib/errors.js';
import type { Maybe } from '../../../src/lib/maybe.js';

const workload: Credential = { kind: 'workload', method: 'api_key', id: 'svc-a', serviceAccount: 'svc-a', scopes: [] };

/** An authenticator that answers by `answer` (at once or later). */
function authenticator(answer: () => Maybe<Credential | undefined>): Authenticator {
  return { methods: ['api_key'], authenticate: answer };
}

function pipelineOf(yaml: string, auth: Authenticator[]): { pipeline: CheckPipeline; config: ReturnType<typeof parseConfig> } {
  const config = parseConfig('authz.yaml', yaml);
  const pipeline = new CheckPipeline({
    options: pipelineOptions(config.authentication),
    routes: new RouteTable(config.routes),
    authenticatorsFor: () => auth,
    credentialHeaders: [],
    untrustedHeaders: [],
  });
  return { pipeline, config };
}

/** A Check call for `path`, without deadline, as the transport makes it. */
const callFor = (path: string): Call => new Call(checkRequest({ path }), new CallMetadata(new Map()), Infinity, () => true, () => undefined);

/** Runs one Check through the adapter; resolves with its answer (an error or a CheckResponse). */
function runCheck(handlers: ReturnType<typeof authorizationHandlers>): Promise<{ answer: unknown }> {
  return new Promise((resolve) => {
    handlers.Check(callFor('/x') as never, (err: unknown, res: unknown) => resolve({ answer: err ?? res }));
  });
}

/** The service's components for one public route, logging to `log`; closed when `fn` is done. */
async function withOpenRoute(log: Logger, fn: (c: Components, config: Config) => Promise<void>): Promise<void> {
  const config = parseConfig('authz.yaml', JSON.stringify({ routes: [{ name: 'open', match: { path_prefix: '/' }, public: true }] }));
  const c = await buildComponents({ file: '/nonexistent/authz.yaml', dir: '/nonexistent', config }, log, { dryRun: false });
  try {
    await fn(c, config);
  } finally {
    await c.close();
  }
}

/** The audit line of the Check, once written (lines are written after the answer). */
async function checkLine(logs: ReturnType<typeof capture>): Promise<Record<string, unknown> | undefined> {
  for (const until = Date.now() + 5000; Date.now() < until && !logs.lines().some((l) => l.event === 'check'); ) await new Promise((r) => setTimeout(r, 10));
  return logs.lines().find((l) => l.event === 'check');
}

describe('Check adapter', () => {
  it('writes a fail-closed record when the recorder throws, and answers once', async () => {
    const logs = capture();
    const log = createLogger('info', logs.stream);
    await withOpenRoute(log, async (c, config) => {
      const broken = { checkRecord: () => { throw new Error('mask evaluation failed'); } } as unknown as DecisionRecorder;
      const handlers = authorizationHandlers({ pipeline: c.pipeline, check: config.check, log, inflight: new InFlight(), recorder: broken });
      const answers: unknown[] = [];
      await new Promise<void>((resolve) => {
        handlers.Check(callFor('/secret/path?token=x') as never, (err: unknown, res: unknown) => {
          answers.push(err ?? res);
          resolve();
        });
      });
      const rec = await checkLine(logs);
      expect(answers).toHaveLength(1);
      expect(rec).toMatchObject({ mask_error: true, allowed: true });
      expect(rec).not.toHaveProperty('path');
      expect(rec).not.toHaveProperty('query_keys');
      expect(JSON.stringify(logs.lines())).not.toContain('/secret/path');
    });
  });

  it('answers a Check that needs no waiting before the handler returns (no promise), and ends the call', async () => {
    const logs = capture();
    const log = createLogger('info', logs.stream);
    await withOpenRoute(log, async (c, config) => {
      const inflight = new InFlight();
      const handlers = authorizationHandlers({ pipeline: c.pipeline, check: config.check, log, inflight });
      const answers: unknown[] = [];
      handlers.Check(callFor('/open') as never, (err: unknown, res: unknown) => answers.push(err ?? res));
      expect(answers).toEqual([expect.objectContaining({ status: { code: 0 } })]);
      expect(inflight.size).toBe(0);
      expect(await checkLine(logs)).toMatchObject({ allowed: true, route: 'open', path: '/open' });
    });
  });

  it('counts the whole Check against check.deadline_ms, stages that answered at once included', async () => {
    const busy = (ms: number): undefined => {
      const until = performance.now() + ms;
      while (performance.now() < until);
      return undefined;
    };
    // 60 ms of work that answers at once, then a stage that waits 20 ms: past a 40 ms budget.
    const { pipeline, config } = pipelineOf('check: {deadline_ms: 40}', [
      authenticator(() => busy(60)),
      authenticator(() => new Promise((r) => setTimeout(() => r(workload), 20))),
    ]);
    const handlers = authorizationHandlers({ pipeline, check: config.check, log: createLogger('silent'), inflight: new InFlight() });
    const { answer } = await runCheck(handlers);
    expect(answer).toMatchObject({ code: 4 }); // DEADLINE_EXCEEDED, not an allow 80 ms in
  });

  it('answers a Check that failed even when logging the failure throws, and ends the call', async () => {
    const { pipeline, config } = pipelineOf('check: {on_error: {mode: deny, deny_status: 503}}', [
      authenticator(() => Promise.reject(new UnavailableError('jwks_unavailable', 'down'))),
    ]);
    const log = createLogger('info', capture().stream);
    log.warn = () => {
      throw new Error('log sink broke');
    };
    const inflight = new InFlight();
    const handlers = authorizationHandlers({ pipeline, check: config.check, log, inflight });
    const { answer } = await runCheck(handlers);
    expect(answer).toMatchObject({ denied_response: { status: { code: 503 } } });
    expect(inflight.size).toBe(0);
  });
});
