// Before the listener opens: one synthetic request through the pure parts of a Check - the
// CheckRequest decoder and encoder protobufjs generates on first use, the policy input writer,
// the CheckResponse builder and writer - so the first real Checks do not pay for that code being
// generated and compiled (it took the first Check after a start to ~100 ms, past Envoy's usual
// 200 ms ext_authz timeout under load). Nothing here has side effects: no credential is checked,
// no policy evaluated (a policy may call out), nothing logged, counted or cached.
import type { CheckPipeline } from '../check/pipeline.js';
import type { Decision } from '../check/decision.js';
import { toRequestView } from '../envoy/request.js';
import { toCheckResponse } from '../envoy/response.js';
import type { CheckRequest } from '../gen/envoy/service/auth/v3/CheckRequest.js';
import type { CheckRequest__Output } from '../gen/envoy/service/auth/v3/CheckRequest.js';

const SAMPLE: CheckRequest = {
  attributes: {
    source: { address: { socket_address: { address: '127.0.0.1', port_value: 40000 } } },
    destination: { address: { socket_address: { address: '127.0.0.1', port_value: 8080 } } },
    request: {
      http: {
        id: '1',
        method: 'GET',
        path: '/warm-up?x=1',
        host: 'warm-up.invalid',
        scheme: 'http',
        protocol: 'HTTP/1.1',
        headers: { ':authority': 'warm-up.invalid', ':method': 'GET', ':path': '/warm-up?x=1', accept: '*/*', 'x-request-id': 'warm-up' },
      },
    },
  },
};

const DECISIONS: readonly Decision[] = [
  {
    allowed: true,
    route: 'warm-up',
    identity: { subject: 's', issuer: 'i', kind: 'user', method: 'jwt', scopes: [], roles: [], claims: {} },
    upstreamHeaders: { 'x-warm-up': 'v' },
    removeHeaders: ['authorization'],
    policyRevision: 'r',
    decisionId: 'd',
  },
  { allowed: false, route: 'warm-up', status: 401, reason: 'credential_missing', challenge: 'Bearer' },
];

interface CheckMethod {
  requestSerialize(value: CheckRequest): Buffer;
  requestDeserialize(bytes: Buffer): CheckRequest__Output;
  responseSerialize(value: unknown): Buffer;
}

/** Runs the sample a few times (enough for the code to be compiled, not optimized); never throws. */
export function warmUpCheck(method: CheckMethod, pipeline: CheckPipeline, rounds = 20): void {
  try {
    for (let i = 0; i < rounds; i++) {
      const req = method.requestDeserialize(method.requestSerialize(SAMPLE));
      toRequestView(req);
      pipeline.warmUp(req);
      for (const d of DECISIONS) method.responseSerialize(toCheckResponse(d));
    }
  } catch {
    // A warm-up is an optimization: whatever fails here fails (and is reported) on a real request.
  }
}
