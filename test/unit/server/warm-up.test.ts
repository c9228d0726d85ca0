// The start-up warm-up runs the pure parts of a Check and nothing else: no authenticator, no
// policy, no output; and a failure in it never stops the start.
import { describe, expect, it } from 'vitest';
import type { AuthMethod, Authenticator, Credential } from '../../../src/authn/authenticator.js';
import { CheckPipeline, pipelineOptions } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { parseConfig } from '../../../src/config/loader.js';
import { checkResponseWriter } from '../../../src/envoy/check-response-wire.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import type { PolicyAuthorizer } from '../../../src/policy/authorizer.js';
import { warmUpCheck } from '../../../src/server/warm-up.js';

class CountingAuthenticator implements Authenticator {
  readonly methods: readonly AuthMethod[] = ['jwt'];
  calls = 0;
  authenticate(): Promise<Credential | undefined> {
    this.calls++;
    return Promise.resolve(undefined);
  }
}

describe('warmUpCheck', () => {
  const def = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  const cfg = parseConfig('t.yaml', '');

  it('builds inputs and answers without authenticating, evaluating or logging', () => {
    const auth = new CountingAuthenticator();
    let evaluated = 0;
    let inputs = 0;
    const authorizer = { authorize: () => (evaluated++, undefined), invalidate: () => undefined } as unknown as PolicyAuthorizer;
    const pipeline = new CheckPipeline({
      options: pipelineOptions(cfg.authentication),
      routes: new RouteTable(cfg.routes),
      authenticatorsFor: () => [auth],
      credentialHeaders: ['authorization'],
      untrustedHeaders: [],
      policy: { authorizer, dryRun: false },
    });
    const warm = pipeline.warmUp.bind(pipeline);
    pipeline.warmUp = (req) => {
      inputs++;
      warm(req);
    };
    let written = 0;
    const writer = checkResponseWriter(() => Buffer.alloc(0));
    warmUpCheck({ ...def, responseSerialize: (v: unknown) => (written++, writer(v)) }, pipeline, 3);
    expect({ inputs, written, authenticated: auth.calls, evaluated }).toEqual({ inputs: 3, written: 6, authenticated: 0, evaluated: 0 });
  });

  it('never throws', () => {
    const broken = { warmUp: () => { throw new Error('boom'); } } as unknown as CheckPipeline;
    expect(() => warmUpCheck(def, broken)).not.toThrow();
  });
});
