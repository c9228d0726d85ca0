// The Check adapter after the answer: the audit record goes through the decision recorder (the
// bundle's system.log.mask); a recorder that fails leaves a fail-closed record, never the
// unmasked one, and the call is answered exactly once.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/loader.js';
import { authorizationHandlers } from '../../../src/server/authz-service.js';
import { buildComponents } from '../../../src/server/components.js';
import { CallMetadata } from '../../../src/server/grpc-wire.js';
import { InFlight } from '../../../src/server/inflight.js';
import { Call } from '../../../src/server/transport.js';
import type { DecisionRecorder } from '../../../src/telemetry/decision-log/recorder.js';
import { createLogger } from '../../../src/telemetry/logger.js';
import { capture } from '../../helpers/log.js';
import { checkRequest } from '../../helpers/requests.js';

describe('Check adapter: the audit record after the answer', () => {
  it('writes a fail-closed record when the recorder throws, and answers once', async () => {
    const logs = capture();
    const log = createLogger('info', logs.stream);
    const config = parseConfig('authz.yaml', JSON.stringify({ routes: [{ name: 'open', match: { path_prefix: '/' }, public: true }] }));
    const c = await buildComponents({ file: '/nonexistent/authz.yaml', dir: '/nonexistent', config }, log, { dryRun: false });
    try {
      const broken = { checkRecord: () => { throw new Error('mask evaluation failed'); } } as unknown as DecisionRecorder;
      const handlers = authorizationHandlers({ pipeline: c.pipeline, check: config.check, log, inflight: new InFlight(), recorder: broken });
      const answers: unknown[] = [];
      const call = new Call(checkRequest({ path: '/secret/path?token=x' }), new CallMetadata(new Map()), Infinity, () => true, () => undefined);
      await new Promise<void>((resolve) => {
        handlers.Check(call as never, (err: unknown, res: unknown) => {
          answers.push(err ?? res);
          resolve();
        });
      });
      for (let i = 0; i < 50 && !logs.lines().some((l) => l.event === 'check'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(answers).toHaveLength(1);
      const rec = logs.lines().find((l) => l.event === 'check')!;
      expect(rec).toMatchObject({ mask_error: true, allowed: true });
      expect(rec).not.toHaveProperty('path');
      expect(rec).not.toHaveProperty('query_keys');
      expect(JSON.stringify(logs.lines())).not.toContain('/secret/path');
    } finally {
      await c.close();
    }
  });

  it('answers a Check that needs no waiting before the handler returns (no promise), and ends the call', async () => {
    const logs = capture();
    const log = createLogger('info', logs.stream);
    const config = parseConfig('authz.yaml', JSON.stringify({ routes: [{ name: 'open', match: { path_prefix: '/' }, public: true }] }));
    const c = await buildComponents({ file: '/nonexistent/authz.yaml', dir: '/nonexistent', config }, log, { dryRun: false });
    try {
      const inflight = new InFlight();
      const handlers = authorizationHandlers({ pipeline: c.pipeline, check: config.check, log, inflight });
      const answers: unknown[] = [];
      const call = new Call(checkRequest({ path: '/open' }), new CallMetadata(new Map()), Infinity, () => true, () => undefined);
      handlers.Check(call as never, (err: unknown, res: unknown) => answers.push(err ?? res));
      expect(answers).toEqual([expect.objectContaining({ status: { code: 0 } })]);
      expect(inflight.size).toBe(0);
      for (let i = 0; i < 50 && !logs.lines().some((l) => l.event === 'check'); i++) await new Promise((r) => setTimeout(r, 10));
      expect(logs.lines().find((l) => l.event === 'check')).toMatchObject({ allowed: true, route: 'open', path: '/open' });
    } finally {
      await c.close();
    }
  });
});
