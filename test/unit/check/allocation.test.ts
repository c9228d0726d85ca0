// What a Check's pieces allocate, for the bench's request (decoded from its bytes as the transport
// does): docs/performance.md counts the bytes per Check.
// - The request view and the audit record were about 3.2 KB together: a Map copy of the headers
//   (~900 B), a new string for every lower-cased name and every log key checked for credentials
//   (V8's toLowerCase always makes one), an ancestors array per redaction, spreads building the
//   record.
// - The audit line was 2.1 KB: the record's JSON.stringify string, then the line assembled from
//   it.
// - The allowed CheckResponse, built and written, was 2.1 KB: the wire writer's sizing pass made
//   its arrays anew (and grew them) for every answer, and listed every struct's keys twice.
// - The policy input was 2.4 KB: a JSON.stringify string for its path, query and identity before
//   their bytes were written, and the query parsed into one object then copied into another.
import { describe, expect, it } from 'vitest';
import type { Decision } from '../../../src/check/decision.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import { toRequestView } from '../../../src/envoy/request.js';
import { policyInputBuilder } from '../../../src/envoy/input.js';
import { checkResponseWriter } from '../../../src/envoy/check-response-wire.js';
import { toCheckResponse } from '../../../src/envoy/response.js';
import { checkRecord } from '../../../src/telemetry/audit.js';
import { openSync } from 'node:fs';
import { MAX_LINE_BYTES, createLogger, redact, writeInfo } from '../../../src/telemetry/logger.js';
import { byteDestination } from '../../../src/telemetry/line-destination.js';
import { checkRequest } from '../../../bench/lib/fixtures.js';
import { allocatedPerCall } from '../../helpers/gc.js';

const def = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
const token = `eyJhbGciOiJSUzI1NiJ9.${'a'.repeat(300)}.${'b'.repeat(342)}`;
const requests = Array.from({ length: 100 }, (_, i) => def.requestDeserialize(def.requestSerialize(checkRequest(token, i) as never)));
const d = {
  allowed: true,
  route: 'orders',
  status: 200,
  reason: 'ok',
  decisionId: '0d6e6c8e-1b1a-4c1e-9f0e-2a3b4c5d6e7f',
  identity: { subject: 'user-42', kind: 'user', issuer: 'https://issuer.bench.invalid', method: 'jwt', scopes: ['orders:read'], claims: { sub: 'user-42', roles: ['reader'], tenant: 't-1' } },
  policyRevision: 'rev-1',
} as unknown as Decision;

/** Bytes allocated per call of `one` (what it returns is kept, so that the work is not optimized away). */
async function perCall(one: (i: number) => number): Promise<number> {
  let kept = 0;
  const bytes = await allocatedPerCall((calls) => {
    for (let i = 0; i < calls; i++) kept += one(i);
  }, 20_000);
  expect(kept).toBeGreaterThan(0);
  return bytes;
}

describe('what a Check\'s pieces allocate', () => {
  it('the request view and the redacted audit record: under 1.6 KB together', async () => {
    const bytes = await perCall((i) => {
      const view = toRequestView(requests[i % 100]!);
      const rec = redact(checkRecord(view, d, 1.25, '4bf92f3577b34da6a3ce929d0e0e4736')) as Record<string, unknown>;
      return view.headers.size + Object.keys(rec).length;
    });
    expect(bytes).toBeLessThan(1_600);
  });

  it('the audit line on a byte destination: under 800 B, the line\'s own Buffer included', async () => {
    const log = createLogger('info', byteDestination(openSync('/dev/null', 'w'), MAX_LINE_BYTES)).child({ worker: 1 });
    const records = requests.map((r) => checkRecord(toRequestView(r), d, 1.25, '4bf92f3577b34da6a3ce929d0e0e4736'));
    const bytes = await perCall((i) => {
      writeInfo(log, records[i % 100]!, 'check');
      return 1;
    });
    expect(bytes).toBeLessThan(800);
  });

  it('the allowed CheckResponse, built and written to bytes: under 1.5 KB, the bytes included', async () => {
    const write = checkResponseWriter((v) => def.responseSerialize(v as never));
    const allow = { ...d, upstreamHeaders: { 'x-authz-subject': 'user-42', 'x-authz-issuer': 'https://issuer.bench.invalid' }, removeHeaders: ['authorization'] } as unknown as Decision;
    const bytes = await perCall(() => write(toCheckResponse(allow)).length);
    expect(bytes).toBeLessThan(1_500);
  });

  it('the policy input: under 1.4 KB, the document\'s own bytes included', async () => {
    const build = policyInputBuilder();
    const bytes = await perCall((i) => build(requests[i % 100]!, d.identity).json.length);
    expect(bytes).toBeLessThan(1_400);
  });
});
