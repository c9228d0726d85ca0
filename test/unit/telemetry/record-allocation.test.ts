// What a Check's request view and its audit record allocate, for the bench's request (decoded
// from its bytes as the transport does): docs/performance.md counts the bytes per Check. Before
// this bound they were about 3.2 KB together: a Map copy of the headers (~900 B), a new string
// for every lower-cased name and every log key checked for credentials (V8's toLowerCase always
// makes one), an ancestors array per redaction and spreads building the record.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/check/decision.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import { toRequestView } from '../../../src/envoy/request.js';
import { checkRecord } from '../../../src/telemetry/audit.js';
import { redact } from '../../../src/telemetry/logger.js';
import { checkRequest } from '../../../bench/lib/fixtures.js';
import { heapDuring } from '../../helpers/gc.js';

describe('a Check\'s request view and audit record', () => {
  it('allocate under 1.6 KB together for the bench\'s request', async () => {
    const def = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
    const token = `eyJhbGciOiJSUzI1NiJ9.${'a'.repeat(300)}.${'b'.repeat(342)}`;
    const requests = Array.from({ length: 100 }, (_, i) => def.requestDeserialize(def.requestSerialize(checkRequest(token, i) as never)));
    const d = {
      allowed: true,
      route: 'orders',
      status: 200,
      reason: 'ok',
      decisionId: '0d6e6c8e-1b1a-4c1e-9f0e-2a3b4c5d6e7f',
      identity: { subject: 'user-42', kind: 'user', issuer: 'https://issuer.bench.invalid', method: 'jwt' },
      policyRevision: 'rev-1',
    } as unknown as Decision;
    let kept = 0;
    const run = (calls: number): void => {
      for (let i = 0; i < calls; i++) {
        const view = toRequestView(requests[i % 100]!);
        const rec = redact(checkRecord(view, d, 1.25, '4bf92f3577b34da6a3ce929d0e0e4736')) as Record<string, unknown>;
        kept += view.headers.size + Object.keys(rec).length;
      }
    };
    run(5_000); // warm: optimized code
    const { allocated } = await heapDuring(() => Promise.resolve(run(20_000)));
    expect(kept).toBeGreaterThan(0);
    expect(allocated / 20_000).toBeLessThan(1_600);
  });
});
