// A Check leaves nothing behind in the old generation: what one Check allocates dies young (in a
// scavenge), also for allowed and denied decisions made by a real policy. Objects that outlive two
// scavenges are promoted and then only a mark-compact (a pause of tens of ms under load) frees
// them; when each Check's objects were built by spreading the stage's extras, V8 promoted about
// 5 KB per Check (docs/performance.md "Why the tail"). Measured here as old-space growth across
// scavenges per Check, in batches the way the transport runs them (one setImmediate per batch).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AuthMethod, Authenticator, Credential, SubjectCredential } from '../../../src/authn/authenticator.js';
import { CheckPipeline, pipelineOptions } from '../../../src/check/pipeline.js';
import { RouteTable } from '../../../src/check/routes.js';
import { parseConfig } from '../../../src/config/loader.js';
import { toCheckResponse } from '../../../src/envoy/response.js';
import { parseBundle } from '../../../src/policy/bundle.js';
import { PolicyAuthorizer } from '../../../src/policy/authorizer.js';
import { PolicyEngine } from '../../../src/policy/engine.js';
import { checkRecord } from '../../../src/telemetry/audit.js';
import { buildBundle } from '../../helpers/opa.js';
import { requestView } from '../../helpers/requests.js';
import { tempDir } from '../../helpers/tmp.js';
import { promotedDuring } from '../../helpers/gc.js';

const user: SubjectCredential = { kind: 'subject', method: 'jwt', subject: 'u1', issuer: 'https://i', expiresAt: 9e9, scopes: ['read'], roles: ['reader'], claims: {} };

class Verified implements Authenticator {
  readonly methods: readonly AuthMethod[] = ['jwt'];
  authenticate(): Promise<Credential | undefined> {
    return Promise.resolve(user);
  }
}

const REGO = `package envoy.authz
import rego.v1
default allow := false
allow if input.attributes.request.http.method == "GET"
`;

/** Old-space bytes gained in scavenges, per call of `run`. */
async function promotedPerCall(run: () => Promise<void>, calls: number): Promise<number> {
  const promoted = await promotedDuring(async () => {
    for (let i = 0; i < calls; i += 32) {
      await new Promise((r) => setImmediate(r));
      const batch: Promise<void>[] = [];
      for (let j = 0; j < 32; j++) batch.push(run());
      await Promise.all(batch);
    }
  });
  return promoted / calls;
}

describe('what a Check leaves in the old generation', () => {
  it('is next to nothing, for allowed and denied policy decisions', async () => {
    const tmp = tempDir();
    const engine = new PolicyEngine({ decisionPath: 'envoy/authz/allow', initialPages: 16, maxPages: 64 });
    await engine.activate(await parseBundle(readFileSync(buildBundle(tmp.dir, 'p', { rego: REGO, revision: 'p-1' }))));
    const cfg = parseConfig('t.yaml', '');
    const pipeline = new CheckPipeline({
      options: pipelineOptions(cfg.authentication),
      routes: new RouteTable(cfg.routes),
      authenticatorsFor: () => [new Verified()],
      credentialHeaders: ['authorization'],
      untrustedHeaders: [],
      policy: { authorizer: new PolicyAuthorizer(engine), dryRun: false },
    });
    const requests = [requestView({ path: '/orders/42?view=full', headers: { authorization: 'Bearer t' } }), requestView({ method: 'DELETE', path: '/orders/42', headers: { authorization: 'Bearer t' } })];
    let n = 0;
    const oneCheck = async (): Promise<void> => {
      const req = requests[n++ % 2]!;
      const d = await pipeline.check(req);
      toCheckResponse(d);
      JSON.stringify(checkRecord(req, d, 1, undefined));
    };
    await promotedPerCall(oneCheck, 5_000); // warm: optimized code, settled feedback
    const perCall = await promotedPerCall(oneCheck, 40_000);
    expect(n % 2).toBe(0);
    expect(perCall).toBeLessThan(200);
  });
});
