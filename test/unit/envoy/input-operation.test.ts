// input.operation: the matched OpenAPI operation's view, written into the policy input as the text
// JSON.stringify gives it (kept per operation, so a Check copies it rather than walking it).
import { describe, expect, it } from 'vitest';
import { policyInputBuilder } from '../../../src/envoy/input.js';
import { envoyProtos } from '../../../src/envoy/protos.js';
import type { CheckRequest, CheckRequest__Output } from '../../../src/gen/envoy/service/auth/v3/CheckRequest.js';

function decoded(req: CheckRequest): CheckRequest__Output {
  const m = envoyProtos().envoy.service.auth.v3.Authorization.service.Check;
  return m.requestDeserialize(m.requestSerialize(req));
}

describe('input.operation', () => {
  const build = policyInputBuilder();
  const req = decoded({ attributes: { request: { http: { method: 'POST', path: '/orders/1/lines', headers: { 'content-type': 'application/json' } } } } });
  const view = (id: string): Record<string, unknown> => ({
    spec: 'orders',
    operation_id: id,
    method: 'POST',
    path_template: '/orders/{orderId}/lines',
    tags: ['orders', 'ünïcode', 'line\nbreak', '\ud800'],
    security: [{ oauth: ['orders:write'] }],
    extensions: { 'x-owner': { team: 'payments', 'quote"d': null } },
    deprecated: false,
  });

  it('is the view, the same on every call, and each operation its own', () => {
    const a = view('addLine');
    const b = view('removeLine');
    for (let i = 0; i < 3; i++) {
      expect(build(req, undefined, a).value().operation).toEqual(JSON.parse(JSON.stringify(a)));
      expect(build(req, undefined, b).value().operation).toEqual(JSON.parse(JSON.stringify(b)));
    }
    const text = build(req, undefined, a).json.toString('utf8');
    expect(text.endsWith(`,"operation":${JSON.stringify(a)}}`)).toBe(true);
  });

  it('is left out when no operation matched', () => {
    expect(build(req, undefined).value()).not.toHaveProperty('operation');
  });
});
